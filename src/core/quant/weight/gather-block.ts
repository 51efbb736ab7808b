import { intAttr } from '../../onnx/attributes';
import { DataType } from '../../onnx/dtypes';
import type { NodeProto } from '../../onnx/proto';
import { makeTensor } from '../../onnx/tensor';
import type { QuantContext } from '../context';
import { quantizeTensor } from '../tensor-quant';
import { floatWeight, floatWeightDims, scaleTensor, weightBytes, weightScratch } from '../weights';

/** A block along an embedding row: the largest power of two from 128 down to 16 that divides it. */
export function gatherBlock(rowLength: number): number | undefined {
  for (let b = 128; b >= 16; b /= 2) if (rowLength % b === 0) return b;
  return undefined;
}

/**
 * An embedding table [V, D] gathered on axis 0 as com.microsoft::GatherBlockQuantized with 8-bit blocks
 * along each row: the table stays int8 in memory and only the gathered rows are dequantized. A
 * DequantizeLinear in front of a Gather dequantizes the whole table on every run (a 30000 x 512 table:
 * 15 M values for a handful of tokens). Symmetric: q = round(w / s) + 128, the op's default zero point.
 * Undefined when the table is not 2-D or no block divides its rows.
 */
export function gatherBlockQuantized(ctx: QuantContext, node: NodeProto): { how: string; bytesBefore: number; bytesAfter: number; sqnr: number } | undefined {
  const base = node.input![0];
  const dims = floatWeightDims(ctx.view, base, ctx.loc, true);
  const block = dims?.length === 2 ? gatherBlock(dims[1]) : undefined;
  if (!dims || !block) return undefined;
  const how = `GatherBlockQuantized int8, a scale per ${block} values of each row (int8 in memory, only the gathered rows dequantized)`;
  const gather = (data: string, scale: string) => ctx.editor.replaceNode(node, [{
    name: `${node.name}_Q8`, op_type: 'GatherBlockQuantized', domain: 'com.microsoft', input: [data, node.input![1], scale], output: [...node.output!],
    attribute: [intAttr('gather_axis', 0), intAttr('quantize_axis', 1), intAttr('block_size', block), intAttr('bits', 8)],
  }]);
  // A table several Gathers read (a merged decoder's two branches) is stored once.
  const key = `${base}|gather-block`, shared = ctx.integerWeights.get(key);
  if (shared) {
    gather(shared.names[0], shared.names[1]);
    return { how: `${how}, shared`, bytesBefore: 0, bytesAfter: 0, sqnr: shared.sqnr }; // (the first reader's decision counts the table)
  }
  const w = floatWeight(ctx.view, base, ctx.loc, true, weightScratch)!;
  const [V, D] = w.dims;
  const t = quantizeTensor(w.data, w.dims, { qtype: 'int8', symmetric: true, granularity: { kind: 'block', axis: 1, blockSize: block } });
  // GatherBlockQuantized reads uint8 around its default zero point 128.
  const q = Uint8Array.from(t.values, (v) => v + 128);
  const data = ctx.editor.addInitializer(makeTensor(`${base}_Q8`, DataType.UINT8, [V, D], q));
  // Scales have the table's type: a float16 table gathers float16 rows.
  const scale = ctx.editor.addInitializer(scaleTensor(`${base}_scales`, w.dtype, t.scaleDims, t.scales));
  ctx.editor.requireOpset('com.microsoft', 1);
  gather(data, scale);
  const half = w.dtype === DataType.FLOAT16, bytesAfter = V * D + t.scales.length * (half ? 2 : 4);
  ctx.integerWeights.set(key, { names: [data, scale], sqnr: t.sqnr, bytes: bytesAfter });
  return { how, bytesBefore: weightBytes(w.dims, half ? 16 : 32), bytesAfter, sqnr: t.sqnr };
}
