import { onnx, type ModelProto, type TensorProto } from '../onnx/proto';
import { DataType } from '../onnx/dtypes';

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

/** Float element types a weight may have (none of them ever sets a shape: Reshape, Expand, Slice and the like read integers). */
const WEIGHT_TYPES = new Set([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

/**
 * A copy of the model for a session that only infers shapes and types (never run): every float
 * initializer of at least `minElements` values becomes a graph input of its own fixed shape, so the copy
 * carries no weights and onnxruntime loads none, while the small integer tensors shapes are computed from
 * stay. PaddleOCR det's metadata session was a copy of its 4.7 MB, ConvNeXt-T's of 114 MB (encoded, then
 * parsed and copied by onnxruntime: 136-150 ms of a 3 s calibration).
 */
export function weightsAsInputs(model: ModelProto, minElements = 1024): ModelProto {
  const graph = model.graph!;
  const inputs = new Set((graph.input ?? []).map((v) => v.name));
  const moved = (t: TensorProto) => !inputs.has(t.name) && WEIGHT_TYPES.has(t.data_type ?? 0) && (t.dims ?? []).reduce((a, d) => a * Number(d), 1) >= minElements;
  const input = (graph.initializer ?? []).filter(moved).map((t) => onnx.ValueInfoProto.create({
    name: t.name, type: { tensor_type: { elem_type: t.data_type, shape: { dim: (t.dims ?? []).map((d) => ({ dim_value: d })) } } },
  }));
  if (!input.length) return model;
  return onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, input: [...(graph.input ?? []), ...input], initializer: (graph.initializer ?? []).filter((t) => !moved(t)) }) });
}
