import type { ModelEditor } from './editor';
import { walkGraphs } from './walk';

/**
 * Rewires every read of a stored tensor through Identity nodes to the tensor itself and drops those
 * Identities. torch.onnx keeps one copy of equal initializers and hands it to each other reader by an
 * Identity (every BatchNorm-folded zero bias, every LayerNorm's all-ones scale), so the Conv or MatMul
 * then reads a node's output, not a constant, and a quantizer that asks "is this a constant?" says no.
 * Nothing is computed differently. An Identity whose output is a graph output stays (the name is part of
 * the model's interface). Reads from subgraphs (If/Loop bodies) are rewired too. Returns how many went.
 */
export function bypassConstantIdentities(editor: ModelEditor): number {
  const g = editor.graph;
  const view = editor.view();
  const outputs = new Set((g.output ?? []).map((o) => o.name ?? ''));
  const source = new Map<string, string>();
  const resolve = (name: string): string | undefined => {
    if (view.constant(name)) return name;
    const p = view.producer.get(name);
    if (p?.op_type !== 'Identity' || (p.domain ?? '') !== '' || !p.input?.[0]) return undefined;
    const s = source.get(name) ?? resolve(p.input[0]);
    if (s) source.set(name, s);
    return s;
  };
  const gone = new Set(
    (g.node ?? []).filter((n) => n.op_type === 'Identity' && (n.domain ?? '') === '' && n.output?.[0] && !outputs.has(n.output[0]) && resolve(n.output[0]) !== undefined),
  );
  if (!gone.size) return 0;
  for (const { graph } of walkGraphs(g)) {
    for (const n of graph.node ?? []) n.input = (n.input ?? []).map((i) => (i && !outputs.has(i) && source.has(i) ? source.get(i)! : i));
  }
  const removed = new Set([...gone].map((n) => n.output![0]));
  g.node = (g.node ?? []).filter((n) => !gone.has(n));
  g.value_info = (g.value_info ?? []).filter((v) => !removed.has(v.name ?? ''));
  return gone.size;
}
