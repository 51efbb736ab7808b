import { floatToHalf } from '../onnx/half';
import { widenedHalf } from '../onnx/half-storage';
import type { NodeProto } from '../onnx/proto';
import type { QuantContext } from './context';
import type { NodeDecision } from './options';
import { floatWeight, weightBytes, weightScratch } from './weights';

/** float16's largest finite value: a weight beyond it stays float32. */
const HALF_MAX = 65504;

/**
 * A float32 layer kept float (for speed) stores its weight as float16 behind a Cast to float32. The Cast
 * reads a constant, so onnxruntime folds it when the session loads: the float kernel runs on the same
 * float32 weight as before, rounded to float16 (relative error ≤ 2⁻¹¹), and the file holds half the bytes.
 * int8 here (even with a scale per 16 inputs) moved PaddleOCR rec's lines away from the float model's
 * (CTC agreement 92%), float16 does not. Undefined when the weight is not float32 or does not fit float16.
 */
export function halfStoredWeight(ctx: QuantContext, node: NodeProto, index: number, cache: Map<string, string>, why: string): NodeDecision | undefined {
  const name = node.input?.[index] ?? '';
  const w = floatWeight(ctx.view, name, ctx.loc, false, weightScratch);
  if (!w || w.dims.reduce((a, b) => a * b, 1) < 16 || w.data.some((v) => Math.abs(v) > HALF_MAX)) return undefined;
  const bytesBefore = weightBytes(w.dims, 32);
  const decision = { node: node.name ?? '', opType: node.op_type ?? '', modulePath: ctx.modulePath(node), weightBytesBefore: bytesBefore, float16Storage: true as const };
  const how = `${why}; weight stored float16, widened to float32 when onnxruntime loads the model (Cast, constant-folded)`;
  const existing = cache.get(name);
  if (existing) {
    node.input![index] = existing;
    return { ...decision, how: `${how}, shared`, weightBytesAfter: 0 };
  }
  const out = widenedHalf(ctx.editor, name, w.dims, Uint16Array.from(w.data, floatToHalf), node);
  cache.set(name, out);
  node.input![index] = out;
  return { ...decision, how, weightBytesAfter: weightBytes(w.dims, 16) };
}

