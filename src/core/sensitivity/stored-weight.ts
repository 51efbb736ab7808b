import { DataType } from '../onnx/dtypes';
import type { GraphView } from '../onnx/graph';
import { tensorNumel } from '../onnx/tensor';

/** The float types a stored weight (or a measured output) comes in. */
export const FLOAT_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16]);
const WEIGHT_PATH_OPS = new Set(['Transpose', 'Reshape', 'Identity', 'Cast', 'Squeeze', 'Unsqueeze']);

/**
 * Whether `input` is a stored weight: a float tensor of more than one value, or one dequantized from a
 * stored tensor (a Q/DQ export: QAT's fake-quant Q → DQ, another quantizer's int8), followed back through
 * the reshapes and transposes exporters put between a weight and its reader.
 */
export function isStoredWeight(view: GraphView, input: string, depth = 0): boolean {
  const t = view.constant(input);
  if (t) return (depth > 0 || FLOAT_TYPES.has(t.data_type ?? 0)) && tensorNumel(t) > 1;
  const p = view.producer.get(input);
  if (!p || depth > 4) return false;
  if (p.op_type === 'DequantizeLinear' || p.op_type === 'QuantizeLinear' || WEIGHT_PATH_OPS.has(p.op_type ?? '')) return isStoredWeight(view, p.input?.[0] ?? '', depth + 1);
  return false;
}
