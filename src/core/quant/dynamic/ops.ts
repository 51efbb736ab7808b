import { reducesRange } from '../options';
import { DataType } from '../../onnx/dtypes';
import type { NodeProto } from '../../onnx/proto';
import { makeTensor } from '../../onnx/tensor';
import type { OpQuantizer, QuantContext } from '../context';
import { quantizeTensor } from '../tensor-quant';
import { floatWeight, floatWeightDims, weightBytes } from '../weights';
import { attrFloat, attrInt, intAttr } from '../../onnx/attributes';


function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
  return t;
}

/**
 * Y = A·W as onnxruntime's quantize_dynamic writes it: DynamicQuantizeLinear(A) → uint8 A, scale, zero
 * point; MatMulInteger with int8 W (per output column scales); Cast to float; multiply by A_scale·W_scale.
 * onnxruntime fuses the chain into DynamicQuantizeMatMul / MatMulIntegerToFloat.
 */
function emitDynamicMatMul(ctx: QuantContext, node: NodeProto, a: string, w: Float32Array, K: number, N: number, out: string, bias?: string) {
  const opts = ctx.optionsFor(node);
  const perChannel = opts.perChannel;
  const q = quantizeTensor(w, [K, N], { qtype: 'int8', symmetric: true, granularity: perChannel ? { kind: 'channel', axis: 1 } : { kind: 'tensor' }, reduceRange: reducesRange(opts) });
  const base = `${ctx.modulePath(node) || node.name}.weight`;
  const e = ctx.editor;
  const wq = e.addInitializer(makeTensor(`${base}_quantized`, DataType.INT8, [K, N], q.values));
  const ws = e.addInitializer(makeTensor(`${base}_scale`, DataType.FLOAT, q.scaleDims, q.scales));
  const wz = e.addInitializer(makeTensor(`${base}_zero_point`, DataType.INT8, q.scaleDims, Int8Array.from(q.zeroPoints)));
  const prefix = node.name ?? 'MatMul';
  const how = `dynamic int8 (${perChannel ? 'per-channel' : 'per-tensor'} weight`;
  const decide = (ops: string) => ctx.decide({
    node: node.name ?? '', opType: node.op_type ?? '', modulePath: ctx.modulePath(node), how: `${how}, ${ops})`,
    weightBytesBefore: weightBytes([K, N], 32), weightBytesAfter: weightBytes([K, N], 8) + q.scales.length * 5, weightSqnr: q.sqnr,
  });
  if (e.opset() < 11) {
    // DynamicQuantizeLinear is opset 11; onnxruntime's fused contrib op (what its own fusion makes of the
    // chain below) quantizes A inside and takes any opset: older exports need no upgrade.
    e.requireOpset('com.microsoft', 1);
    e.replaceNode(node, [{ name: `${prefix}_DynamicQuantizeMatMul`, op_type: 'DynamicQuantizeMatMul', domain: 'com.microsoft', input: [a, wq, ws, wz, ...(bias ? [bias] : [])], output: [out] }]);
    return decide('com.microsoft DynamicQuantizeMatMul, for opset < 11');
  }
  const [aq, as, az] = [e.unique(`${a}_quantized`), e.unique(`${a}_scale`), e.unique(`${a}_zero_point`)];
  const [yi, yf, s, y] = [e.unique(`${prefix}_output_int32`), e.unique(`${prefix}_output_float`), e.unique(`${prefix}_scale`), bias ? e.unique(`${prefix}_output_nobias`) : out];
  const nodes: NodeProto[] = [
    { name: `${prefix}_DynamicQuantizeLinear`, op_type: 'DynamicQuantizeLinear', input: [a], output: [aq, as, az] },
    { name: `${prefix}_MatMulInteger`, op_type: 'MatMulInteger', input: [aq, wq, az, wz], output: [yi] },
    { name: `${prefix}_Cast`, op_type: 'Cast', input: [yi], output: [yf], attribute: [intAttr('to', DataType.FLOAT)] },
    { name: `${prefix}_scales_mul`, op_type: 'Mul', input: [as, ws], output: [s] },
    { name: `${prefix}_output_scale_mul`, op_type: 'Mul', input: [yf, s], output: [y] },
  ];
  if (bias) nodes.push({ name: `${prefix}_bias_add`, op_type: 'Add', input: [y, bias], output: [out] });
  e.replaceNode(node, nodes);
  decide('DynamicQuantizeLinear + MatMulInteger');
}

/** Dynamic-mode quantizers by op type. */
export const DYNAMIC_QUANTIZERS: Readonly<Record<string, OpQuantizer>> = {
  MatMul: {
    check(node, ctx) {
      const dims = floatWeightDims(ctx.view, node.input?.[1] ?? '', ctx.loc);
      if (!dims) return 'input 1 is not a constant float32 weight';
      if (dims.length !== 2) return 'dynamic MatMulInteger needs a 2-D weight';
      return undefined;
    },
    apply(node, ctx) {
      const w = floatWeight(ctx.view, node.input![1], ctx.loc)!;
      emitDynamicMatMul(ctx, node, node.input![0], w.data, w.dims[0], w.dims[1], node.output![0]);
    },
  },
  Gemm: {
    check(node, ctx) {
      if (attrInt(node, 'transA', 0)) return 'Gemm with transA';
      if (attrFloat(node, 'alpha', 1) !== 1 || attrFloat(node, 'beta', 1) !== 1) return 'Gemm with alpha or beta other than 1';
      if (floatWeightDims(ctx.view, node.input?.[1] ?? '', ctx.loc)?.length !== 2) return 'input B is not a constant 2-D float32 weight';
      return undefined;
    },
    apply(node, ctx) {
      const w = floatWeight(ctx.view, node.input![1], ctx.loc)!;
      const transB = attrInt(node, 'transB', 0) === 1;
      const [K, N] = transB ? [w.dims[1], w.dims[0]] : w.dims;
      emitDynamicMatMul(ctx, node, node.input![0], transB ? transpose(w.data, w.dims[0], w.dims[1]) : w.data, K, N, node.output![0], node.input![2] || undefined);
    },
  },
  Conv: {
    check: () => 'dynamic mode quantizes MatMul and Gemm; onnxruntime runs ConvInteger only with uint8 weights and per-tensor zero points, so Conv stays float here (use --mode static or weight)',
    apply: () => undefined,
  },
};
