import { QuantLensError } from '../base/errors';
import { DataType } from '../onnx/dtypes';
import type { ModelProto } from '../onnx/proto';
import { walkGraphs, walkNodes } from '../onnx/walk';

/** Ops only a quantized model has: Q/DQ pairs, integer kernels, packed-weight contrib ops. */
const QUANTIZED_OPS = /^(QuantizeLinear|DequantizeLinear|DynamicQuantizeLinear|MatMulInteger|ConvInteger|MatMulNBits|GatherBlockQuantized|DynamicQuantizeMatMul|MatMulIntegerToFloat|QGemm|QLinear\w+|QAttention|QOrderedMatMul)$/;

/**
 * Quantizing a model that already is (an earlier output, a QAT export with fake-quant pairs) would stack
 * a second rounding on the first and report the first as "float": say so instead.
 */
export function refuseQuantized(input: string, model: ModelProto): void {
  const found = new Map<string, number>();
  const count = (what: string) => found.set(what, (found.get(what) ?? 0) + 1);
  // --weight-format expand writes int8 weights behind a Cast, with no quantization op at all.
  const int8 = new Set<string>();
  for (const { graph } of walkGraphs(model.graph!)) for (const t of graph.initializer ?? []) if ((t.data_type === DataType.INT8 || t.data_type === DataType.UINT8) && (t.dims ?? []).reduce((a, b) => a * Number(b), 1) >= 16) int8.add(t.name ?? '');
  for (const { node } of walkNodes(model.graph!)) {
    if (QUANTIZED_OPS.test(node.op_type ?? '')) count(node.op_type!);
    else if (node.op_type === 'Cast' && int8.has(node.input?.[0] ?? '')) count('Cast of an int8 weight');
  }
  if (!found.size) return;
  const list = [...found].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([op, n]) => `${n} ${op}`).join(', ');
  throw new QuantLensError(input, `is already quantized (${list}): quantize the float model it came from`, 'already-quantized');
}
