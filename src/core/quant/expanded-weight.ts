import { DataType } from '../onnx/dtypes';
import { halfToFloat, floatToHalf } from '../onnx/half';
import type { NodeProto } from '../onnx/proto';
import { makeTensor } from '../onnx/tensor';
import { intAttr } from '../onnx/attributes';
import type { ModelEditor } from '../onnx/editor';

/**
 * The nodes that turn an int8 initializer back into the float weight: Cast, (Sub zero point), Mul scale,
 * (Cast to float16). Every input is a constant, so onnxruntime's constant folding runs them once when
 * the session loads: the file keeps int8, the layer runs its float kernel at float speed (a
 * DequantizeLinear is deliberately not folded, to keep QDQ patterns, so it dequantizes every run). The
 * arithmetic is DequantizeLinear's: (q − zp) × scale in float32, rounded to float16 last for float16 weights.
 */
export function expandedWeightNodes(editor: ModelEditor, base: string, qName: string, dims: number[], axis: number | undefined, scales: Float32Array, zeroPoints: ArrayLike<number>, dtype: DataType.FLOAT | DataType.FLOAT16, out: string): NodeProto[] {
  // Per-channel scales broadcast along `axis`; one scale (axis undefined) is a scalar.
  const bcast = axis === undefined ? [] : dims.map((_, k) => (k === axis ? scales.length : 1));
  // float16 weights: the scale DequantizeLinear would read is the float16 one.
  const s32 = dtype === DataType.FLOAT16 ? Float32Array.from(scales, (s) => halfToFloat(floatToHalf(s))) : scales;
  const sName = editor.addInitializer(makeTensor(`${base}_scale`, DataType.FLOAT, bcast, s32));
  const f = editor.unique(`${base}_int8_as_float`);
  const nodes: NodeProto[] = [{ name: `${base}_Cast`, op_type: 'Cast', input: [qName], output: [f], attribute: [intAttr('to', DataType.FLOAT)] }];
  let x = f;
  if (Array.from(zeroPoints).some((z) => z !== 0)) {
    const zName = editor.addInitializer(makeTensor(`${base}_zero_point_float`, DataType.FLOAT, bcast, Float32Array.from(zeroPoints)));
    const c = editor.unique(`${base}_centred`);
    nodes.push({ name: `${base}_Sub`, op_type: 'Sub', input: [x, zName], output: [c] });
    x = c;
  }
  const scaled = dtype === DataType.FLOAT16 ? editor.unique(`${base}_scaled`) : out;
  nodes.push({ name: `${base}_Mul`, op_type: 'Mul', input: [x, sName], output: [scaled] });
  if (dtype === DataType.FLOAT16) nodes.push({ name: `${base}_Cast16`, op_type: 'Cast', input: [scaled], output: [out], attribute: [intAttr('to', DataType.FLOAT16)] });
  return nodes;
}
