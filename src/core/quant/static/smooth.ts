import type { CalibrationData } from '../../calib/data';
import type { JobContext } from '../../jobs';
import { DataType } from '../../onnx/dtypes';
import type { ModelEditor } from '../../onnx/editor';
import type { LoadedModel } from '../../onnx/model-io';
import type { NodeProto } from '../../onnx/proto';
import { makeTensor, readTensor, tensorDims, toFloat32 } from '../../onnx/tensor';
import { captureChannelStats } from '../../runtime/capture';
import type { DevicePreference } from '../../runtime/session';

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

interface Reader { node: NodeProto; weight: string; dims: number[]; w: Float32Array; inChannel: (flat: number) => number; outChannel: (flat: number) => number; outs: number }
interface Absorb { node: NodeProto; kind: 'scale' | 'divide' | 'shift' | 'rows'; input: number }

const ALPHAS = [0, 0.25, 0.5, 0.75, 1];
/** Below this estimated gain smoothing is not applied: it would be a change without a measured reason. */
const MIN_GAIN_DB = 0.5;

/** How a static weight layer reads channel c of its activation input, or undefined when it cannot be smoothed. */
function readerOf(node: NodeProto, editor: ModelEditor, loaded: LoadedModel): Reader | undefined {
  const view = editor.view();
  const op = node.op_type;
  const wname = node.input?.[1] ?? '';
  const wt = view.constant(wname);
  if (!wt || wt.data_type !== DataType.FLOAT) return undefined;
  const dims = tensorDims(wt, loaded.loc);
  const w = toFloat32(readTensor(wt, loaded.loc));
  if (op === 'Conv' && dims.length >= 3) {
    const group = Number(node.attribute?.find((a) => a.name === 'group')?.i ?? 1);
    const [cout, cpg] = dims;
    const taps = w.length / (cout * cpg);
    const outsPerGroup = cout / group;
    return { node, weight: wname, dims, w, outs: cout, outChannel: (f) => Math.floor(f / (cpg * taps)),
      inChannel: (f) => Math.floor(Math.floor(f / (cpg * taps)) / outsPerGroup) * cpg + (Math.floor(f / taps) % cpg) };
  }
  if ((op === 'MatMul' || op === 'Gemm') && dims.length === 2) {
    if (op === 'Gemm' && node.attribute?.find((a) => a.name === 'transA')?.i) return undefined;
    const transB = op === 'Gemm' && !!node.attribute?.find((a) => a.name === 'transB')?.i;
    const [r, c] = dims;
    return transB
      ? { node, weight: wname, dims, w, outs: r, outChannel: (f) => Math.floor(f / c), inChannel: (f) => f % c }
      : { node, weight: wname, dims, w, outs: c, outChannel: (f) => f % c, inChannel: (f) => Math.floor(f / c) };
  }
  return undefined;
}

/** A constant operand that broadcasts per channel of the activation (scalar, or one value per channel on `axis`). */
function channelConstant(editor: ModelEditor, loaded: LoadedModel, name: string, channels: number, lastAxis: boolean, rank: number): Float32Array | undefined {
  const t = editor.view().constant(name);
  if (!t || t.data_type !== DataType.FLOAT) return undefined;
  const v = toFloat32(readTensor(t, loaded.loc));
  if (v.length === 1) return Float32Array.from({ length: channels }, () => v[0]);
  const dims = tensorDims(t, loaded.loc);
  if (v.length !== channels) return undefined;
  if (lastAxis) return dims[dims.length - 1] === channels ? v : undefined;
  const axis = dims.length - (rank - 1);
  return axis >= 0 && dims[axis] === channels ? v : undefined;
}

/**
 * The chain of nodes before `tensor` that can take a per-channel 1/s into their constants: a Mul or Div
 * by a constant ends it, an Add/Sub of a constant continues to its data input, a Conv/Gemm/MatMul with a
 * constant weight ends it (its output channels are scaled). Every tensor on the way must have one reader.
 */
function absorbChain(editor: ModelEditor, loaded: LoadedModel, tensor: string, channels: number, lastAxis: boolean, rank: number): Absorb[] | string {
  const view = editor.view();
  const outputs = new Set((editor.graph.output ?? []).map((o) => o.name));
  const chain: Absorb[] = [];
  let t = tensor;
  for (let hops = 0; hops < 8; hops++) {
    if (outputs.has(t)) return `'${t}' is a model output`;
    const p = view.producer.get(t);
    if (!p || (p.domain ?? '') !== '') return p ? `made by ${p.op_type} (${p.domain})` : 'a model input';
    if (t !== tensor && view.consumersOf(t).length !== 1) return `'${t}' has other readers`;
    const op = p.op_type ?? '';
    if (['Mul', 'Add', 'Sub', 'Div'].includes(op) && p.input?.length === 2) {
      const k = p.input.findIndex((i) => channelConstant(editor, loaded, i, channels, lastAxis, rank));
      if (k < 0 || ((op === 'Sub' || op === 'Div') && k !== 1)) return `made by ${op} without a per-channel constant`;
      if (op === 'Mul' || op === 'Div') { chain.push({ node: p, kind: op === 'Mul' ? 'scale' : 'divide', input: k }); return chain; }
      chain.push({ node: p, kind: 'shift', input: k });
      t = p.input[1 - k];
      continue;
    }
    if (['Conv', 'Gemm', 'MatMul'].includes(op)) {
      const r = readerOf(p, editor, loaded);
      if (!r || r.outs !== channels) return `made by ${op} whose outputs do not line up with the channels`;
      if (p.input?.[2] && !editor.view().constant(p.input[2])) return `made by ${op} with a computed bias`;
      chain.push({ node: p, kind: 'rows', input: 1 });
      return chain;
    }
    return `made by ${op}`;
  }
  return 'too long a chain of constant ops';
}

const median = (v: Float64Array) => { const s = Float64Array.from(v).sort(); return s[Math.floor(s.length / 2)] || 1e-12; };

/** Estimated output noise of the readers after smoothing by s: input rounding (uint8, per tensor) + weight rounding (int8, per output channel). */
function noise(readers: Reader[], a: Float64Array, s: Float64Array): number {
  let amax = 0;
  for (let c = 0; c < a.length; c++) amax = Math.max(amax, a[c] / s[c]);
  const dx2 = ((2 * amax) / 255) ** 2 / 12;
  let total = 0;
  for (const r of readers) {
    const wmax = new Float64Array(r.outs);
    const aw = new Float64Array(r.outs);
    let w2 = 0;
    for (let f = 0; f < r.w.length; f++) {
      const c = r.inChannel(f), o = r.outChannel(f);
      const ws = r.w[f] * s[c];
      w2 += ws * ws;
      wmax[o] = Math.max(wmax[o], Math.abs(ws));
      aw[o] += (a[c] / s[c]) ** 2;
    }
    total += dx2 * w2;
    for (let o = 0; o < r.outs; o++) total += ((wmax[o] / 127) ** 2 / 12) * aw[o];
  }
  return total;
}

function scalesFor(readers: Reader[], a: Float64Array, alpha: number): Float64Array {
  const wmax = new Float64Array(a.length);
  for (const r of readers) for (let f = 0; f < r.w.length; f++) { const c = r.inChannel(f); wmax[c] = Math.max(wmax[c], Math.abs(r.w[f])); }
  return Float64Array.from(a, (ac, c) => {
    if (!(ac > 0) || !(wmax[c] > 0)) return 1;
    const s = ac ** alpha / wmax[c] ** (1 - alpha);
    return Math.min(1e4, Math.max(1e-4, s));
  });
}

function apply(editor: ModelEditor, loaded: LoadedModel, readers: Reader[], chain: Absorb[], s: Float64Array, lastAxis: boolean, rank: number): void {
  const channels = s.length;
  for (const cached of readers) {
    // Read again: an earlier activation's chain may have scaled this layer's output rows since.
    const r = readerOf(cached.node, editor, loaded)!;
    const w2 = Float32Array.from(r.w, (v, f) => v * s[r.inChannel(f)]);
    r.node.input![1] = editor.addInitializer(makeTensor(`${r.weight}_smoothed`, DataType.FLOAT, r.dims, w2));
  }
  const shape = lastAxis ? [channels] : [channels, ...Array(rank - 2).fill(1)];
  for (const step of chain) {
    const n = step.node;
    const name = n.input![step.input];
    if (step.kind === 'rows') {
      const r = readerOf(n, editor, loaded)!;
      const w2 = Float32Array.from(r.w, (v, f) => v / s[r.outChannel(f)]);
      n.input![1] = editor.addInitializer(makeTensor(`${r.weight}_smoothed_out`, DataType.FLOAT, r.dims, w2));
      const bt = n.input![2] ? editor.view().constant(n.input![2]) : undefined;
      if (bt) {
        const b = toFloat32(readTensor(bt, loaded.loc));
        n.input![2] = editor.addInitializer(makeTensor(`${n.input![2]}_smoothed`, DataType.FLOAT, tensorDims(bt, loaded.loc), Float32Array.from(b, (v, o) => v / s[o])));
      }
      continue;
    }
    const k = channelConstant(editor, loaded, name, channels, lastAxis, rank)!;
    const v = Float32Array.from(k, (x, c) => (step.kind === 'divide' ? x * s[c] : x / s[c]));
    n.input![step.input] = editor.addInitializer(makeTensor(`${name}_smoothed`, DataType.FLOAT, shape, v));
  }
}

/**
 * SmoothQuant-style activation smoothing for static INT8: per input channel c of a Conv/MatMul/Gemm
 * activation, divide the channel by s_c and multiply the weights reading it by s_c, so a few outlier
 * channels no longer set the one per-tensor scale every channel shares. The division lands in constants
 * already before the activation (a norm's scale and shift, a per-channel affine, the producing layer's
 * rows), so it costs nothing at run time. Per activation, α is chosen by the estimated output noise of
 * its readers, from the calibration data's per-channel maxima, and smoothing is applied only where that
 * estimate improves by at least 0.5 dB.
 */
export async function smoothActivations(editor: ModelEditor, loaded: LoadedModel, nodes: NodeProto[], data: CalibrationData, device: DevicePreference, ctx: JobContext = {}): Promise<SmoothingDecision[]> {
  const view = editor.view();
  const planned = new Set(nodes);
  const byTensor = new Map<string, NodeProto[]>();
  for (const n of nodes) {
    if (!['Conv', 'MatMul', 'Gemm'].includes(n.op_type ?? '') || !n.input?.[0] || view.constant(n.input[0])) continue;
    byTensor.set(n.input[0], [...(byTensor.get(n.input[0]) ?? []), n]);
  }
  const decisions: SmoothingDecision[] = [];
  const work: Array<{ tensor: string; readers: Reader[]; chain: Absorb[]; lastAxis: boolean; rank: number; channels: number }> = [];
  for (const [tensor, layers] of byTensor) {
    const skip = (why: string) => decisions.push({ tensor, layers: layers.map((l) => l.name ?? ''), alpha: 0, estimatedGainDb: 0, channelRatio: [0, 0], absorbedBy: [], skipped: why });
    if (view.consumersOf(tensor).some((c) => !planned.has(c) || !byTensor.get(tensor)!.includes(c))) { skip('read by other ops too'); continue; }
    const readers = layers.map((l) => readerOf(l, editor, loaded));
    if (readers.some((r) => !r)) { skip('a reader without a constant float weight'); continue; }
    const rs = readers as Reader[];
    const lastAxis = rs[0].node.op_type !== 'Conv';
    const channels = lastAxis ? (rs[0].node.op_type === 'Gemm' && rs[0].node.attribute?.find((a) => a.name === 'transB')?.i ? rs[0].dims[1] : rs[0].dims[0]) : rs[0].dims[1] * Number(rs[0].node.attribute?.find((a) => a.name === 'group')?.i ?? 1);
    if (rs.some((r) => (r.node.op_type !== 'Conv') !== lastAxis)) { skip('read by convolutions and matrix products alike'); continue; }
    const rank = lastAxis ? 2 : rs[0].dims.length;
    const chain = absorbChain(editor, loaded, tensor, channels, lastAxis, rank);
    if (typeof chain === 'string') { skip(`nothing before it can take the scale: ${chain}`); continue; }
    work.push({ tensor, readers: rs, chain, lastAxis, rank, channels });
  }
  if (!work.length) return decisions;
  const stats = await captureChannelStats(loaded, work.map((w) => ({ tensor: w.tensor, axis: w.lastAxis ? 'last' : 1, channels: w.channels })), data, device, ctx, 'absmax');
  for (const [i, w] of work.entries()) {
    const a = stats?.values[i];
    const layers = w.readers.map((r) => r.node.name ?? '');
    if (!a) { decisions.push({ tensor: w.tensor, layers, alpha: 0, estimatedGainDb: 0, channelRatio: [0, 0], absorbedBy: [], skipped: 'per-channel maxima could not be measured' }); continue; }
    const base = noise(w.readers, a, new Float64Array(a.length).fill(1));
    let best: { alpha: number; n: number; s: Float64Array } = { alpha: 0, n: base, s: new Float64Array(a.length).fill(1) };
    for (const alpha of ALPHAS.slice(1)) {
      const s = scalesFor(w.readers, a, alpha);
      const n = noise(w.readers, a, s);
      if (n < best.n) best = { alpha, n, s };
    }
    const gain = 10 * Math.log10(base / best.n);
    const ratio = (v: Float64Array) => Math.max(...v) / median(v);
    const after = Float64Array.from(a, (x, c) => x / best.s[c]);
    const d: SmoothingDecision = { tensor: w.tensor, layers, alpha: best.alpha, estimatedGainDb: Math.round(gain * 100) / 100, channelRatio: [ratio(a), ratio(after)], absorbedBy: w.chain.map((c) => c.node.name ?? '') };
    if (!(gain >= MIN_GAIN_DB)) { decisions.push({ ...d, alpha: 0, channelRatio: [d.channelRatio[0], d.channelRatio[0]], absorbedBy: [], skipped: `estimated gain ${gain.toFixed(2)} dB is below ${MIN_GAIN_DB} dB` }); continue; }
    apply(editor, loaded, w.readers, w.chain, best.s, w.lastAxis, w.rank);
    decisions.push(d);
  }
  return decisions;
}
