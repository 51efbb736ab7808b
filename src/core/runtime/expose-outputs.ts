import { onnx, type ModelProto } from '../onnx/proto';

/**
 * A copy of the model whose graph also outputs the named intermediate values (for calibration and
 * sensitivity). The caller's model object is not touched; the copy shares tensor data (read-only).
 */
export function withExtraOutputs(model: ModelProto, names: string[]): ModelProto {
  const graph = model.graph!;
  const present = new Set((graph.output ?? []).map((o) => o.name));
  const known = new Map((graph.value_info ?? []).map((v) => [v.name, v]));
  const extra = names.filter((n) => !present.has(n)).map((n) => known.get(n) ?? { name: n });
  return onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, output: [...(graph.output ?? []), ...extra] }) });
}
