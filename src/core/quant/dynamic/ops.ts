import { reducesRange } from '../options';
import { upgradeBlocker } from '../../onnx/opset-upgrade';
import { DataType } from '../../onnx/dtypes';
import type { NodeProto } from '../../onnx/proto';
import { makeTensor } from '../../onnx/tensor';
import type { IntegerWeight, OpQuantizer, QuantContext } from '../context';
import { quantizeTensor } from '../tensor-quant';
import { floatWeight, floatWeightDims, weightBytes } from '../weights';
import { attrFloat, attrInt, intAttr } from '../../onnx/attributes';
import { gatherBlock, gatherBlockQuantized } from '../weight/gather-block';


/** A row-major [rows, cols] matrix transposed (into `out` at `at`, when given). */
function transpose<T extends Float32Array | Int8Array>(w: T, rows: number, cols: number, out: T = new (w.constructor as new (n: number) => T)(w.length), at = 0): T {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[at + c * rows + r] = w[r * cols + c];
  return out;
}

/**
 * A [K, N] weight as int8, symmetric, with a scale per output column (or one, --per-tensor) and zero
 * points of 0, written once per weight and layout (`key`) and shared by every reader after the first.
 * `scaleDims`: the shape the reading kernel wants its scale and zero point in.
 */
function columnInt8Weight(ctx: QuantContext, node: NodeProto, key: string, what: string, w: () => Float32Array, K: number, N: number, scaleDims: (q: ReturnType<typeof quantizeTensor>) => number[]): IntegerWeight & { shared: boolean } {
  const opts = ctx.optionsFor(node);
  const e = ctx.editor;
  return sharedWeight(ctx, `${key}|${opts.perChannel}|${reducesRange(opts)}`, () => {
    const q = quantizeTensor(w(), [K, N], { qtype: 'int8', symmetric: true, granularity: opts.perChannel ? { kind: 'channel', axis: 1 } : { kind: 'tensor' }, reduceRange: reducesRange(opts) });
    const base = `${ctx.modulePath(node) || node.name}.${what}`;
    const dims = scaleDims(q);
    return {
      names: [
        e.addInitializer(makeTensor(`${base}_quantized`, DataType.INT8, [K, N], q.values)),
        e.addInitializer(makeTensor(`${base}_scale`, DataType.FLOAT, dims, q.scales)),
        e.addInitializer(makeTensor(`${base}_zero_point`, DataType.INT8, dims, Int8Array.from(q.zeroPoints))),
      ],
      sqnr: q.sqnr, bytes: weightBytes([K, N], 8) + q.scales.length * 5,
    };
  });
}

/**
 * Y = A·W as onnxruntime's quantize_dynamic writes it: DynamicQuantizeLinear(A) → uint8 A, scale, zero
 * point; MatMulInteger with int8 W (per output column scales); Cast to float; multiply by A_scale·W_scale.
 * onnxruntime fuses the chain into DynamicQuantizeMatMul / MatMulIntegerToFloat.
 */
function emitDynamicMatMul(ctx: QuantContext, node: NodeProto, a: string, weight: string, w: () => Float32Array, K: number, N: number, out: string, bias?: string) {
  const perChannel = ctx.optionsFor(node).perChannel;
  const e = ctx.editor;
  const iw = columnInt8Weight(ctx, node, `matmul|${weight}|${node.op_type === 'Gemm' && attrInt(node, 'transB', 0) ? 'T' : ''}`, 'weight', w, K, N, (q) => q.scaleDims);
  const [wq, ws, wz] = iw.names;
  const prefix = node.name ?? 'MatMul';
  const how = `dynamic int8 (${perChannel ? 'per-channel' : 'per-tensor'} weight${iw.shared ? ', shared' : ''}`;
  const decide = (ops: string) => ctx.decide({
    node: node.name ?? '', opType: node.op_type ?? '', modulePath: ctx.modulePath(node), how: `${how}, ${ops})`,
    weightBytesBefore: iw.shared ? 0 : weightBytes([K, N], 32), weightBytesAfter: iw.shared ? 0 : iw.bytes, weightSqnr: iw.sqnr,
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

/**
 * Conv as onnxruntime's quantize_dynamic writes it: DynamicQuantizeLinear(X) → uint8 X; ConvInteger with
 * uint8 weights (onnxruntime's CPU kernel takes uint8 × uint8 and one weight zero point); Cast to float;
 * multiply by X_scale·W_scale and add the bias. The weights keep a scale per output channel: they are
 * quantized symmetrically (zero point 128 for every channel) and the per-channel scales multiply the
 * int32 result, so one zero point serves them all.
 */
function emitDynamicConv(ctx: QuantContext, node: NodeProto): void {
  const dims = floatWeightDims(ctx.view, node.input![1], ctx.loc)!;
  const M = dims[0], rank = dims.length;
  const e = ctx.editor;
  const iw = sharedWeight(ctx, `conv|${node.input![1]}`, () => {
    const w = floatWeight(ctx.view, node.input![1], ctx.loc)!;
    const q = quantizeTensor(w.data, w.dims, { qtype: 'int8', symmetric: true, granularity: { kind: 'channel', axis: 0 } });
    const base = `${ctx.modulePath(node) || node.name}.weight`;
    return {
      names: [
        e.addInitializer(makeTensor(`${base}_quantized`, DataType.UINT8, w.dims, Uint8Array.from(q.values, (v) => v + 128))),
        e.addInitializer(makeTensor(`${base}_zero_point`, DataType.UINT8, [], Uint8Array.of(128))),
        e.addInitializer(makeTensor(`${base}_scale`, DataType.FLOAT, [1, M, ...Array(rank - 2).fill(1)], Float32Array.from(q.scales.length === M ? q.scales : Array(M).fill(q.scales[0])))),
      ],
      sqnr: q.sqnr, bytes: weightBytes(w.dims, 8) + M * 4,
    };
  });
  const [wq, wz, ws] = iw.names;
  const prefix = node.name ?? 'Conv';
  const x = node.input![0], out = node.output![0], bias = node.input?.[2];
  const [xq, xs, xz] = [e.unique(`${x}_quantized`), e.unique(`${x}_scale`), e.unique(`${x}_zero_point`)];
  const [yi, yf, s, y] = [e.unique(`${prefix}_output_int32`), e.unique(`${prefix}_output_float`), e.unique(`${prefix}_scale`), bias ? e.unique(`${prefix}_output_nobias`) : out];
  const conv: NodeProto = { name: `${prefix}_ConvInteger`, op_type: 'ConvInteger', input: [xq, wq, xz, wz], output: [yi], attribute: (node.attribute ?? []).filter((a) => a.name !== 'activation') };
  const nodes: NodeProto[] = [
    ...(e.opset() >= 11 ? [{ name: `${prefix}_DynamicQuantizeLinear`, op_type: 'DynamicQuantizeLinear', input: [x], output: [xq, xs, xz] }] : dynamicQuantizeOpset10(ctx, prefix, x, [xq, xs, xz])),
    conv,
    { name: `${prefix}_Cast`, op_type: 'Cast', input: [yi], output: [yf], attribute: [intAttr('to', DataType.FLOAT)] },
    { name: `${prefix}_scales_mul`, op_type: 'Mul', input: [xs, ws], output: [s] },
    { name: `${prefix}_output_scale_mul`, op_type: 'Mul', input: [yf, s], output: [y] },
  ];
  if (bias) {
    // The check made sure the bias is a stored [M] vector: reshaped once to broadcast over the channels.
    const [shaped] = sharedWeight(ctx, `conv-bias|${bias}`, () => ({
      names: [e.addInitializer(makeTensor(`${prefix}_bias_per_channel`, DataType.FLOAT, [1, M, ...Array(rank - 2).fill(1)], floatWeight(ctx.view, bias, ctx.loc)!.data))], sqnr: Infinity, bytes: 0,
    })).names;
    nodes.push({ name: `${prefix}_bias_add`, op_type: 'Add', input: [y, shaped], output: [out] });
  }
  e.replaceNode(node, nodes);
  ctx.decide({
    node: node.name ?? '', opType: 'Conv', modulePath: ctx.modulePath(node), how: `dynamic int8 (per-channel weight${iw.shared ? ', shared' : ''}, ${e.opset() >= 11 ? 'DynamicQuantizeLinear' : 'ReduceMin/ReduceMax + QuantizeLinear (opset 10)'} + ConvInteger)`,
    weightBytesBefore: iw.shared ? 0 : weightBytes(dims, 32), weightBytesAfter: iw.shared ? 0 : iw.bytes, weightSqnr: iw.sqnr,
  });
}

/**
 * The integer weight behind `key` (a weight and its layout), written by `make` the first time and shared
 * by every later layer that reads the same weight: RAFT runs its update block's convs 12 times on one set
 * of weights, and a copy per run would make the "quantized" model larger than the float one.
 */
function sharedWeight(ctx: QuantContext, key: string, make: () => IntegerWeight): IntegerWeight & { shared: boolean } {
  const existing = ctx.integerWeights.get(key);
  if (existing) return { ...existing, shared: true };
  const made = make();
  ctx.integerWeights.set(key, made);
  return { ...made, shared: false };
}

/**
 * DynamicQuantizeLinear (opset 11) from opset-10 ops, for older exports: the range widened to hold 0,
 * scale = range / 255, zero point = QuantizeLinear(-min) (the same rounding and saturation), then
 * QuantizeLinear of x. A scale floor keeps an all-zero tensor from dividing by zero.
 */
function dynamicQuantizeOpset10(ctx: QuantContext, prefix: string, x: string, [xq, xs, xz]: string[]): NodeProto[] {
  const e = ctx.editor;
  // The four scalars are the same for every conv: written once.
  const [zero, levels, floor, u8zero] = sharedWeight(ctx, 'opset10-dynamic-quantize', () => ({
    names: [
      ...([['zero', 0], ['levels', 255], ['scale_floor', 1e-30]] as const).map(([n, v]) => e.addInitializer(makeTensor(`dynamic_quantize_${n}`, DataType.FLOAT, [], Float32Array.of(v)))),
      e.addInitializer(makeTensor('dynamic_quantize_u8_zero', DataType.UINT8, [], Uint8Array.of(0))),
    ], sqnr: Infinity, bytes: 0,
  })).names;
  const t = (what: string) => e.unique(`${x}_${what}`);
  const [mn, mx, lo, hi, span, raw, negLo] = ['min', 'max', 'lo', 'hi', 'span', 'raw_scale', 'neg_lo'].map(t);
  const node = (op: string, input: string[], output: string, attribute: NodeProto['attribute'] = []): NodeProto => ({ name: `${prefix}_${op}`, op_type: op, input, output: [output], attribute });
  return [
    node('ReduceMin', [x], mn, [intAttr('keepdims', 0)]),
    node('ReduceMax', [x], mx, [intAttr('keepdims', 0)]),
    node('Min', [mn, zero], lo),
    node('Max', [mx, zero], hi),
    node('Sub', [hi, lo], span),
    node('Div', [span, levels], raw),
    node('Max', [raw, floor], xs),
    node('Neg', [lo], negLo),
    node('QuantizeLinear', [negLo, xs, u8zero], xz),
    node('QuantizeLinear', [x, xs, xz], xq),
  ];
}

/**
 * LSTM as onnxruntime's quantize_dynamic writes it: com.microsoft DynamicQuantizeLSTM, which quantizes
 * X and H on the fly each step and runs its gate GEMMs in int8. W [D, 4H, I] and R [D, 4H, H] become int8
 * with a symmetric scale per gate row (per direction × 4H), stored transposed ([D, I, 4H], [D, H, 4H]) as
 * the kernel reads them; everything else (B, sequence lengths, initial states, peepholes) passes through.
 */
function emitDynamicLstm(ctx: QuantContext, node: NodeProto): void {
  const e = ctx.editor;
  const base = `${ctx.modulePath(node) || node.name}`;
  let before = 0, after = 0, sqnr = Infinity;
  const quantized = (index: number, what: string): [string, string, string] => {
    const w = floatWeight(ctx.view, node.input![index], ctx.loc)!;
    const [d, rows, cols] = w.dims;
    const q = quantizeTensor(w.data, [d * rows, cols], { qtype: 'int8', symmetric: true, granularity: { kind: 'channel', axis: 0 }, reduceRange: reducesRange(ctx.optionsFor(node)) });
    const values = q.values as Int8Array, t = new Int8Array(values.length); // int8 qtype
    for (let k = 0; k < d; k++) transpose(values.subarray(k * rows * cols, (k + 1) * rows * cols), rows, cols, t, k * rows * cols);
    before += weightBytes(w.dims, 32);
    after += weightBytes(w.dims, 8) + q.scales.length * 5;
    sqnr = Math.min(sqnr, q.sqnr);
    return [
      e.addInitializer(makeTensor(`${base}.${what}_quantized`, DataType.INT8, [d, cols, rows], t)),
      e.addInitializer(makeTensor(`${base}.${what}_scale`, DataType.FLOAT, [d, rows], q.scales)),
      e.addInitializer(makeTensor(`${base}.${what}_zero_point`, DataType.INT8, [d, rows], new Int8Array(d * rows))),
    ];
  };
  const [wq, ws, wz] = quantized(1, 'W');
  const [rq, rs, rz] = quantized(2, 'R');
  const rest = Array.from({ length: 5 }, (_, k) => node.input?.[3 + k] ?? '');
  e.requireOpset('com.microsoft', 1);
  e.replaceNode(node, [{
    name: `${node.name ?? 'LSTM'}_quant`, op_type: 'DynamicQuantizeLSTM', domain: 'com.microsoft',
    input: [node.input![0], wq, rq, ...rest, ws, wz, rs, rz], output: node.output, attribute: (node.attribute ?? []).filter((a) => a.name !== 'layout'),
  }]);
  ctx.decide({
    node: node.name ?? '', opType: 'LSTM', modulePath: ctx.modulePath(node), how: 'dynamic int8 (per-row weights, com.microsoft DynamicQuantizeLSTM)',
    weightBytesBefore: before, weightBytesAfter: after, weightSqnr: sqnr,
  });
}

/** Attention attributes QAttention takes as they are; any other changes what Attention computes. */
const QATTENTION_ATTRIBUTES = new Set(['num_heads', 'unidirectional']);

/**
 * onnxruntime-transformers' fused Attention (com.microsoft; BERT-family models after its optimizer) as
 * its quantize_dynamic writes it: DynamicQuantizeLinear(input) → QAttention with the packed [hidden, 3·hidden]
 * QKV weight in int8 (a scale per column, or one), the float bias, mask and past passed through.
 */
function emitQAttention(ctx: QuantContext, node: NodeProto): void {
  const e = ctx.editor;
  const opts = ctx.optionsFor(node);
  const [K, N] = floatWeightDims(ctx.view, node.input![1], ctx.loc)!;
  // QAttention reads a per-column scale and zero point as 1-D [3·hidden] vectors, a per-tensor one as a scalar.
  const iw = columnInt8Weight(ctx, node, `attention|${node.input![1]}`, 'qkv_weight', () => floatWeight(ctx.view, node.input![1], ctx.loc)!.data, K, N, (q) => (q.scales.length === 1 ? [] : [N]));
  const [wq, ws, wz] = iw.names;
  const prefix = node.name ?? 'Attention';
  const x = node.input![0];
  const [xq, xs, xz] = [e.unique(`${x}_quantized`), e.unique(`${x}_scale`), e.unique(`${x}_zero_point`)];
  const quantizeX = e.opset() >= 11 ? [{ name: `${prefix}_DynamicQuantizeLinear`, op_type: 'DynamicQuantizeLinear', input: [x], output: [xq, xs, xz] }] : dynamicQuantizeOpset10(ctx, prefix, x, [xq, xs, xz]);
  const [, , bias, mask = '', past = ''] = node.input!;
  e.requireOpset('com.microsoft', 1);
  e.replaceNode(node, [...quantizeX, {
    name: `${prefix}_quant`, op_type: 'QAttention', domain: 'com.microsoft',
    input: [xq, wq, bias, xs, ws, mask, xz, wz, ...(past ? [past] : [])], output: node.output, attribute: node.attribute,
  }]);
  ctx.decide({
    node: node.name ?? '', opType: 'Attention', modulePath: ctx.modulePath(node), how: `dynamic int8 (${opts.perChannel ? 'per-column' : 'per-tensor'} QKV weight${iw.shared ? ', shared' : ''}, com.microsoft QAttention)`,
    weightBytesBefore: iw.shared ? 0 : weightBytes([K, N], 32), weightBytesAfter: iw.shared ? 0 : iw.bytes, weightSqnr: iw.sqnr,
  });
}

/**
 * onnxruntime-transformers' fused EmbedLayerNormalization as its quantize_dynamic writes it:
 * QEmbedLayerNormalization with the word, position and segment tables, gamma and beta each uint8 with one
 * scale (the kernel takes nothing finer); the ids and the mask pass through.
 */
function emitQEmbedLayerNorm(ctx: QuantContext, node: NodeProto): void {
  const e = ctx.editor;
  const base = ctx.modulePath(node) || node.name || 'embeddings';
  let before = 0, after = 0, sqnr = Infinity;
  const quantized = (index: number, what: string): [string, string, string] | ['', '', ''] => {
    const name = node.input?.[index];
    if (!name) return ['', '', ''];
    const w = floatWeight(ctx.view, name, ctx.loc)!;
    const q = quantizeTensor(w.data, w.dims, { qtype: 'uint8', symmetric: false, granularity: { kind: 'tensor' } });
    before += weightBytes(w.dims, 32);
    after += weightBytes(w.dims, 8) + 5;
    sqnr = Math.min(sqnr, q.sqnr);
    return [
      e.addInitializer(makeTensor(`${base}.${what}_quantized`, DataType.UINT8, w.dims, q.values)),
      e.addInitializer(makeTensor(`${base}.${what}_scale`, DataType.FLOAT, [], q.scales)),
      e.addInitializer(makeTensor(`${base}.${what}_zero_point`, DataType.UINT8, [], Uint8Array.from(q.zeroPoints))),
    ];
  };
  const parts = ([[2, 'word_embeddings'], [3, 'position_embeddings'], [4, 'token_type_embeddings'], [5, 'LayerNorm.weight'], [6, 'LayerNorm.bias']] as const).map(([i, what]) => quantized(i, what));
  e.requireOpset('com.microsoft', 1);
  e.replaceNode(node, [{
    name: `${node.name ?? 'EmbedLayerNormalization'}_quant`, op_type: 'QEmbedLayerNormalization', domain: 'com.microsoft',
    input: [node.input![0], node.input?.[1] ?? '', ...parts.map((p) => p[0]), node.input?.[7] ?? '', ...parts.map((p) => p[1]), ...parts.map((p) => p[2])],
    output: node.output!.slice(0, 2), attribute: (node.attribute ?? []).filter((a) => a.name === 'epsilon'),
  }]);
  ctx.decide({
    node: node.name ?? '', opType: 'EmbedLayerNormalization', modulePath: ctx.modulePath(node), how: 'dynamic uint8 tables (per-tensor, com.microsoft QEmbedLayerNormalization)',
    weightBytesBefore: before, weightBytesAfter: after, weightSqnr: sqnr,
  });
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
      const [K, N] = floatWeightDims(ctx.view, node.input![1], ctx.loc)!;
      emitDynamicMatMul(ctx, node, node.input![0], node.input![1], () => floatWeight(ctx.view, node.input![1], ctx.loc)!.data, K, N, node.output![0]);
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
      const dims = floatWeightDims(ctx.view, node.input![1], ctx.loc)!;
      const transB = attrInt(node, 'transB', 0) === 1;
      const [K, N] = transB ? [dims[1], dims[0]] : dims;
      const w = () => {
        const data = floatWeight(ctx.view, node.input![1], ctx.loc)!.data;
        return transB ? transpose(data, dims[0], dims[1]) : data;
      };
      emitDynamicMatMul(ctx, node, node.input![0], node.input![1], w, K, N, node.output![0], node.input![2] || undefined);
    },
  },
  Conv: {
    check(node, ctx) {
      if (ctx.editor.opset() < 10) return `dynamic Conv needs opset 10 (ConvInteger); this model is opset ${ctx.editor.opset()} and could not be raised (${upgradeBlocker(ctx.editor)}; use --mode weight)`;
      const dims = floatWeightDims(ctx.view, node.input?.[1] ?? '', ctx.loc);
      if (!dims || dims.length < 3) return 'input 1 is not a constant float32 convolution weight';
      const b = node.input?.[2];
      if (b && floatWeightDims(ctx.view, b, ctx.loc)?.length !== 1) return 'its bias is not a constant 1-D float32 tensor';
      return undefined;
    },
    apply: (node, ctx) => emitDynamicConv(ctx, node),
  },
  // Embedding tables: int8 rows gathered by GatherBlockQuantized, as weight mode writes them unmeasured
  // (the table stays int8 in memory; only the gathered rows are dequantized).
  Gather: {
    check(node, ctx) {
      if (attrInt(node, 'axis', 0) !== 0) return 'Gather on an axis other than 0';
      const dims = floatWeightDims(ctx.view, node.input?.[0] ?? '', ctx.loc);
      if (dims?.length !== 2) return 'input 0 is not a constant 2-D float32 table';
      if (!gatherBlock(dims[1])) return `rows of ${dims[1]} values: no block of 16 to 128 divides them`;
      if (dims[0] * dims[1] < 16384) return `a small table (${dims[0]} × ${dims[1]}): not worth a quantized gather`;
      return undefined;
    },
    apply(node, ctx) {
      const r = gatherBlockQuantized(ctx, node)!;
      ctx.decide({ node: node.name ?? '', opType: 'Gather', modulePath: ctx.modulePath(node), how: r.how, weightBytesBefore: r.bytesBefore, weightBytesAfter: r.bytesAfter, weightSqnr: r.sqnr });
    },
  },
  'com.microsoft::Attention': {
    check(node, ctx) {
      const dims = floatWeightDims(ctx.view, node.input?.[1] ?? '', ctx.loc);
      if (dims?.length !== 2) return 'its QKV weight is not a constant 2-D float32 tensor';
      if (!node.input?.[2] || floatWeightDims(ctx.view, node.input[2], ctx.loc)?.length !== 1) return 'its bias is not a constant 1-D float32 tensor (QAttention needs one)';
      const extra = (node.input ?? []).slice(5).findIndex(Boolean);
      if (extra >= 0) return `input ${5 + extra} (attention bias or past sequence length): QAttention has no such input`;
      const other = (node.attribute ?? []).find((a) => !QATTENTION_ATTRIBUTES.has(a.name ?? ''));
      if (other) return `attribute ${other.name}: QAttention does not take it`;
      return undefined;
    },
    apply: (node, ctx) => emitQAttention(ctx, node),
  },
  'com.microsoft::EmbedLayerNormalization': {
    check(node, ctx) {
      for (const [i, what] of [[2, 'word'], [3, 'position']] as const) if (floatWeightDims(ctx.view, node.input?.[i] ?? '', ctx.loc)?.length !== 2) return `its ${what} embedding is not a constant 2-D float32 table`;
      if (node.input?.[4] && floatWeightDims(ctx.view, node.input[4], ctx.loc)?.length !== 2) return 'its segment embedding is not a constant 2-D float32 table';
      for (const [i, what] of [[5, 'gamma'], [6, 'beta']] as const) if (floatWeightDims(ctx.view, node.input?.[i] ?? '', ctx.loc)?.length !== 1) return `its ${what} is not a constant 1-D float32 vector`;
      if (node.input?.[8]) return 'position_ids given: QEmbedLayerNormalization has no such input';
      if (node.output?.[2]) return 'its embedding sum is read: QEmbedLayerNormalization does not output it';
      const other = (node.attribute ?? []).find((a) => a.name !== 'epsilon');
      if (other) return `attribute ${other.name}: QEmbedLayerNormalization does not take it`;
      return undefined;
    },
    apply: (node, ctx) => emitQEmbedLayerNorm(ctx, node),
  },
  LSTM: {
    check(node, ctx) {
      for (const [i, what] of [[1, 'W'], [2, 'R']] as const) if (floatWeightDims(ctx.view, node.input?.[i] ?? '', ctx.loc)?.length !== 3) return `its ${what} is not a constant 3-D float32 weight`;
      if (attrInt(node, 'layout', 0) !== 0) return 'batch-first layout (layout=1): DynamicQuantizeLSTM reads sequence-first only';
      return undefined;
    },
    apply: (node, ctx) => emitDynamicLstm(ctx, node),
  },
};
