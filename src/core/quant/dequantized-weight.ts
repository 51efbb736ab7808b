import { reducesRange } from './options';
import { makeTensor } from '../onnx/tensor';
import { qdqDomain } from './qdq-domain';
import type { NodeProto } from '../onnx/proto';
import type { QuantContext } from './context';
import { QUANT_TYPES, type QuantType } from './qtypes';
import { quantizeTensor, type Granularity } from './tensor-quant';
import { floatWeight, scaleTensor, weightBytes, weightScratch } from './weights';
import { DataType } from '../onnx/dtypes';
import { intAttr } from '../onnx/attributes';
import { expandedWeightNodes } from './expanded-weight';

export interface DqResult {
  how: string;
  /** Scales of the quantized weight (per channel or one), for bias quantization. */
  scales: Float32Array;
  bytesBefore: number;
  bytesAfter: number;
  sqnr: number;
}

/**
 * Replaces input `index` of `node` (a float weight) by int8 storage + DequantizeLinear, one scale per
 * slice along `axis` (per-channel) or one for the tensor. `minScales`: the smallest scale each slice may
 * have (see biasScaleFloor); a weight another reader already quantized with smaller scales is quantized
 * again for this one.
 */
export function dequantizedWeightInput(ctx: QuantContext, node: NodeProto, index: number, axis: number | undefined, qtype: QuantType = 'int8', minScales?: Float32Array): DqResult {
  const name = node.input![index];
  const w = floatWeight(ctx.view, name, ctx.loc, true, weightScratch)!;
  const opts = ctx.optionsFor(node);
  const perAxis = axis !== undefined && opts.perChannel && w.dims.length > 0;
  const granularity: Granularity = perAxis ? { kind: 'channel', axis: axis! } : { kind: 'tensor' };
  // Weight mode may write the weight expanded at load instead (see expanded-weight.ts); static weights feed integer kernels.
  const expand = opts.mode === 'weight' && QUANT_TYPES[qtype].bits === 8 && (ctx.weightFormat === 'expand' || ctx.weightFormat === 'nbits+expand');
  const key = `${name}|${perAxis ? axis : 't'}|${qtype}|${expand}`;
  const below = (scales: Float32Array) => !!minScales && scales.some((v, k) => v < minScales[minScales.length === 1 ? 0 : k]);
  const bytesBefore = weightBytes(w.dims, w.dtype === DataType.FLOAT16 ? 16 : 32);
  const bits = QUANT_TYPES[qtype].bits;
  const shared = ctx.dequantized.get(key);
  const existing = shared && !below(shared.scales) ? shared : undefined;
  const how = `${qtype}${opts.mode === 'static' && qtype === 'int8' && reducesRange(opts) ? ' (7-bit range)' : ''} ${perAxis ? `per-channel (axis ${axis})` : 'per-tensor'} weight, ${expand ? 'expanded to float when onnxruntime loads it (Cast + Mul, constant-folded)' : 'DequantizeLinear'}`;
  if (existing) {
    node.input![index] = existing.output;
    // The first reader's decision counts the weight, before and after.
    return { how: `${how}, shared`, scales: existing.scales, bytesBefore: 0, bytesAfter: 0, sqnr: NaN };
  }
  const symmetric = qtype === 'int8' || qtype === 'int4' ? true : opts.symmetric;
  // Static weights feed onnxruntime's integer kernels (QLinearConv/QLinearMatMul), weight-only ones do not.
  const reduceRange = opts.mode === 'static' && qtype === 'int8' && reducesRange(opts);
  let q = quantizeTensor(w.data, w.dims, { qtype, symmetric, granularity, reduceRange });
  // Raised for this reader's bias: kept to itself, not handed to readers without one.
  const floored = below(q.scales) && symmetric;
  if (floored) q = quantizeTensor(w.data, w.dims, { qtype, symmetric, granularity, reduceRange, minScales: minScales! });
  const sqnr = q.sqnr;
  const info = QUANT_TYPES[qtype];
  const base = name.startsWith('onnx::') ? `${ctx.modulePath(node) || node.name}.weight` : name;
  const qName = ctx.editor.addInitializer(makeTensor(`${base}_quantized`, info.dataType, w.dims, q.values));
  const out = ctx.editor.unique(`${base}_dequantized`);
  if (expand) {
    ctx.editor.insertBefore(node, expandedWeightNodes(ctx.editor, base, qName, w.dims, perAxis ? axis : undefined, q.scales, q.zeroPoints, w.dtype, out));
  } else {
    const sName = ctx.editor.addInitializer(scaleTensor(`${base}_scale`, w.dtype, q.scaleDims, q.scales));
    const zp = info.signed ? Int8Array.from(q.zeroPoints) : Uint8Array.from(q.zeroPoints);
    const zName = ctx.editor.addInitializer(makeTensor(`${base}_zero_point`, info.dataType, q.scaleDims, zp));
    ctx.editor.insertBefore(node, [{
      name: `${base}_DequantizeLinear`, op_type: 'DequantizeLinear', domain: qdqDomain(ctx.editor, w.dtype === DataType.FLOAT16), input: [qName, sName, zName], output: [out],
      attribute: perAxis ? [intAttr('axis', axis)] : [],
    }]);
  }
  node.input![index] = out;
  if (!floored) ctx.dequantized.set(key, { output: out, scales: q.scales });
  const bytesAfter = weightBytes(w.dims, bits) + q.scales.length * (w.dtype === DataType.FLOAT16 ? 2 : 4) + q.scales.length * (bits / 8);
  return { how, scales: q.scales, bytesBefore, bytesAfter, sqnr };
}
