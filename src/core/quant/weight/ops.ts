import { errorStats } from '../tensor-quant';
import type { NodeProto } from '../../onnx/proto';
import type { OpQuantizer, QuantContext } from '../context';
import { dequantizedWeightInput } from '../dequantized-weight';
import { floatWeight, floatWeightDims, scaleTensor, weightScratch } from '../weights';
import { DataType } from '../../onnx/dtypes';
import { dequantizeBlocks, emitMatMulNBits, matMulNBitsNode, nbits8Block, nbitsHow, nbitsKey, quantizeBlocksRtn } from './matmul-nbits';
import { gptqQuantize } from './gptq';
import { gatherBlockQuantized } from './gather-block';
import { attrFloat, attrInt } from '../../onnx/attributes';
import { einsumOutputAxis, einsumWeight } from './einsum';

const needsWeight = (index: number) => (node: NodeProto, ctx: QuantContext) => {
  const dims = floatWeightDims(ctx.view, node.input?.[index] ?? '', ctx.loc, true);
  if (!dims) return `input ${index} is not a constant float32/float16 weight`;
  if (dims.reduce((a, b) => a * b, 1) < 16) return 'weight too small to be worth quantizing';
  return undefined;
};

/** What a layer's row says when --bits 4 was asked for and its op has no 4-bit form (quantizeModel counts them). */
export const AT_8_BITS = '(4-bit applies to ';

/** A layer's row when --bits 4 was asked for and its op has no 4-bit form: says so (the warning counts them). */
const at8 = (ctx: QuantContext, node: NodeProto, how: string, only4 = 'MatMul and Gemm only') => (ctx.optionsFor(node).bits === 4 ? `${how} ${AT_8_BITS}${only4})` : how);

const int8Weight = (index: number, axisOf: (node: NodeProto, rank: number) => number | undefined, only4 = 'MatMul and Gemm only'): OpQuantizer => ({
  check: needsWeight(index),
  apply(node, ctx) {
    const rank = floatWeightDims(ctx.view, node.input![index], ctx.loc, true)!.length;
    const r = dequantizedWeightInput(ctx, node, index, axisOf(node, rank));
    ctx.decide({ node: node.name ?? '', opType: node.op_type ?? '', modulePath: ctx.modulePath(node), how: at8(ctx, node, r.how, only4), weightBytesBefore: r.bytesBefore, weightBytesAfter: r.bytesAfter, weightSqnr: r.sqnr });
  },
});

const matMulInt8 = int8Weight(1, (_n, rank) => (rank >= 2 ? rank - 1 : undefined));
/**
 * W · x, the weight as MatMul's first input (a graph convolution's adjacency, a token-mixing matrix): int8
 * with a scale per row of W (per output row); MatMulNBits takes its weight second only.
 */
const weightFirst = (node: NodeProto, ctx: QuantContext) => !!floatWeightDims(ctx.view, node.input?.[0] ?? '', ctx.loc, true) && !floatWeightDims(ctx.view, node.input?.[1] ?? '', ctx.loc, true);
const matMulAInt8 = int8Weight(0, (_n, rank) => (rank >= 2 ? rank - 2 : undefined), 'a MatMul\'s second input only');

/**
 * LSTM, GRU and RNN: the input weights W [directions, gates·hidden, input] and recurrent weights R
 * [directions, gates·hidden, hidden] stored int8 with a scale per gate row (axis 1); the bias stays float.
 */
const recurrentInt8: OpQuantizer = {
  check: (node, ctx) => needsWeight(1)(node, ctx) ?? needsWeight(2)(node, ctx),
  apply(node, ctx) {
    const [w, r] = [1, 2].map((i) => dequantizedWeightInput(ctx, node, i, 1));
    ctx.decide({
      node: node.name ?? '', opType: node.op_type ?? '', modulePath: ctx.modulePath(node), how: at8(ctx, node, `${w.how} (W and R, a scale per gate row)`),
      weightBytesBefore: w.bytesBefore + r.bytesBefore, weightBytesAfter: w.bytesAfter + r.bytesAfter, weightSqnr: Math.min(w.sqnr, r.sqnr),
    });
  },
};

/** Einsum with one stored weight (see einsumWeight): int8, a scale per output channel where the equation names one. */
const einsumInt8: OpQuantizer = {
  check: (node, ctx) => {
    const i = einsumWeight(node, ctx);
    return i === undefined ? 'not a layer: no operand, or more than one, is a constant float32/float16 weight' : needsWeight(i)(node, ctx);
  },
  apply(node, ctx) {
    const i = einsumWeight(node, ctx)!;
    const r = dequantizedWeightInput(ctx, node, i, einsumOutputAxis(node, i));
    ctx.decide({ node: node.name ?? '', opType: 'Einsum', modulePath: ctx.modulePath(node), how: at8(ctx, node, r.how), weightBytesBefore: r.bytesBefore, weightBytesAfter: r.bytesAfter, weightSqnr: r.sqnr });
  },
};

// Gemm's B is [K, N], or [N, K] with transB: the output channel is its last or first axis.
const gemmInt8 = int8Weight(1, (node) => (attrInt(node, 'transB', 0) ? 0 : 1), 'MatMul, and Gemm without transA whose C is a stored vector');

/** Whether int8 MatMul weights are written as MatMulNBits (the nbits forms). */
const nbitsForm = (ctx: QuantContext) => ctx.weightFormat === 'nbits' || ctx.weightFormat === 'nbits+expand';

/**
 * Why a Gemm cannot be MatMulNBits (undefined: it can): MatMulNBits computes A·W + bias over A's last
 * axis, so A must not be transposed, and C must be a stored vector of N (or [1, N], or one value) to
 * become its bias.
 */
export function gemmNBitsBlocker(node: NodeProto, view: QuantContext['view'], loc: QuantContext['loc']): string | undefined {
  if (attrInt(node, 'transA', 0)) return 'transA';
  const dims = floatWeightDims(view, node.input?.[1] ?? '', loc, true);
  if (dims?.length !== 2) return 'B is not a stored matrix';
  const c = node.input?.[2];
  if (!c) return undefined;
  const n = attrInt(node, 'transB', 0) ? dims[0] : dims[1];
  const cd = floatWeightDims(view, c, loc, true);
  const size = cd?.reduce((a, b) => a * b, 1);
  return cd && (size === 1 || (size === n && cd.length <= 2 && (cd.length < 2 || cd[0] === 1))) ? undefined : 'C is not a stored vector of N';
}

/**
 * beta · C (one value: broadcast) as a stored [N] vector, MatMulNBits' bias (undefined without C), in the
 * weight's type as its scales are: MatMulNBits takes both in A's.
 */
function gemmBias(node: NodeProto, ctx: QuantContext, N: number): string | undefined {
  const c = node.input?.[2];
  if (!c) return undefined;
  const beta = attrFloat(node, 'beta', 1);
  const w = floatWeight(ctx.view, c, ctx.loc, true)!;
  const dtype = ctx.view.constant(node.input![1])?.data_type === DataType.FLOAT16 ? DataType.FLOAT16 : DataType.FLOAT;
  const base = node.input![1].startsWith('onnx::') ? `${ctx.modulePath(node) || node.name}` : node.input![1];
  return ctx.editor.addInitializer(scaleTensor(`${base}_bias`, dtype, [N], Float32Array.from({ length: N }, (_, j) => Math.fround(beta * w.data[w.data.length === 1 ? 0 : j]))));
}

/**
 * A MatMul-like layer (A [.., K] times W [K, N]) as MatMulNBits: int4 (RTN or GPTQ) or, with `nbits8`,
 * int8. A weight other layers read too is written once under a key of `weightKey` and the form, and read
 * by all of them (GPTQ's Hessian is then all of its readers', see prepare). `weight` reads W as [K, N].
 */
function nbitsLayer(node: NodeProto, ctx: QuantContext, K: number, N: number, nbits8: boolean, weightKey: string, weight: () => { data: Float32Array; dtype: DataType.FLOAT | DataType.FLOAT16 }, bias?: string): void {
  const opts = ctx.optionsFor(node);
  const bits: 4 | 8 = nbits8 ? 8 : 4, blockSize = nbits8 ? nbits8Block(K) : opts.blockSize, symmetric = nbits8 || opts.symmetric, algorithm = nbits8 ? 'rtn' : opts.algorithm;
  const key = nbitsKey(weightKey, bits, blockSize, symmetric, algorithm === 'gptq' ? `gptq ${opts.gptqDamp} ${opts.gptqActOrder}` : algorithm);
  const decide = (how: string, bytesBefore: number, bytesAfter: number, weightSqnr: number) => ctx.decide({ node: node.name ?? '', opType: node.op_type ?? 'MatMul', modulePath: ctx.modulePath(node), how, weightBytesBefore: bytesBefore, weightBytesAfter: bytesAfter, weightSqnr });
  const shared = ctx.integerWeights.get(key);
  if (shared) {
    // Another reader wrote it: this one reads the same initializers (the first reader's decision counts the bytes).
    const shape = { K, N, bits, blockSize, zeroPoints: symmetric ? undefined : new Uint8Array(0) };
    ctx.editor.replaceNode(node, [matMulNBitsNode(node, shared.names, shape, bias)]);
    return decide(`${nbitsHow(shape, algorithm)}, shared`, 0, 0, shared.sqnr);
  }
  const w = weight();
  const bq = algorithm === 'gptq'
    ? gptqQuantize(w.data, K, N, ctx.hessian(node), { blockSize, symmetric, damp: opts.gptqDamp, actOrder: opts.gptqActOrder })
    : quantizeBlocksRtn(w.data, K, N, blockSize, symmetric, bits);
  const sqnr = errorStats(w.data, dequantizeBlocks(bq)).sqnr;
  const r = emitMatMulNBits(ctx, node, bq, algorithm, w.dtype, bias);
  ctx.integerWeights.set(key, { names: r.inputs, sqnr, bytes: r.bytesAfter });
  decide(r.how, r.bytesBefore, r.bytesAfter, sqnr);
}

/** Weight-only quantizers by op type (onnxruntime-tool style registry). */
export const WEIGHT_QUANTIZERS: Readonly<Record<string, OpQuantizer>> = {
  MatMul: {
    check(node, ctx) {
      if (weightFirst(node, ctx)) return matMulAInt8.check(node, ctx);
      const r = needsWeight(1)(node, ctx);
      if (r) return r;
      if (ctx.optionsFor(node).bits === 4 && floatWeightDims(ctx.view, node.input![1], ctx.loc, true)!.length !== 2) return 'MatMulNBits needs a 2-D weight';
      return undefined;
    },
    async apply(node, ctx) {
      if (weightFirst(node, ctx)) return matMulAInt8.apply(node, ctx);
      const opts = ctx.optionsFor(node);
      const nbits8 = opts.bits === 8 && nbitsForm(ctx) && floatWeightDims(ctx.view, node.input![1], ctx.loc, true)!.length === 2;
      if (opts.bits === 8 && !nbits8) return matMulInt8.apply(node, ctx);
      const [K, N] = floatWeightDims(ctx.view, node.input![1], ctx.loc, true)!;
      nbitsLayer(node, ctx, K, N, nbits8, node.input![1], () => floatWeight(ctx.view, node.input![1], ctx.loc, true, weightScratch)!);
    },
  },
  Gemm: {
    check: gemmInt8.check,
    apply(node, ctx) {
      const opts = ctx.optionsFor(node);
      const nbits = opts.bits === 4 || (opts.bits === 8 && nbitsForm(ctx));
      if (!nbits || gemmNBitsBlocker(node, ctx.view, ctx.loc)) return gemmInt8.apply(node, ctx);
      // As MatMulNBits: B [K, N] (transposed back from [N, K]) times alpha, beta · C its bias.
      const transB = attrInt(node, 'transB', 0) === 1, alpha = attrFloat(node, 'alpha', 1);
      const dims = floatWeightDims(ctx.view, node.input![1], ctx.loc, true)!;
      const [K, N] = transB ? [dims[1], dims[0]] : dims;
      const asKN = () => {
        const w = floatWeight(ctx.view, node.input![1], ctx.loc, true, weightScratch)!;
        const data = new Float32Array(K * N);
        for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) data[k * N + n] = Math.fround(alpha * (transB ? w.data[n * K + k] : w.data[k * N + n]));
        return { data, dtype: w.dtype };
      };
      nbitsLayer(node, ctx, K, N, opts.bits === 8, `${node.input![1]}|gemm ${transB ? 'T' : ''} ${alpha}`, asKN, gemmBias(node, ctx, N));
    },
  },
  Conv: int8Weight(1, () => 0),
  ConvTranspose: int8Weight(1, () => 1),
  LSTM: recurrentInt8,
  GRU: recurrentInt8,
  RNN: recurrentInt8,
  Einsum: einsumInt8,
  // onnxruntime-transformers' fused Attention: its packed [hidden, 3·hidden] QKV weight, a scale per column.
  'com.microsoft::Attention': int8Weight(1, () => 1),
  // Embedding tables: one scale per row (token), so rare tokens keep their own range.
  Gather: {
    check(node, ctx) {
      if (attrInt(node, 'axis', 0) !== 0) return 'Gather on an axis other than 0';
      return needsWeight(0)(node, ctx);
    },
    apply(node, ctx) {
      // The MatMulNBits forms (and an unmeasured 'auto') gather int8 rows with onnxruntime's GatherBlockQuantized.
      const blocks = ctx.gatherBlocks || ctx.weightFormat === 'nbits' || ctx.weightFormat === 'nbits+expand' ? gatherBlockQuantized(ctx, node) : undefined;
      const r = blocks ?? dequantizedWeightInput(ctx, node, 0, 0);
      ctx.decide({ node: node.name ?? '', opType: 'Gather', modulePath: ctx.modulePath(node), how: at8(ctx, node, r.how), weightBytesBefore: r.bytesBefore, weightBytesAfter: r.bytesAfter, weightSqnr: r.sqnr });
    },
  },
};
