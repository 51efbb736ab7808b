import type * as ort from 'onnxruntime-node';
import { halfToFloat } from '../onnx/half';

/** A tensor's values as numbers: float16 bits decoded, 64-bit integers converted. */
export function tensorValues(t: ort.Tensor): ArrayLike<number> {
  if (t.type === 'float16') return Float32Array.from(t.data as Uint16Array, halfToFloat);
  if (t.type === 'int64' || t.type === 'uint64') return Float64Array.from(t.data as BigInt64Array, Number);
  return t.data as ArrayLike<number>;
}

/** Running fidelity of a candidate output against a reference, accumulated sample by sample. */
export class FidelityAccumulator {
  private dot = 0;
  private refSq = 0;
  private candSq = 0;
  private errSq = 0;
  private maxErr = 0;
  private argmaxSame = 0;
  private argmaxTotal = 0;
  private seqSame = 0;
  private ctcSame = 0;
  private seqTotal = 0;
  private blankSteps = 0;
  private steps = 0;
  private rank = 0;
  private inUnit = true;
  private inter = 0;
  private union = 0;
  private sizeSame = 0;
  private sizeTotal = 0;
  private nonFiniteBoth = 0;
  private nonFiniteOne = 0;
  private stringSame = 0;
  private stringTotal = 0;
  private compared = 0;
  /** The reference's first sample, and the largest change from it in any later sample of the same shape. */
  private first?: { dims: string; data: Float64Array; scale: number };
  private moved = 0;
  private samples = 0;

  /** `features`: the output holds features, not scores (see isFeatureOutput): judged by cosine and SQNR only. */
  constructor(private readonly features = false) {}

  add(refTensor: ort.Tensor, candTensor: ort.Tensor): void {
    // Strings (a pipeline's labels, normalised text) agree or do not: as numbers every one is NaN.
    if (refTensor.type === 'string' || candTensor.type === 'string') {
      const a = refTensor.data as unknown as string[], b = candTensor.data as unknown as string[];
      this.sizeTotal++;
      if (refTensor.dims.join() === candTensor.dims.join()) this.sizeSame++;
      for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] === b[i]) this.stringSame++;
      this.stringTotal += Math.max(a.length, b.length);
      return;
    }
    let ref: Values = { dims: refTensor.dims.map(Number), type: refTensor.type, data: tensorValues(refTensor) };
    let cand: Values = { dims: candTensor.dims.map(Number), type: candTensor.type, data: tensorValues(candTensor) };
    if (ref.dims.length !== cand.dims.length) throw new Error(`output shapes differ: [${ref.dims}] vs [${cand.dims}]`);
    // Data-dependent sizes (detections kept after NMS, tokens until EOS) may differ: count how often,
    // and compare what both have (the leading block of each axis).
    const sameSize = ref.dims.every((d, i) => d === cand.dims[i]);
    this.sizeTotal++;
    if (sameSize) this.sizeSame++;
    else {
      const common = ref.dims.map((d, i) => Math.min(d, cand.dims[i]));
      ref = cropped(ref, common);
      cand = cropped(cand, common);
    }
    const a = ref.data, b = cand.data;
    this.compared += a.length;
    this.track(ref);
    for (let i = 0; i < a.length; i++) {
      const x = Number(a[i]), y = Number(b[i]);
      // NaN/Inf (a fully masked attention row, a log of zero): the same on both sides is agreement and left
      // out of the sums, which one of them would make NaN or infinite for the whole output; on one side
      // only, it is counted and said.
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        if (Object.is(x, y) || (Number.isNaN(x) && Number.isNaN(y))) this.nonFiniteBoth++;
        else this.nonFiniteOne++;
        continue;
      }
      this.dot += x * y;
      this.refSq += x * x;
      this.candSq += y * y;
      const e = x - y;
      this.errSq += e * e;
      if (Math.abs(e) > this.maxErr) this.maxErr = Math.abs(e);
    }
    this.rank = ref.dims.length;
    if (this.features) {
      this.inUnit = false;
      return;
    }
    // Top-1 agreement over the last axis (class or token logits), when that axis has choices.
    const last = ref.dims[ref.dims.length - 1] ?? 1;
    // Class ids, indices, labels (int32/int64: an ArgMax, TopK's indices, a detector's labels): the answer
    // is the value, so top-1 agreement is the share of equal values (the argmax of ids picks nothing).
    if (ref.type === 'int64' || ref.type === 'int32') {
      for (let i = 0; i < a.length; i++) if (a[i] === b[i]) this.argmaxSame++;
      this.argmaxTotal += a.length;
    } else if (ref.dims.length >= 1 && last > 1 && ref.type !== 'bool' && ref.type !== 'string') {
      for (let r = 0; r < a.length / last; r++) {
        if (argmax(a, r * last, last) === argmax(b, r * last, last)) this.argmaxSame++;
        this.argmaxTotal++;
      }
    }
    // Maps [N, 1, H, W] (detection, segmentation probabilities): IoU of the maps thresholded at 0.5.
    if (ref.dims.length === 4 && Number(ref.dims[1]) === 1 && ref.type !== 'bool' && ref.type !== 'string') {
      for (let i = 0; i < a.length; i++) {
        const x = Number(a[i]), y = Number(b[i]);
        if (!(x >= 0 && x <= 1)) this.inUnit = false;
        const p = x > 0.5, q = y > 0.5;
        if (p && q) this.inter++;
        if (p || q) this.union++;
      }
    } else this.inUnit = false;
    // Sequence outputs [N, T, C] (text recognisers, token logits): one answer per row is a whole sequence.
    if (ref.dims.length === 3 && last > 1 && Number(ref.dims[1]) > 1 && ref.type !== 'bool' && ref.type !== 'string') {
      const steps = Number(ref.dims[1]);
      for (let n = 0; n < Number(ref.dims[0]); n++) {
        const sa: number[] = [], sb: number[] = [];
        for (let t = 0; t < steps; t++) {
          sa.push(argmax(a, (n * steps + t) * last, last));
          sb.push(argmax(b, (n * steps + t) * last, last));
        }
        this.blankSteps += sa.filter((c) => c === 0).length;
        this.steps += steps;
        if (sa.every((c, i) => c === sb[i])) this.seqSame++;
        if (ctcCollapse(sa).join() === ctcCollapse(sb).join()) this.ctcSame++;
        this.seqTotal++;
      }
    }
  }

  /** How far the reference moves from its first sample (see FidelityMetrics.unmoved). */
  private track(ref: Values): void {
    this.samples++;
    const dims = ref.dims.join('x');
    if (!this.first) {
      const data = Float64Array.from(ref.data, Number);
      let scale = 0;
      for (const x of data) if (Number.isFinite(x) && Math.abs(x) > scale) scale = Math.abs(x);
      this.first = { dims, data, scale };
      return;
    }
    // Another shape (data-dependent sizes): the output moved.
    if (dims !== this.first.dims) { this.moved = Infinity; return; }
    const f = this.first.data;
    for (let i = 0; i < f.length; i++) {
      const d = Math.abs(Number(ref.data[i]) - f[i]);
      if (d > this.moved) this.moved = d;
    }
  }

  /** `metric`: the headline to report (when this output has it); otherwise the worst relevant one. */
  result(metric?: HeadlineMetric): FidelityMetrics {
    if (this.stringTotal) {
      // Only agreement means anything: top-1 is the share of equal strings, and cosine repeats it.
      const share = this.stringSame / this.stringTotal;
      const s: FidelityMetrics = { cosine: share, sqnr: share === 1 ? Infinity : 0, maxAbsError: share === 1 ? 0 : 1, top1Agreement: share, headline: { metric: 'top1', value: share } };
      if (this.sizeSame < this.sizeTotal) s.sizeAgreement = this.sizeSame / this.sizeTotal;
      return s;
    }
    if (!this.compared && this.sizeTotal) return this.nothingCompared();
    const denom = Math.sqrt(this.refSq) * Math.sqrt(this.candSq);
    const cosine = denom === 0 ? (this.refSq === this.candSq ? 1 : 0) : this.dot / denom;
    const top1Agreement = this.argmaxTotal ? this.argmaxSame / this.argmaxTotal : null;
    const m: FidelityMetrics = { cosine, sqnr: this.errSq === 0 ? Infinity : 10 * Math.log10(this.refSq / this.errSq), maxAbsError: this.maxErr, top1Agreement, headline: { metric: 'cosine', value: cosine } };
    // Zero on both sides wherever compared (a freshly initialised head: torchvision's ViT zeroes its
    // classifier): they agree, and that says nothing of the quantization.
    if (this.refSq === 0 && this.candSq === 0 && !this.nonFiniteOne) m.nothing = 'zero';
    if (this.seqTotal) {
      m.sequenceAgreement = this.seqSame / this.seqTotal;
      // A CTC head spends most steps on its blank (class 0): what it reads is the collapsed sequence.
      if (this.blankSteps / this.steps > 0.3) m.ctcAgreement = this.ctcSame / this.seqTotal;
    }
    // Both maps empty: nothing to disagree on.
    if (this.inUnit) m.iou = this.union ? this.inter / this.union : 1;
    if (this.sizeSame < this.sizeTotal) m.sizeAgreement = this.sizeSame / this.sizeTotal;
    if (this.nonFiniteBoth || this.nonFiniteOne) m.nonFinite = { both: this.nonFiniteBoth, oneSide: this.nonFiniteOne };
    if (this.samples > 1 && this.first && this.first.scale > 0 && this.moved <= UNMOVED * this.first.scale) m.unmoved = { samples: this.samples, by: this.moved / this.first.scale };
    // The headline is the worst of the metrics that judge this kind of output: per-position top-1 can
    // read 93% while every line of text is wrong. Top-1 along the last axis of a map (its width) judges nothing.
    const candidates: Array<[HeadlineMetric, number]> = [['cosine', cosine]];
    if (top1Agreement !== null && this.rank <= 3) candidates.push(['top1', top1Agreement]);
    if (m.sequenceAgreement !== undefined) candidates.push(['sequence', m.sequenceAgreement]);
    if (m.ctcAgreement !== undefined) candidates.push(['ctc', m.ctcAgreement]);
    if (m.iou !== undefined) candidates.push(['iou', m.iou]);
    if (m.sizeAgreement !== undefined) candidates.push(['size', m.sizeAgreement]);
    // A task metric, where the output's kind has one, is what judges it: a CTC head by the text it decodes
    // (an extra blank step or a repeat is not a different answer), other sequences by the whole sequence,
    // maps by IoU; per-position top-1 and cosine are reported beside it.
    const task = m.ctcAgreement !== undefined ? 'ctc' : m.sequenceAgreement !== undefined ? 'sequence' : m.iou !== undefined ? 'iou' : undefined;
    const relevant = task ? candidates.filter(([k]) => k === task || k === 'size') : candidates;
    const chosen = metric ? candidates.find(([k]) => k === metric) : undefined;
    const [name, value] = chosen ?? relevant.reduce((w, c) => (c[1] < w[1] ? c : w));
    m.headline = { metric: name, value };
    return m;
  }

  /**
   * No value was compared: the output was empty in every sample (a detector that kept no box on these
   * inputs), or the two models' sizes had nothing in common. Cosine and SQNR would read as perfect while
   * measuring nothing: the headline is the share of samples whose sizes agreed.
   */
  private nothingCompared(): FidelityMetrics {
    const sizes = this.sizeSame / this.sizeTotal;
    return { cosine: sizes, sqnr: sizes === 1 ? Infinity : 0, maxAbsError: 0, top1Agreement: null, nothing: 'empty', ...(sizes < 1 ? { sizeAgreement: sizes } : {}), headline: { metric: 'size', value: sizes } };
  }
}

export interface FidelityMetrics {
  cosine: number;
  sqnr: number;
  maxAbsError: number;
  top1Agreement: number | null;
  /** [N, T, C] outputs: share of rows whose argmax sequence is identical. */
  sequenceAgreement?: number;
  /** [N, T, C] outputs of a CTC head (blank = class 0): share of rows that decode to the same text. */
  ctcAgreement?: number;
  /** Maps [N, 1, H, W] with values in [0, 1]: intersection over union of the maps thresholded at 0.5. */
  iou?: number;
  /** Share of samples whose output had the float model's size (only when some did not: data-dependent sizes). */
  sizeAgreement?: number;
  /**
   * Nothing was measured: `empty`, no value was compared (empty in every sample, or sizes with nothing in
   * common; see nothingCompared), only the size agreement means anything; `zero`, every value compared was
   * zero in both models.
   */
  nothing?: 'empty' | 'zero';
  /**
   * The float model gave (nearly) the same output for every sample: it moved by `by` of its largest value
   * (UNMOVED at most) over `samples` samples. Untrained weights do this (torchvision's random-init GoogLeNet:
   * identical logits for any input); then agreement says little more than that the constant survived.
   */
  unmoved?: { samples: number; by: number };
  /** Values that were NaN or infinite: the same on both sides, and on one side only (the other metrics leave both out). */
  nonFinite?: { both: number; oneSide: number };
  /** The output's task metric (CTC text, sequence, map IoU), else the worse of top-1 and cosine; or the one asked for. */
  headline: { metric: HeadlineMetric; value: number };
}

export const HEADLINE_METRICS = ['cosine', 'top1', 'sequence', 'ctc', 'iou', 'size'] as const;
export type HeadlineMetric = (typeof HEADLINE_METRICS)[number];
/** How reports name each metric. */
export const METRIC_NAMES: Record<HeadlineMetric, string> = { cosine: 'cosine', top1: 'top-1 agreement', sequence: 'sequence agreement', ctc: 'CTC text agreement', iou: 'map IoU', size: 'output size agreement' };

/** What every fidelity line measured on random inputs says (CLI, reports, panels, sweeps). */
export const RANDOM_DATA_NOTE = 'random inputs — not evidence of accuracy';
/** A data spec (`random:N`, or none, which means seeded random samples) that is not the user's data. */
export const isRandomData = (spec: string | undefined) => !spec || spec.startsWith('random');
/** The report warning for fidelity measured without the user's data (undefined with real data). */
export const randomDataWarning = (spec: string | undefined) =>
  (isRandomData(spec) ? `fidelity measured on ${spec ?? '4 seeded random samples'}: ${RANDOM_DATA_NOTE}; pass --calibration DIR for real data` : undefined);

/**
 * An output that moves by at most this share of its largest value over the samples does not respond to
 * them. Over random:4, trained models moved by far more (PaddleOCR cls 1.4e-2, rec 0.64, det 14) and
 * torchvision's random-init GoogLeNet, ShuffleNetV2 and a MobileNet-style test model by 0, 1.4e-4, 9.6e-4.
 */
export const UNMOVED = 1e-3;

/**
 * The warning for outputs the float model gave (nearly) unchanged on every sample (see
 * FidelityMetrics.unmoved): their agreement cannot show how the inputs are treated. Undefined otherwise.
 */
export function unmovedOutputsWarning(outputs: Record<string, FidelityMetrics>, data: string | undefined, flag = '--calibration'): string | undefined {
  const names = Object.keys(outputs).filter((k) => outputs[k].unmoved && !outputs[k].nothing);
  if (!names.length) return undefined;
  const which = names.length === Object.keys(outputs).length ? (names.length === 1 ? `the output '${names[0]}'` : 'every output') : `${names.map((n) => `'${n}'`).join(', ')}`;
  const by = Math.max(...names.map((n) => outputs[n].unmoved!.by));
  const how = by === 0 ? 'identical' : `moving by at most ${(by * 100).toPrecision(2)}% of the largest value`;
  return `the float model gave ${which} unchanged on all ${outputs[names[0]].unmoved!.samples} samples of ${data ?? '4 seeded random samples'} (${how}): it does not respond to these inputs (untrained weights?), so agreement with it shows little; pass data it responds to (${flag} DIR)`;
}

/** What an output's fidelity says when nothing was measured (see FidelityMetrics.nothing); undefined otherwise. */
export function nothingComparedText(m: Pick<FidelityMetrics, 'nothing' | 'sizeAgreement'>): string | undefined {
  if (!m.nothing) return undefined;
  const what = m.nothing === 'zero' ? 'zero in both models on every sample' : m.sizeAgreement === undefined ? 'empty in both models on every sample' : `output size agreement ${(m.sizeAgreement * 100).toFixed(2)}%, no value in common`;
  return `${what}: nothing compared`;
}

/**
 * The warning for fidelity that measured nothing: every output empty or zero in both models (or empty in
 * one) on every sample, as a detector that finds nothing in random inputs. Undefined when any output was
 * measured.
 */
export function emptyOutputsWarning(outputs: Record<string, FidelityMetrics>, data: string | undefined, flag = '--calibration'): string | undefined {
  const all = Object.values(outputs);
  if (!all.length || !all.every((m) => m.nothing)) return undefined;
  return `no output had a value to compare on ${data ?? '4 seeded random samples'} (each was empty or zero in both models, or empty in one), so fidelity was not measured; pass data on which the model gives outputs (${flag} DIR)`;
}

/** CTC greedy collapse: repeats merged, blanks (class 0) dropped. */
export function ctcCollapse(seq: number[]): number[] {
  return seq.filter((c, i) => c !== 0 && c !== seq[i - 1]);
}

interface Values { dims: number[]; type: ort.Tensor['type']; data: ArrayLike<number> }

/** The leading `dims` block of a row-major tensor. */
function cropped(t: Values, dims: number[]): Values {
  const n = dims.reduce((x, y) => x * y, 1);
  const out = new Float64Array(n);
  const idx = new Array<number>(dims.length).fill(0);
  for (let k = 0; k < n; k++) {
    let src = 0;
    for (let i = 0; i < dims.length; i++) src = src * t.dims[i] + idx[i];
    out[k] = Number(t.data[src]);
    for (let i = dims.length - 1; i >= 0 && ++idx[i] === dims[i]; i--) idx[i] = 0;
  }
  return { dims, type: t.type, data: out };
}

function argmax(d: ArrayLike<number>, start: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (d[start + i] > d[start + best]) best = i;
  return best;
}
