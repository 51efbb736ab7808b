import { onnx, type ModelProto, type NodeProto, type GraphProto } from '../onnx/proto';
import { walkGraphs } from '../onnx/walk';

/**
 * Puts many small models side by side in one graph: every name inside model k gets the prefix `k/`
 * except its graph inputs, which all copies share (they are the captured activations). One onnxruntime
 * session then runs every layer's float and quantized neighbourhoods in a single call.
 */
export function mergeSideBySide(parts: Array<{ prefix: string; model: ModelProto }>): ModelProto {
  const nodes: NodeProto[] = [];
  const initializers: NonNullable<GraphProto['initializer']> = [];
  const inputs = new Map<string, NonNullable<GraphProto['input']>[number]>();
  const outputs: NonNullable<GraphProto['output']> = [];
  const opsets = new Map<string, number>();
  let ir = 0;
  for (const { prefix, model } of parts) {
    const g = model.graph!;
    ir = Math.max(ir, Number(model.ir_version));
    for (const o of model.opset_import ?? []) opsets.set(o.domain ?? '', Math.max(opsets.get(o.domain ?? '') ?? 0, Number(o.version)));
    const shared = new Set((g.input ?? []).map((i) => i.name ?? ''));
    const rename = (n: string) => (!n || shared.has(n) ? n : `${prefix}/${n}`);
    for (const i of g.input ?? []) if (!inputs.has(i.name!)) inputs.set(i.name!, i);
    for (const t of g.initializer ?? []) initializers.push({ ...t, name: rename(t.name ?? '') });
    // A copy per part: nodes of subgraphs would need the same renaming, so the parts carry none here.
    for (const n of g.node ?? []) nodes.push({ ...n, name: rename(n.name ?? ''), input: (n.input ?? []).map(rename), output: (n.output ?? []).map(rename) });
    for (const o of g.output ?? []) outputs.push({ ...o, name: rename(o.name ?? '') });
    if ([...walkGraphs(g)].length > 1) throw new Error('layer neighbourhoods with subgraphs cannot be merged');
  }
  return onnx.ModelProto.create({
    ir_version: ir, opset_import: [...opsets].map(([domain, version]) => ({ domain, version })),
    graph: { name: 'side_by_side', node: nodes, initializer: initializers, input: [...inputs.values()], output: outputs },
  });
}
