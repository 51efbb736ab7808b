import type { ModelEditor } from './editor';
import type { NodeProto } from './proto';
import { walkGraphs } from './walk';

/**
 * Rewires every read of a stored tensor through Identity nodes to the tensor itself and drops those
 * Identities. torch.onnx keeps one copy of equal initializers and hands it to each other reader by an
 * Identity (every BatchNorm-folded zero bias, every LayerNorm's all-ones scale), so the Conv or MatMul
 * then reads a node's output, not a constant, and a quantizer that asks "is this a constant?" says no.
 * Nothing is computed differently. An Identity whose output is a graph output stays (the name is part of
 * the model's interface). Reads from subgraphs (If/Loop bodies) are rewired too. `which`: only the
 * Identities whose output it accepts. Returns how many went.
 */
export function bypassConstantIdentities(editor: ModelEditor, which?: (output: string) => boolean): number {
  const g = editor.graph;
  const { gone, source } = constantIdentities(editor, which);
  if (!gone.size) return 0;
  const outputs = new Set((g.output ?? []).map((o) => o.name ?? ''));
  for (const { graph } of walkGraphs(g)) {
    for (const n of graph.node ?? []) n.input = (n.input ?? []).map((i) => (i && !outputs.has(i) && source.has(i) ? source.get(i)! : i));
  }
  editor.removeNodes(gone);
  return gone.size;
}

/**
 * The other cure for the same exporter habit, for edits that change a tensor for one reader only
 * (structured pruning slices a bias to the channels its own layer keeps): each such Identity becomes a
 * copy of the tensor under the Identity's output name, as the model was before the exporter shared it.
 * Returns how many were copied.
 */
export function copyConstantIdentities(editor: ModelEditor): number {
  const { gone, source } = constantIdentities(editor);
  if (!gone.size) return 0;
  const view = editor.view();
  const copies = [...gone].map((n) => {
    const t = view.constant(source.get(n.output![0])!)!;
    return { ...t, name: n.output![0], raw_data: t.raw_data?.length ? Uint8Array.from(t.raw_data) : t.raw_data };
  });
  editor.removeNodes(gone);
  editor.graph.initializer = [...(editor.graph.initializer ?? []), ...copies];
  return gone.size;
}

/** Identity nodes of the main graph that pass a stored tensor on (not a graph output; accepted by `which`), and each one's source. */
function constantIdentities(editor: ModelEditor, which: (output: string) => boolean = () => true): { gone: Set<NodeProto>; source: Map<string, string> } {
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
    (g.node ?? []).filter((n) => n.op_type === 'Identity' && (n.domain ?? '') === '' && n.output?.[0] && !outputs.has(n.output[0]) && resolve(n.output[0]) !== undefined && which(n.output[0])),
  );
  // (Only the accepted ones: resolving a chain records every link on the way.)
  const accepted = new Set([...gone].map((n) => n.output![0]));
  return { gone, source: new Map([...source].filter(([k]) => accepted.has(k))) };
}
