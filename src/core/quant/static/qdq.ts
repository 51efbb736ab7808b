import { DataType } from '../../onnx/dtypes';
import type { NodeProto } from '../../onnx/proto';
import { makeTensor } from '../../onnx/tensor';
import { clipBounds } from '../../onnx/scalar-constant';
import type { OpQuantizer, QuantContext } from '../context';
import { dequantizedWeightInput } from '../dequantized-weight';
import { QUANT_TYPES } from '../qtypes';
import { qdqDomain } from '../qdq-domain';
import { roundHalfEven } from '../rounding';
import { floatWeight, floatWeightDims, type FloatWeight } from '../weights';
import { attrFloat, attrInt, attrString, intAttr } from '../../onnx/attributes';
import { AMPLIFIERS_REACHED, reachesAmplifier } from './amplifiers';
import { inferRanks } from '../../onnx/ranks';
import { LAYER_OPS } from '../../onnx/layer-ops';

/** Ops whose output takes its input's scale, so onnxruntime can drop the Q/DQ around them. */
export const PASS_THROUGH = new Set(['Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze', 'MaxPool', 'Identity', 'Slice', 'Expand', 'Split', 'Gather']);

/**
 * Whether a node's output takes its input's range and scale: the pass-through ops, and Resize except in
 * cubic mode. Nearest picks input values and linear averages them, so the output stays within the input's
 * range (cubic overshoots it), as onnxruntime's own quantization tool writes Resize. Around a nearest
 * Resize onnxruntime then drops the Q/DQ pair and moves the int8 values (a linear one it still runs in
 * float); and calibration has one large tensor less to read (PaddleOCR det: six upsampled maps).
 */
export function sharesInputRange(n: NodeProto): boolean {
  const op = n.op_type ?? '';
  return PASS_THROUGH.has(op) || (op === 'Resize' && attrString(n, 'mode') !== 'cubic');
}
const POOLING = ['MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool'];

/** Float activations a static node reads or writes (weights, biases and shape inputs excluded). */
export function activationTensors(node: NodeProto, ctx: QuantContext): string[] {
  const op = node.op_type ?? '';
  let inputs = (node.input ?? []).filter((i) => i && !ctx.view.constant(i));
  if (PASS_THROUGH.has(op) || op === 'Resize') inputs = inputs.slice(0, 1); // shape, axes, scales inputs are not data
  return [...inputs, ...(node.output ?? []).slice(0, 1)];
}

const AMPLIFIED = `static: its values reach ${AMPLIFIERS_REACHED}: left exact`;

/**
 * Puts QuantizeLinear → DequantizeLinear on a calibrated activation (once) and points its readers at it:
 * the quantized nodes, or with `anyReader` every node (an integer kernel's output read by float ops).
 */
function ensureQdq(ctx: QuantContext, tensor: string, anyReader = false): boolean {
  const done = ctx.qdqOutputs;
  if (done.has(tensor)) return true;
  const a = ctx.activations.get(tensor);
  if (!a) return false;
  // Never before a Log/Sqrt/division of the rounded values (see amplifiers.ts): the tensor stays exact.
  if (reachesAmplifier(ctx.view, tensor, ctx.loc, anyReader ? undefined : (n) => ctx.staticNodes.has(n))) {
    ctx.amplified.add(tensor);
    return false;
  }
  const graph = ctx.editor.graph;
  // Only quantized nodes read the dequantized copy; float nodes (excluded, or ops we do not quantize)
  // keep the exact tensor, and onnxruntime does not try to quantize their weights on its own.
  const readers = (graph.node ?? []).filter((n) => n.input?.includes(tensor) && (anyReader || ctx.staticNodes.has(n)));
  if (!readers.length) return false;
  const e = ctx.editor;
  const dt = QUANT_TYPES[a.qtype].dataType;
  const scale = e.addInitializer(makeTensor(`${tensor}_scale`, DataType.FLOAT, [], Float32Array.of(a.scale)));
  const zp = e.addInitializer(makeTensor(`${tensor}_zero_point`, dt, [], a.qtype === 'uint8' ? Uint8Array.of(a.zeroPoint) : Int8Array.of(a.zeroPoint)));
  const q = e.unique(`${tensor}_QuantizeLinear_Output`);
  const dq = e.unique(`${tensor}_DequantizeLinear_Output`);
  for (const r of readers) r.input = r.input!.map((i) => (i === tensor ? dq : i));
  e.insertBefore(readers[0], [
    { name: `${tensor}_QuantizeLinear`, op_type: 'QuantizeLinear', domain: qdqDomain(e), input: [tensor, scale, zp], output: [q] },
    { name: `${tensor}_DequantizeLinear`, op_type: 'DequantizeLinear', domain: qdqDomain(e), input: [q, scale, zp], output: [dq] },
  ]);
  done.set(tensor, dq);
  // Readers renamed before their own turn find the dequantized name: it carries the same parameters
  // and needs no second Q/DQ pair.
  done.set(dq, dq);
  ctx.activations.set(dq, a);
  return true;
}

/**
 * The smallest weight scale (per output channel) at which the int32 bias (scale input_scale × weight_scale)
 * leaves the integer kernel's int32 accumulator room for the products: |b| / (input_scale × (2^31 − 1 −
 * K·255·128)), K the products per output (weight elements ÷ output channels). A layer whose input range is
 * tiny beside its bias (activations that shrink layer after layer in a network without trained
 * statistics) had its bias clamped, or one just inside the range wrapped once the products were added:
 * torchvision's S3D with random weights, classifier input ~1e-6 against biases ~0.03, static INT8 cosine
 * 0.06 against float. A weight scale raised to this (as onnxruntime's own quantizer raises it) costs
 * little there: the products are then a small share of the bias. Undefined without a float bias.
 */
function biasScaleFloor(b: FloatWeight | undefined, inputScale: number, weightElements: number): Float32Array | undefined {
  if (!b || b.dims.length !== 1 || !(inputScale > 0) || !b.data.length) return undefined;
  const room = 2 ** 31 - 1 - (weightElements / b.data.length) * 255 * 128;
  if (room <= 2 ** 24) return undefined; // (the products alone may overflow: nothing a bias scale can mend)
  // (A hair above: the scale is rounded to float32, and the product again.)
  return Float32Array.from(b.data, (v) => (Math.abs(v) / (inputScale * room)) * (1 + 1e-5));
}

/** int32 bias with scale input_scale × weight_scale[c], as onnxruntime's QLinearConv/QGemm fusions need. */
function quantizeBias(ctx: QuantContext, node: NodeProto, index: number, b: FloatWeight | undefined, inputScale: number, weightScales: Float32Array): boolean {
  if (!b || b.dims.length !== 1 || (weightScales.length !== 1 && weightScales.length !== b.data.length)) return false;
  const n = b.data.length;
  const scales = Float32Array.from({ length: n }, (_, c) => Math.fround(inputScale * weightScales[weightScales.length === 1 ? 0 : c]));
  const q = Int32Array.from({ length: n }, (_, c) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, roundHalfEven(b.data[c] / scales[c]))));
  const e = ctx.editor;
  const base = node.input![index].startsWith('onnx::') ? `${node.name}.bias` : node.input![index];
  const qn = e.addInitializer(makeTensor(`${base}_quantized`, DataType.INT32, [n], q));
  const sn = e.addInitializer(makeTensor(`${base}_scale`, DataType.FLOAT, [n], scales));
  const zn = e.addInitializer(makeTensor(`${base}_zero_point`, DataType.INT32, [n], new Int32Array(n)));
  const out = e.unique(`${base}_dequantized`);
  e.insertBefore(node, [{ name: `${base}_DequantizeLinear`, op_type: 'DequantizeLinear', domain: qdqDomain(e), input: [qn, sn, zn], output: [out], attribute: [intAttr('axis', 0)] }]);
  node.input![index] = out;
  return true;
}


/** Activations onnxruntime removes in front of a QuantizeLinear whose range they clip within. */
const CLIPPING = new Set(['Relu', 'Clip']);

/**
 * Whether a layer's output goes through one Relu/Clip to nodes that quantize what it makes: that Q is the
 * layer's boundary already (onnxruntime drops the activation into it and runs the layer as an integer
 * kernel), and one more before the activation would be a second rounding and a float round trip
 * (DenseNet's norm → ReLU → conv with boundaries: 124 QuantizeLinear and 123 DequantizeLinear unfused).
 */
function clipsIntoNextQ(ctx: QuantContext, output: string | undefined): boolean {
  if (!output) return false;
  const readers = ctx.view.consumersOf(output);
  if (readers.length !== 1 || !CLIPPING.has(readers[0].op_type ?? '') || (readers[0].domain ?? '') !== '') return false;
  const act = readers[0].output?.[0];
  const a = act ? ctx.activations.get(act) : undefined;
  if (!act || !a || (ctx.view.graph.output ?? []).some((o) => o.name === act) || !foldsInto(ctx, readers[0], a)) return false;
  const next = ctx.view.consumersOf(act);
  return next.length > 0 && next.every((n) => ctx.staticNodes.has(n));
}

/**
 * Whether onnxruntime removes this Relu/Clip in front of a QuantizeLinear with parameters `a` (checked in
 * onnxruntime 1.30, opsets 11-21): a Relu when the zero point is the type's lowest value (not symmetric
 * int8's 0: there the conv stayed a float FusedConv), a Clip when the Q's whole range lies within its
 * bounds, compared in float32 as onnxruntime does.
 */
function foldsInto(ctx: QuantContext, act: NodeProto, a: { qtype: keyof typeof QUANT_TYPES; scale: number; zeroPoint: number }): boolean {
  const { qmin, qmax } = QUANT_TYPES[a.qtype];
  if (act.op_type === 'Relu') return a.zeroPoint === qmin;
  const b = clipBounds(act, ctx.view, ctx.loc);
  if (!b) return false;
  const s = Math.fround(a.scale), eps = 2 ** -23;
  const lower = Math.fround(s * (qmin - a.zeroPoint)), upper = Math.fround(s * (qmax - a.zeroPoint));
  return !(eps < Math.fround(b.lo - lower)) && !(eps < Math.fround(upper - b.hi));
}

/** Where a quantized layer's bias is: the node and input index that read it (after its weights are quantized). */
type BiasAt = (node: NodeProto, ctx: QuantContext) => [NodeProto, number] | undefined;

/**
 * A static quantizer: activations through Q/DQ; `weights` lists [input index, per-channel axis] of constant
 * weights; `bias` is an input index of the node itself, or where its bias is read.
 */
function qdqOp(weights: Array<[number, (n: NodeProto, rank: number) => number | undefined]>, bias?: number | BiasAt): OpQuantizer {
  return {
    check(node, ctx) {
      for (const [i] of weights) if (!floatWeightDims(ctx.view, node.input?.[i] ?? '', ctx.loc)) return `input ${i} is not a constant float32 weight`;
      return undefined;
    },
    apply(node, ctx) {
      const inScale = ctx.activations.get(node.input![0])?.scale; // before Q/DQ renames the input
      const acts = activationTensors(node, ctx);
      const output = node.output?.[0];
      const boundary = !!ctx.quantizeOutputs && LAYER_OPS.has(node.op_type ?? '') && !clipsIntoNextQ(ctx, output);
      const quantized = acts.filter((t) => ensureQdq(ctx, t, t === output && boundary));
      if (!quantized.length && !weights.length) {
        const why = acts.some((t) => ctx.amplified.has(t)) ? AMPLIFIED : 'no float32 activation to quantize (float16 and integer tensors stay as they are)';
        ctx.decide({ node: node.name ?? '', opType: node.op_type ?? '', modulePath: ctx.modulePath(node), skipped: why });
        return;
      }
      let weightScales: Float32Array | undefined;
      const hows: string[] = [];
      let before = 0, after = 0, sqnr: number | undefined;
      const at = typeof bias === 'number' ? (node.input?.[bias] ? [node, bias] as const : undefined) : bias?.(node, ctx);
      // (Read once: it sets a floor under the weight's scale, then is written int32.)
      const b = at ? floatWeight(ctx.view, at[0].input![at[1]], ctx.loc) : undefined;
      for (const [i, axisOf] of weights) {
        const dims = floatWeightDims(ctx.view, node.input![i], ctx.loc)!;
        const floor = inScale ? biasScaleFloor(b, inScale, dims.reduce((a, d) => a * d, 1)) : undefined;
        const axis = axisOf(node, dims.length);
        // A scale per output channel meets that channel's bias; one for the tensor must fit them all.
        const perChannel = axis !== undefined && ctx.optionsFor(node).perChannel && dims[axis] === floor?.length;
        // (Reduced, not spread into Math.max: an LM head's 250k floors are past V8's limit on arguments.)
        const r = dequantizedWeightInput(ctx, node, i, axis, 'int8', floor && !perChannel ? Float32Array.of(floor.reduce((a, x) => Math.max(a, x), -Infinity)) : floor);
        weightScales = r.scales;
        hows.push(r.how);
        before += r.bytesBefore; after += r.bytesAfter; sqnr = r.sqnr;
      }
      const biased = !!(at && weightScales && inScale && quantizeBias(ctx, at[0], at[1], b, inScale, weightScales));
      ctx.decide({
        node: node.name ?? '', opType: node.op_type ?? '', modulePath: ctx.modulePath(node),
        how: `static QDQ: ${quantized.length} activation${quantized.length === 1 ? '' : 's'}${hows.length ? `, ${hows.join(', ')}` : ''}${biased ? ', int32 bias' : ''}`,
        ...(hows.length ? { weightBytesBefore: before, weightBytesAfter: after, weightSqnr: sqnr } : {}),
      });
    },
  };
}

// A batched weight ([B, K, N]) is one scale: onnxruntime's integer MatMul kernels take a zero point per
// column only for a 2-D weight ("b zero point is not valid").
const lastAxis = (_n: NodeProto, rank: number) => (rank === 2 ? 1 : undefined);
const gemmAxis = (n: NodeProto) => (attrInt(n, 'transB', 0) ? 0 : 1);

/**
 * MatMul: a constant weight is quantized per output column; a constant on the left (W·x) as one tensor;
 * two activations (attention) are both Q/DQ'd.
 */
const matMul: OpQuantizer = {
  check: () => undefined,
  apply(node, ctx) {
    const constant = (i: number) => !!floatWeightDims(ctx.view, node.input![i], ctx.loc);
    return (constant(1) ? qdqOp([[1, lastAxis]], biasAdd) : constant(0) ? qdqOp([[0, () => undefined]]) : qdqOp([])).apply(node, ctx);
  },
};

/**
 * A MatMul's bias is the Add of a 1-D constant that alone reads its float output (torch's Linear on a
 * sequence), when that Add stays float. onnxruntime fuses the two into a Gemm at load, and a Gemm fuses
 * with its Q/DQ (QGemm, float output) only when its bias is int32 behind a DequantizeLinear: with a float
 * bias it ran as a float Gemm that dequantized its weight on every run (torchvision swin_t: 24 such MLP
 * layers, 31 ms of DequantizeLinear per run, the static model 1.5x slower than float).
 * onnxruntime makes the Gemm only where x is a matrix or of a size known at load (see fusesIntoGemm);
 * elsewhere it runs MatMulIntegerToFloat and a float Add, and an int32 bias would only add a
 * DequantizeLinear kernel per run (the transformer fixture, batch dimension free: 12 more kernels in its
 * profile, on a sub-millisecond model).
 */
const biasAdd: BiasAt = (node, ctx) => {
  if (!fusesIntoGemm(ctx, node)) return undefined;
  const readers = (ctx.editor.graph.node ?? []).filter((n) => n.input?.includes(node.output![0]));
  const add = readers.length === 1 && readers[0].op_type === 'Add' && !ctx.staticNodes.has(readers[0]) ? readers[0] : undefined;
  const k = add ? add.input!.findIndex((i) => i !== node.output![0]) : -1;
  return add && k >= 0 && add.input!.length === 2 && floatWeightDims(ctx.view, add.input![k], ctx.loc)?.length === 1 ? [add, k] : undefined;
};

/** Add/Mul: a constant operand is stored int8 with its own scale, activations go through Q/DQ. */
const elementwise: OpQuantizer = {
  check(node, ctx) {
    for (const i of node.input ?? []) {
      const w = floatWeight(ctx.view, i, ctx.loc);
      // An additive attention mask (-1e4 / -inf entries) would stretch the 8-bit range over the mask
      // value and leave nothing for the scores.
      if (w && w.data.some((v) => !(Math.abs(v) < 1e3))) return `constant operand '${i}' holds mask-like values (|x| ≥ 1000); an 8-bit range would lose the other operand`;
    }
    return undefined;
  },
  apply(node, ctx) {
    const consts = (node.input ?? []).map((i, k) => [k, i] as const).filter(([, i]) => (floatWeightDims(ctx.view, i, ctx.loc)?.reduce((a, b) => a * b, 1) ?? 0) >= 16);
    return qdqOp(consts.map(([k]) => [k, () => 0] as [number, () => number])).apply(node, ctx);
  },
};

/**
 * HardSigmoid(x) = clip(αx + β, 0, 1) = α·clip(x + β/α, 0, 1/α): written as Add(x, β/α) whose output is
 * quantized at scale 1/(255α) from zero (uint8 zero point 0, int8 −128), which saturates exactly where the
 * clip does, and dequantized at scale 1/255. onnxruntime fuses DQ → Add → Q into QLinearAdd, so a
 * HardSwish (x · HardSigmoid(x)) or a squeeze-excite gate runs int8 end to end. A float HardSigmoid read
 * the conv's output itself beside the Mul's Q/DQ, so onnxruntime could not fuse the conv (torchvision
 * MobileNetV3-small with every node quantized, the two builds' models interleaved, scratch: 2.22-2.25x
 * float before, 0.97-1.00x). The output is rounded to 1/255, as an 8-bit output over [0, 1] would be.
 * Only --static-ops all plans it (see ALL_ONLY in prepare.ts).
 */
const hardSigmoid: OpQuantizer = {
  check(node) {
    const alpha = attrFloat(node, 'alpha', 0.2), beta = attrFloat(node, 'beta', 0.5);
    return alpha > 0 && Number.isFinite(alpha) && Number.isFinite(beta) ? undefined : `alpha ${alpha}, beta ${beta}: only a rising HardSigmoid is an Add and a clamp`;
  },
  apply(node, ctx) {
    const x = node.input![0], out = node.output![0];
    const a = ctx.activations.get(x);
    if (!a || !ensureQdq(ctx, x)) {
      ctx.decide({ node: node.name ?? '', opType: 'HardSigmoid', modulePath: ctx.modulePath(node), skipped: ctx.amplified.has(x) ? AMPLIFIED : 'its input has no calibrated range' });
      return;
    }
    const alpha = attrFloat(node, 'alpha', 0.2), shift = attrFloat(node, 'beta', 0.5) / alpha;
    const e = ctx.editor, dt = QUANT_TYPES[a.qtype].dataType, unsigned = a.qtype === 'uint8';
    const zp = unsigned ? 0 : -128;
    const typed = (v: number) => (unsigned ? Uint8Array.of(v) : Int8Array.of(v));
    const scalar = (name: string, v: number) => e.addInitializer(makeTensor(e.unique(name), DataType.FLOAT, [], Float32Array.of(v)));
    const zero = e.addInitializer(makeTensor(e.unique(`${out}_zero_point`), dt, [], typed(zp)));
    const nodes: NodeProto[] = [];
    let shifted = node.input![0]; // its DequantizeLinear's output now
    if (shift !== 0) {
      // The shift as an 8-bit constant of the input's type (QLinearAdd takes both operands in one type):
      // its largest code, at the scale that makes it exact.
      const top = unsigned ? (shift > 0 ? 255 : 0) : shift > 0 ? 127 : -127;
      const cq = e.addInitializer(makeTensor(e.unique(`${out}_shift_quantized`), dt, [], typed(top)));
      const czp = e.addInitializer(makeTensor(e.unique(`${out}_shift_zero_point`), dt, [], typed(unsigned && shift < 0 ? 255 : 0)));
      const cs = scalar(`${out}_shift_scale`, Math.abs(shift) / (unsigned ? 255 : 127));
      const c = e.unique(`${out}_shift`);
      shifted = e.unique(`${out}_shifted`);
      nodes.push(
        { name: `${out}_shift_DequantizeLinear`, op_type: 'DequantizeLinear', domain: qdqDomain(e), input: [cq, cs, czp], output: [c] },
        { name: `${out}_Add`, op_type: 'Add', input: [node.input![0], c], output: [shifted] },
      );
    }
    const q = e.unique(`${out}_QuantizeLinear_Output`);
    nodes.push(
      { name: `${out}_QuantizeLinear`, op_type: 'QuantizeLinear', domain: qdqDomain(e), input: [shifted, scalar(`${out}_clamp_scale`, 1 / (255 * alpha)), zero], output: [q] },
      { name: `${out}_DequantizeLinear`, op_type: 'DequantizeLinear', domain: qdqDomain(e), input: [q, scalar(`${out}_scale`, 1 / 255), zero], output: [out] },
    );
    e.replaceNode(node, nodes);
    // Its readers read the dequantized value already: no second Q/DQ pair after it.
    ctx.qdqOutputs.set(out, out);
    ctx.activations.set(out, { qtype: a.qtype, scale: Math.fround(1 / 255), zeroPoint: zp });
    ctx.decide({ node: node.name ?? '', opType: 'HardSigmoid', modulePath: ctx.modulePath(node), how: 'static QDQ: an Add and an 8-bit clamp (onnxruntime: QLinearAdd)' });
  },
};

/** The ranks of the original graph's values (inferRanks), once per quantization. */
const rankCache = new WeakMap<QuantContext, Map<string, number>>();
function ranksOf(ctx: QuantContext): Map<string, number> {
  let r = rankCache.get(ctx);
  if (!r) rankCache.set(ctx, (r = inferRanks(ctx.view)));
  return r;
}

/**
 * Gather of activations (a transformer's q, k and v picked out of one tensor): data movement that takes its
 * input's scale, which onnxruntime runs on the int8 values with the Q/DQ dropped (torchvision Swin-T: each
 * of its 36 such Gathers had a DequantizeLinear before it). An embedding table (constant data) is weight
 * and dynamic mode's.
 */
const selectGather: OpQuantizer = {
  check: (node, ctx) => (ctx.view.constant(node.input?.[0] ?? '') ? 'an embedding table (constant data): --mode weight or dynamic quantizes it' : undefined),
  apply: (node, ctx) => qdqOp([]).apply(node, ctx),
};

/**
 * Static (QDQ) quantizers by op type. Sigmoid and LeakyRelu have integer kernels (onnxruntime fuses
 * DQ → op → Q into QLinearSigmoid and QLinearLeakyRelu, table lookups on the int8 values): with them a
 * SiLU (x · Sigmoid(x)) or a conv → LeakyRelu → conv chain stays int8 instead of a float island per
 * activation.
 */
export const STATIC_QUANTIZERS: Readonly<Record<string, OpQuantizer>> = {
  Sigmoid: qdqOp([]),
  HardSigmoid: hardSigmoid,
  LeakyRelu: qdqOp([]),
  MatMul: matMul,
  Gemm: qdqOp([[1, gemmAxis]], 2),
  Conv: qdqOp([[1, () => 0]], 2),
  // The bias as int32 here too: left float, onnxruntime quantizes it itself when it loads the model, and
  // below opset 13 (where this weight's per-channel DequantizeLinear is com.microsoft's) writes a standard
  // one with an axis, which that opset refuses (torchvision Keypoint R-CNN at opset 11: not loadable).
  ConvTranspose: qdqOp([[1, () => 1]], 2),
  Add: elementwise,
  Mul: elementwise,
  Concat: qdqOp([]),
  Resize: qdqOp([]),
  ...Object.fromEntries(POOLING.map((p) => [p, qdqOp([])])),
  ...Object.fromEntries([...PASS_THROUGH].filter((p) => p !== 'MaxPool').map((p) => [p, qdqOp([])])),
  Gather: selectGather,
};

/**
 * Whether onnxruntime will fuse this MatMul with its bias Add into a Gemm when it loads the model: x is a
 * matrix (declared, or made one by a Reshape to a constant shape, a Flatten: PaddleOCR cls's classifier,
 * whose float bias left a float Gemm that dequantized its weight every run), or every graph input has
 * fixed dimensions (so every shape is known at load; its MatMulAddFusion reshapes a larger x to a matrix
 * only then).
 */
function fusesIntoGemm(ctx: QuantContext, node: NodeProto): boolean {
  const g = ctx.editor.graph;
  if (ranksOf(ctx).get(node.input![0]) === 2) return true;
  const weights = new Set((g.initializer ?? []).map((t) => t.name));
  return (g.input ?? []).filter((v) => !weights.has(v.name)).every((v) => {
    const dims = v.type?.tensor_type?.shape?.dim;
    return !!dims && dims.every((d) => d.dim_value !== undefined && d.dim_value !== null && Number(d.dim_value) > 0 && !d.dim_param);
  });
}
