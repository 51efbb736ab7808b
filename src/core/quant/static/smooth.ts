import type { CalibrationData } from '../../calib/data';
import type { JobContext } from '../../base/jobs';
import { channelConstant } from '../../onnx/channel-constant';
import { DataType } from '../../onnx/dtypes';
import type { ModelEditor } from '../../onnx/editor';
import type { GraphView } from '../../onnx/graph';
import type { LoadedModel } from '../../onnx/model-io';
import type { NodeProto } from '../../onnx/proto';
import { makeTensor } from '../../onnx/tensor';
import { captureMinMax, type ChannelRange, type ChannelSpec } from '../../runtime/capture';
import type { ChannelLayout } from '../../calib/channel-scaled';
import type { MeasuredRanges } from './calibrate';
import type { DevicePreference } from '../../runtime/session';
import { floatWeight, floatWeightDims } from '../weights';
import { attrInt } from '../../onnx/attributes';

/** What smoothing did (or why not) for one activation and the layers that read it. */
export interface SmoothingDecision {
  tensor: string;
  layers: string[];
  /** Migration strength: s_c = max|x_c|^α / max|W_c|^(1−α); 0 means left as it was. */
  alpha: number;
  /** Estimated output noise of the layers (input + weight rounding) before ÷ after, in dB. */
  estimatedGainDb: number;
  /** Largest ÷ median channel magnitude of the activation, before and after. */
  channelRatio: [number, number];
  /** The nodes whose constants took 1/s (the scale leaves the activation there, at no run-time cost). */
  absorbedBy: string[];
  skipped?: string;
}

/** How a weight layer's flat weight index maps to its input and output channels (no weight values held). */
interface Layout {
  node: NodeProto; dims: number[]; outs: number; ins: number; outChannel: (flat: number) => number;
  /**
   * The weight in memory order as runs, one output channel's row or less: `visit(start, length, channel,
   * per)` for each, where element start + j reads input (`inRuns`) or makes output (`outRuns`) channel
   * channel + ⌊j / per⌋ (a conv's row: each input channel's taps in turn). The loops over every weight go
   * run by run: a channel per element through divisions was most of smoothing's time (PaddleOCR det: about
   * 115 ms a pass before, 61 ms after, scratch CPU profiles), and a call per conv tap group was a fifth of
   * its decision run cold (PaddleOCR det, one quantize).
   */
  inRuns: (visit: RunVisitor) => void;
  outRuns: (visit: RunVisitor) => void;
}
type RunVisitor = (start: number, length: number, channel: number, per: number) => void;
interface Absorb { node: NodeProto; kind: 'scale' | 'divide' | 'shift' | 'rows' | 'norm'; input: number }

/**
 * Normalizations whose output is divided per channel by dividing their per-channel scale and bias (1-D
 * [C] inputs by the op's definition, whatever the tensor's rank): the channel axis each works on, and
 * which inputs are those constants. A LayerNormalization or RMSNormalization with a 1-D scale
 * normalizes over the last axis only.
 */
const NORMS: Record<string, { axis: 1 | 'last'; inputs: number[] }> = {
  LayerNormalization: { axis: 'last', inputs: [1, 2] },
  RMSNormalization: { axis: 'last', inputs: [1] },
  BatchNormalization: { axis: 1, inputs: [1, 2] },
  InstanceNormalization: { axis: 1, inputs: [1, 2] },
};
interface Item { tensor: string; readers: Layout[]; chain: Absorb[]; axis: 1 | 'last'; rank: number }

const ALPHAS = [0.25, 0.5, 0.75, 1];
/** Below this estimated gain smoothing is not applied: it would be a change without a measured reason. */
const MIN_GAIN_DB = 0.5;

/** The channel layout of a Conv/MatMul/Gemm with a stored float32 weight, or undefined. */
function layoutOf(node: NodeProto, view: GraphView, loaded: LoadedModel): Layout | undefined {
  const dims = floatWeightDims(view, node.input?.[1] ?? '', loaded.loc);
  if (!dims) return undefined;
  const size = dims.reduce((a, b) => a * b, 1);
  if (node.op_type === 'Conv' && dims.length >= 3) {
    const group = attrInt(node, 'group', 1);
    const [cout, cpg] = dims;
    const taps = size / (cout * cpg);
    const outsPerGroup = cout / group;
    const out = (f: number) => Math.floor(f / (cpg * taps));
    return {
      node, dims, outs: cout, ins: cpg * group, outChannel: out,
      // [out][in of its group][taps]
      inRuns: (visit) => { for (let o = 0; o < cout; o++) visit(o * cpg * taps, cpg * taps, Math.floor(o / outsPerGroup) * cpg, taps); },
      outRuns: (visit) => { for (let o = 0; o < cout; o++) visit(o * cpg * taps, cpg * taps, o, cpg * taps); },
    };
  }
  if ((node.op_type === 'MatMul' || node.op_type === 'Gemm') && dims.length === 2 && !(node.op_type === 'Gemm' && attrInt(node, 'transA', 0))) {
    const [r, c] = dims;
    const rows = (visit: RunVisitor) => { for (let i = 0; i < r; i++) visit(i * c, c, i, c); };
    const cols = (visit: RunVisitor) => { for (let i = 0; i < r; i++) visit(i * c, c, 0, 1); };
    return node.op_type === 'Gemm' && attrInt(node, 'transB', 0)
      ? { node, dims, outs: r, ins: c, outChannel: (f) => Math.floor(f / c), inRuns: cols, outRuns: rows }
      : { node, dims, outs: c, ins: r, outChannel: (f) => f % c, inRuns: rows, outRuns: cols };
  }
  return undefined;
}

/**
 * The chain of nodes before `tensor` that can take a per-channel 1/s into their constants: a Mul or Div
 * by a constant ends it, an Add/Sub of a constant continues to its data input, a Conv/Gemm/MatMul with a
 * constant weight ends it (its output channels are scaled). Every tensor on the way must have one reader.
 */
function absorbChain(view: GraphView, loaded: LoadedModel, outputs: Set<string>, tensor: string, channels: number, axis: 1 | 'last', rank: number, keepFusions: boolean): Absorb[] | string {
  const chain: Absorb[] = [];
  let t = tensor;
  for (let hops = 0; hops < 8; hops++) {
    if (outputs.has(t)) return `'${t}' is a model output`;
    const p = view.producer.get(t);
    if (!p || (p.domain ?? '') !== '') return p ? `made by ${p.op_type} (${p.domain})` : 'a model input';
    if (t !== tensor && view.consumersOf(t).length !== 1) return `'${t}' has other readers`;
    const op = p.op_type ?? '';
    if (['Mul', 'Add', 'Sub', 'Div'].includes(op) && p.input?.length === 2) {
      const k = p.input.findIndex((i) => channelConstant(view, loaded.loc, i, channels, axis, rank));
      if (k < 0 || ((op === 'Sub' || op === 'Div') && k !== 1)) return `made by ${op} without a per-channel constant`;
      if (keepFusions && op === 'Mul' && geluTail(view, p, k)) return 'it ends a GELU onnxruntime runs as one Gelu kernel, which a per-channel constant there would split into five';
      if (op === 'Mul' || op === 'Div') return [...chain, { node: p, kind: op === 'Mul' ? 'scale' : 'divide', input: k }];
      chain.push({ node: p, kind: 'shift', input: k });
      t = p.input[1 - k];
      continue;
    }
    const norm = NORMS[op];
    if (norm) {
      // (Outputs beyond the first, a LayerNormalization's mean or a training BatchNormalization's
      // statistics, do not depend on the scale and bias.)
      if (norm.axis !== axis) return `made by ${op}, whose channels are on another axis`;
      const perChannel = norm.inputs.every((k) => !p.input?.[k] || floatWeightDims(view, p.input[k], loaded.loc)?.join() === String(channels));
      if (!perChannel || !p.input?.[1]) return `made by ${op} without a [${channels}] scale and bias`;
      return [...chain, { node: p, kind: 'norm', input: 1 }];
    }
    if (['Conv', 'Gemm', 'MatMul'].includes(op)) {
      // Its output channels must be the activation's channel axis: a Conv's axis 1, a MatMul's last.
      if ((op === 'Conv') !== (axis === 1) || layoutOf(p, view, loaded)?.outs !== channels) return `made by ${op} whose outputs do not line up with the channels`;
      if (p.input?.[2] && !floatWeightDims(view, p.input[2], loaded.loc)) return `made by ${op} without a constant float32 bias`;
      return [...chain, { node: p, kind: 'rows', input: 1 }];
    }
    return `made by ${op}`;
  }
  return 'too long a chain of constant ops';
}

/**
 * Whether Mul `node` (constant at input `k`) is the ½ that ends torch's GELU below opset 20,
 * x·(1 + erf(x/√2))·½ or x·(1 + tanh(…))·½: onnxruntime fuses the pattern into one Gelu (FastGelu)
 * kernel only while that constant is a scalar 0.5 (torchvision Swin-T with its MLP inputs smoothed: 9 of
 * 12 GELUs ran as Div, Erf, Add and two Muls). SmoothQuant itself smooths no MLP's second input; on the
 * transformer fixture, leaving it costs 0.9 dB of logits SQNR (35.2 -> 34.3, random inputs), so only
 * --objective latency keeps the fusion.
 */
function geluTail(view: GraphView, node: NodeProto, k: number): boolean {
  const producer = (t: string | undefined) => (t ? view.producer.get(t) : undefined);
  const inner = producer(node.input![1 - k]);
  if (inner?.op_type !== 'Mul') return false;
  return (inner.input ?? []).some((i) => {
    const add = producer(i);
    return add?.op_type === 'Add' && (add.input ?? []).some((j) => ['Erf', 'Tanh'].includes(producer(j)?.op_type ?? ''));
  });
}

/**
 * A reader's weights summarised per (output, input) channel pair: the largest |w| and how many weights
 * the pair has (a conv's taps), and per input channel Σw². Smoothing scales whole input channels, so the
 * noise estimate for any scales needs only these: a conv's weights are read once instead of once per α.
 * Weights with one tap per pair (MatMul, Gemm, 1×1 convs) are their own summary: no copy is made.
 */
interface PairStats {
  outs: number;
  ins: number;
  w2: Float64Array;
  /** Per input channel, the largest |w| (what the scales for any α divide by). */
  inMax: Float64Array;
  /** Per (output, input) pair: its channels, its largest |w| and its taps (every weight but dense ones). */
  pairs?: { out: Int32Array; inn: Int32Array; maxAbs: Float32Array; taps: number };
  /** A dense one-tap weight (MatMul, Gemm, ungrouped 1×1 conv): walked in place, [ins][outs] or [outs][ins]. */
  dense?: { w: Float32Array; outMajor: boolean };
}

function pairStats(readers: Array<[Layout, Float32Array]>): PairStats[] {
  return readers.map(([r, w]) => {
    const w2 = new Float64Array(r.ins), inMax = new Float64Array(r.ins);
    r.inRuns((start, length, channel, per) => channelStats(w, start, length, channel, per, w2, inMax));
    const conv = r.node.op_type === 'Conv';
    const taps = Math.max(1, w.length / Math.max(1, r.outs * (conv ? r.dims[1] : r.ins)));
    if (taps === 1 && !(conv && r.dims[1] !== r.ins)) {
      const outMajor = conv || (r.node.op_type === 'Gemm' && r.outChannel(1) === 0);
      return { outs: r.outs, ins: r.ins, w2, inMax, dense: { w, outMajor } };
    }
    // A conv's weight is [out][in/group][taps]: each pair's taps are contiguous, a row's pairs one output's.
    const n = w.length / taps;
    const out = new Int32Array(n), inn = new Int32Array(n), maxAbs = new Float32Array(n);
    let q = 0;
    r.inRuns((start, length, channel, per) => { q = rowPairs(w, start, length, channel, per, r.outChannel(start), out, inn, maxAbs, q); });
    return { outs: r.outs, ins: r.ins, w2, inMax, pairs: { out, inn, maxAbs, taps } };
  });
}

/*
 * The loops over weights are small functions called once per row, and noises' loops over sets are
 * callbacks: a job runs this code once, cold, and V8 optimises a small function called many times sooner
 * than a long loop in a large one. Smoothing's decision in one quantize (scratch, the first quantize in
 * fresh processes, old and new alternated, 5-8 processes a side, several runs):
 * the tiny VLM 20-31 ms before, 26-69 ms with the sets' loops over whole weights in one function, 14-19 ms now;
 * PaddleOCR det 54-87 ms before, 52-98 ms with plain loops over the sets, 38-64 ms now.
 */

/** Adds each value's square to w2 and maxes its magnitude into inMax, at its channel (see Layout's runs). */
function channelStats(w: Float32Array, start: number, length: number, channel: number, per: number, w2: Float64Array, inMax: Float64Array): void {
  if (per === 1) {
    // A channel per value (a row of [outs][ins], a 1×1 conv's row).
    for (let j = start, end = start + length, c = channel; j < end; j++, c++) { const v = w[j], m = Math.abs(v); w2[c] += v * v; if (m > inMax[c]) inMax[c] = m; }
    return;
  }
  for (let j = start, end = start + length, c = channel; j < end; c++) {
    // One channel's values in locals, added in the same order.
    let s2 = w2[c], mx = inMax[c];
    for (const stop = Math.min(end, j + per); j < stop; j++) { const v = w[j], m = Math.abs(v); s2 += v * v; if (m > mx) mx = m; }
    w2[c] = s2;
    inMax[c] = mx;
  }
}

/** A conv row's (output, input) pairs from index q on, with each pair's largest |w|; returns the next index. */
function rowPairs(w: Float32Array, start: number, length: number, channel: number, per: number, o: number, out: Int32Array, inn: Int32Array, maxAbs: Float32Array, q: number): number {
  for (let j = start, end = start + length, c = channel; j < end; c++, q++) {
    let m = 0;
    for (const stop = Math.min(end, j + per); j < stop; j++) m = Math.max(m, Math.abs(w[j]));
    out[q] = o;
    inn[q] = c;
    maxAbs[q] = m;
  }
  return q;
}

/** max over c of |w[from + c]|·s[c]. */
function maxScaledRow(w: Float32Array, from: number, length: number, s: Float64Array): number {
  let m = 0;
  for (let c = 0; c < length; c++) { const v = Math.abs(w[from + c]) * s[c]; if (v > m) m = v; }
  return m;
}

/** Maxes |w[from + o]|·k into wmax[o]. */
function maxScaledInto(wmax: Float64Array, w: Float32Array, from: number, length: number, k: number): void {
  for (let o = 0; o < length; o++) { const v = Math.abs(w[from + o]) * k; if (v > wmax[o]) wmax[o] = v; }
}

/** Maxima per output of a conv's pairs (their largest |w|·s) and each output's Σ taps·(a/s)². */
function pairMaxima(p: NonNullable<PairStats['pairs']>, a: Float64Array, s: Float64Array, wmax: Float64Array, aw: Float64Array): void {
  const { out, inn, maxAbs, taps } = p;
  const a2 = new Float64Array(s.length);
  for (let c = 0; c < s.length; c++) a2[c] = (a[c] / s[c]) ** 2;
  for (let k = 0; k < out.length; k++) {
    const o = out[k], c = inn[k];
    wmax[o] = Math.max(wmax[o], maxAbs[k] * s[c]);
    aw[o] += taps * a2[c];
  }
}

/**
 * Estimated output noise of the readers after smoothing by each of `sets` (scales per input channel):
 * input rounding (uint8, per tensor) + weight rounding (int8, per output channel). The sets go through
 * the weights together, each row against every set while it is in cache.
 */
function noises(readers: PairStats[], a: Float64Array, sets: Float64Array[]): number[] {
  const totals = sets.map((s) => {
    let amax = 0;
    for (let c = 0; c < a.length; c++) amax = Math.max(amax, a[c] / s[c]);
    return { dx2: ((2 * amax) / 255) ** 2 / 12, total: 0 };
  });
  for (const p of readers) {
    // Per set: each output's largest scaled weight, and the Σ(a/s)² its rounding error multiplies.
    const wmax = sets.map(() => new Float64Array(p.outs)), aw = sets.map(() => new Float64Array(p.outs));
    if (p.dense) {
      // Every output reads every input once: one Σ(a/s)² per set for all of them.
      sets.forEach((s, k) => {
        let a2 = 0;
        for (let c = 0; c < p.ins; c++) a2 += (a[c] / s[c]) ** 2;
        aw[k].fill(a2);
      });
      const { w, outMajor } = p.dense;
      if (outMajor) for (let o = 0; o < p.outs; o++) sets.forEach((s, k) => { wmax[k][o] = maxScaledRow(w, o * p.ins, p.ins, s); });
      else for (let c = 0; c < p.ins; c++) sets.forEach((s, k) => maxScaledInto(wmax[k], w, c * p.outs, p.outs, s[c]));
    } else sets.forEach((s, k) => pairMaxima(p.pairs!, a, s, wmax[k], aw[k]));
    sets.forEach((s, k) => {
      let w2 = 0;
      for (let c = 0; c < p.ins; c++) w2 += p.w2[c] * s[c] * s[c];
      const t = totals[k];
      t.total += t.dx2 * w2;
      for (let o = 0; o < p.outs; o++) t.total += ((wmax[k][o] / 127) ** 2 / 12) * aw[k][o];
    });
  }
  return totals.map((t) => t.total);
}

/** Each input channel's largest weight magnitude over all readers. */
function inputMaxima(readers: PairStats[], channels: number): Float64Array {
  const wmax = new Float64Array(channels);
  for (const p of readers) for (let c = 0; c < p.ins; c++) wmax[c] = Math.max(wmax[c], p.inMax[c]);
  return wmax;
}

function scalesFor(wmax: Float64Array, a: Float64Array, alpha: number): Float64Array {
  const s = new Float64Array(a.length);
  for (let c = 0; c < a.length; c++) {
    const ac = a[c];
    s[c] = ac > 0 && wmax[c] > 0 ? Math.min(1e4, Math.max(1e-4, ac ** alpha / wmax[c] ** (1 - alpha))) : 1;
  }
  return s;
}

/** A copy of `w` with each element multiplied by (or divided by) the scale of its channel in `runs`. */
function scaledByChannel(w: Float32Array, runs: (visit: RunVisitor) => void, s: Float64Array, divide: boolean): Float32Array {
  const out = new Float32Array(w.length);
  runs((start, length, channel, per) => {
    if (per === 1) {
      if (divide) for (let j = start, end = start + length, c = channel; j < end; j++, c++) out[j] = w[j] / s[c];
      else for (let j = start, end = start + length, c = channel; j < end; j++, c++) out[j] = w[j] * s[c];
      return;
    }
    for (let j = start, end = start + length, c = channel; j < end; c++) {
      const k = s[c], stop = Math.min(end, j + per);
      if (divide) for (; j < stop; j++) out[j] = w[j] / k;
      else for (; j < stop; j++) out[j] = w[j] * k;
    }
  });
  return out;
}

/** Writes the smoothed weights (× s on inputs) and the chain's constants (÷ s) as new initializers. */
function apply(editor: ModelEditor, view: GraphView, loaded: LoadedModel, item: Item, weights: Array<[Layout, Float32Array]>, s: Float64Array): void {
  for (const [r, w] of weights) {
    r.node.input![1] = editor.addInitializer(makeTensor(`${r.node.input![1]}_smoothed`, DataType.FLOAT, r.dims, scaledByChannel(w, r.inRuns, s, false)));
  }
  const shape = item.axis === 'last' ? [s.length] : [s.length, ...Array(item.rank - 2).fill(1)];
  for (const step of item.chain) {
    const n = step.node;
    if (step.kind === 'rows') {
      const r = layoutOf(n, view, loaded)!;
      const w = floatWeight(view, n.input![1], loaded.loc)!.data;
      n.input![1] = editor.addInitializer(makeTensor(`${n.input![1]}_smoothed_out`, DataType.FLOAT, r.dims, scaledByChannel(w, r.outRuns, s, true)));
      const b = n.input![2] ? floatWeight(view, n.input![2], loaded.loc) : undefined;
      if (b) n.input![2] = editor.addInitializer(makeTensor(`${n.input![2]}_smoothed`, DataType.FLOAT, b.dims, Float32Array.from(b.data, (v, o) => v / s[o])));
      continue;
    }
    if (step.kind === 'norm') {
      for (const k of NORMS[n.op_type ?? '']!.inputs) {
        const t = n.input![k] ? floatWeight(view, n.input![k], loaded.loc) : undefined;
        if (t) n.input![k] = editor.addInitializer(makeTensor(`${n.input![k]}_smoothed`, DataType.FLOAT, t.dims, Float32Array.from(t.data, (v, c) => v / s[c])));
      }
      continue;
    }
    const name = n.input![step.input];
    const k = channelConstant(view, loaded.loc, name, s.length, item.axis, item.rank)!;
    n.input![step.input] = editor.addInitializer(makeTensor(`${name}_smoothed`, DataType.FLOAT, shape, Float32Array.from(k, (x, c) => (step.kind === 'divide' ? x * s[c] : x / s[c]))));
  }
}

/** The activations worth measuring: read only by planned weight layers of one kind, with a chain before them to take the scale. */
function plan(editor: ModelEditor, loaded: LoadedModel, nodes: NodeProto[], decisions: SmoothingDecision[], keepFusions: boolean): Item[] {
  const view = editor.view();
  const outputs = new Set((editor.graph.output ?? []).map((o) => o.name ?? ''));
  const byTensor = new Map<string, NodeProto[]>();
  for (const n of nodes) {
    if (!['Conv', 'MatMul', 'Gemm'].includes(n.op_type ?? '') || !n.input?.[0] || view.constant(n.input[0])) continue;
    byTensor.set(n.input[0], [...(byTensor.get(n.input[0]) ?? []), n]);
  }
  const items: Item[] = [];
  for (const [tensor, layers] of byTensor) {
    const skip = (why: string) => decisions.push({ tensor, layers: layers.map((l) => l.name ?? ''), alpha: 0, estimatedGainDb: 0, channelRatio: [0, 0], absorbedBy: [], skipped: why });
    if (view.consumersOf(tensor).some((c) => !layers.includes(c))) { skip('read by other ops too'); continue; }
    const readers = layers.map((l) => layoutOf(l, view, loaded));
    if (readers.some((r) => !r)) { skip('a reader without a constant float32 weight'); continue; }
    const rs = readers as Layout[];
    const conv = rs[0].node.op_type === 'Conv';
    if (rs.some((r) => (r.node.op_type === 'Conv') !== conv || r.ins !== rs[0].ins)) { skip('read by layers of different kinds'); continue; }
    const axis = conv ? 1 : 'last';
    const rank = conv ? rs[0].dims.length : 2;
    const chain = absorbChain(view, loaded, outputs, tensor, rs[0].ins, axis, rank, keepFusions);
    if (typeof chain === 'string') { skip(`nothing before it can take the scale: ${chain}`); continue; }
    items.push({ tensor, readers: rs, chain, axis, rank });
  }
  return items;
}

/**
 * SmoothQuant-style activation smoothing for static INT8: per input channel c of a Conv/MatMul/Gemm
 * activation, divide the channel by s_c and multiply the weights reading it by s_c, so a few outlier
 * channels no longer set the one per-tensor scale every channel shares. The division lands in constants
 * already before the activation (a norm's scale and shift, a per-channel affine, the producing layer's
 * rows), so it costs nothing at run time. Per activation, α is chosen by the estimated output noise of
 * its readers, from the calibration data's per-channel maxima, and smoothing is applied only where that
 * estimate improves by at least 0.5 dB. Weights are read one activation at a time (large models stay
 * within memory) and after the previous activation's edits (a layer can be a reader of one and the
 * producer of another).
 */
export async function smoothActivations(editor: ModelEditor, loaded: LoadedModel, planned: SmoothingPlan, data: CalibrationData, device: DevicePreference, ctx: JobContext = {}): Promise<SmoothingDecision[]> {
  if (!planned.items.length) return planned.decisions;
  // Channel extremes only, through MinMax's reductions (packed, at full optimisation: PaddleOCR det
  // 320x640, 16 samples, 1.66-1.83 s at 'basic' level, where the convs lose their NCHWc layouts).
  const r = await captureMinMax(loaded, [], data, device, ctx, planned.specs);
  return applySmoothing(editor, loaded, planned, planned.specs.map((_, i) => absMax(r?.channels[i]))).decisions;
}

/** Each channel's largest magnitude, from its extremes. */
function absMax(ch: ChannelRange | undefined): Float64Array | undefined {
  if (!ch) return undefined;
  const a = new Float64Array(ch.min.length);
  for (let c = 0; c < a.length; c++) a[c] = Math.max(Math.abs(ch.min[c]), Math.abs(ch.max[c]));
  return a;
}

export interface SmoothingPlan {
  items: Item[];
  decisions: SmoothingDecision[];
  /** What to measure: each item's activation, per channel. */
  specs: ChannelSpec[];
  /** Every tensor whose values smoothing divides per channel (each chain's outputs), with its item. */
  affected: Map<string, number>;
}

/**
 * The activations smoothing may act on, before any data is seen. `keepFusions` (--objective latency):
 * no scale goes where it would break a pattern onnxruntime fuses (see geluTail).
 */
export function planSmoothing(editor: ModelEditor, loaded: LoadedModel, nodes: NodeProto[], keepFusions = true): SmoothingPlan {
  const decisions: SmoothingDecision[] = [];
  const items = plan(editor, loaded, nodes, decisions, keepFusions);
  const affected = new Map<string, number>();
  items.forEach((it, i) => {
    affected.set(it.tensor, i);
    for (const step of it.chain) affected.set(step.node.output![0], i);
  });
  return { items, decisions, specs: items.map((w) => ({ tensor: w.tensor, axis: w.axis, channels: w.readers[0].ins })), affected };
}

/** Each activation smoothing may divide, with where its channels are and its item (for OnePassSmoothing). */
export function affectedLayouts(p: SmoothingPlan): Map<string, { layout: ChannelLayout; item: number }> {
  return new Map([...p.affected].map(([t, i]) => [t, { layout: { axis: p.items[i].axis, channels: p.items[i].readers[0].ins, rank: p.items[i].rank }, item: i }]));
}

/**
 * Chooses α per activation from its per-channel maxima and writes the smoothed constants; returns the
 * decisions and each item's scales (ones where it was left alone), which divide the affected tensors.
 */
export function applySmoothing(editor: ModelEditor, loaded: LoadedModel, p: SmoothingPlan, absmax: Array<Float64Array | undefined>): { decisions: SmoothingDecision[]; scales: Float64Array[] } {
  const decisions = [...p.decisions];
  const scales: Float64Array[] = p.items.map((it) => new Float64Array(it.readers[0].ins).fill(1));
  // Largest over median, both from one sorted copy.
  const ratio = (v: Float64Array) => { const s = Float64Array.from(v).sort(); return s[s.length - 1] / (s[s.length >> 1] || 1e-12); };
  const view = editor.view();
  for (const [i, item] of p.items.entries()) {
    const a = absmax[i];
    const base: SmoothingDecision = { tensor: item.tensor, layers: item.readers.map((r) => r.node.name ?? ''), alpha: 0, estimatedGainDb: 0, channelRatio: [0, 0], absorbedBy: [] };
    if (!a) { decisions.push({ ...base, skipped: 'per-channel maxima could not be measured' }); continue; }
    const weights = item.readers.map((r): [Layout, Float32Array] => [r, floatWeight(view, r.node.input![1], loaded.loc)!.data]);
    const pairs = pairStats(weights);
    const ones = new Float64Array(a.length).fill(1);
    const wmax = inputMaxima(pairs, a.length);
    const sets = [ones, ...ALPHAS.map((alpha) => scalesFor(wmax, a, alpha))];
    const [before, ...after] = noises(pairs, a, sets);
    let best: { alpha: number; n: number; s: Float64Array } = { alpha: 0, n: before, s: ones as Float64Array };
    ALPHAS.forEach((alpha, k) => { if (after[k] < best.n) best = { alpha, n: after[k], s: sets[k + 1] }; });
    const gain = 10 * Math.log10(before / best.n);
    if (!(gain >= MIN_GAIN_DB)) {
      const r = ratio(a);
      decisions.push({ ...base, estimatedGainDb: Math.round(gain * 100) / 100, channelRatio: [r, r], skipped: `estimated gain ${gain.toFixed(2)} dB is below ${MIN_GAIN_DB} dB` });
      continue;
    }
    const had = editor.graph.initializer?.length ?? 0;
    apply(editor, view, loaded, item, weights, best.s);
    // Later items read their weights by name, maybe one this item replaced: the view learns the new
    // constants (a whole new view per item was 5% of this on the tiny VLM; nodes were not added).
    for (const t of (editor.graph.initializer ?? []).slice(had)) view.constants.set(t.name!, t);
    scales[i] = best.s;
    decisions.push({ ...base, alpha: best.alpha, estimatedGainDb: Math.round(gain * 100) / 100, channelRatio: [ratio(a), ratio(Float64Array.from(a, (x, c) => x / best.s[c]))], absorbedBy: item.chain.map((c) => c.node.name ?? '') });
  }
  return { decisions, scales };
}

/**
 * Smoothing and MinMax calibration in one onnxruntime pass: the activations smoothing may divide (each
 * item's tensor and its chain's outputs) are measured per channel, every other one as a whole. Smoothing
 * then chooses its scales from the per-channel maxima, and an affected tensor's range after smoothing
 * follows exactly from its per-channel extremes divided by the scales (all positive). Undefined when
 * onnxruntime refuses the reductions (the caller then measures in two passes).
 */
export async function smoothAndMeasure(editor: ModelEditor, loaded: LoadedModel, p: SmoothingPlan, names: string[], data: CalibrationData, device: DevicePreference, ctx: JobContext = {}): Promise<{ decisions: SmoothingDecision[]; measured: MeasuredRanges } | undefined> {
  const specs: ChannelSpec[] = [...p.specs];
  const specOf = new Map(specs.map((sp, i) => [sp.tensor, i]));
  for (const n of names) {
    const item = p.affected.get(n);
    if (item === undefined || specOf.has(n)) continue;
    specOf.set(n, specs.length);
    specs.push({ ...p.specs[item], tensor: n });
  }
  const r = await captureMinMax(loaded, names.filter((n) => !p.affected.has(n)), data, device, ctx, specs);
  if (!r || p.specs.some((_, i) => !r.channels[i])) return undefined;
  const { decisions, scales } = applySmoothing(editor, loaded, p, p.specs.map((_, i) => absMax(r.channels[i])));
  const ranges = new Map<string, { min: number; max: number }>(r.ranges);
  for (const n of names) {
    const item = p.affected.get(n);
    const ch = item === undefined ? undefined : r.channels[specOf.get(n)!];
    if (item === undefined || !ch) continue;
    const s = scales[item];
    let min = Infinity, max = -Infinity;
    for (let c = 0; c < s.length; c++) { min = Math.min(min, ch.min[c] / s[c]); max = Math.max(max, ch.max[c] / s[c]); }
    ranges.set(n, { min, max });
  }
  return { decisions, measured: { ranges, provider: r.provider, ...(r.fallbackReason ? { fallbackReason: r.fallbackReason } : {}), samples: r.samples, seconds: r.seconds } };
}
