import * as ort from 'onnxruntime-node';
import type { CalibrationData } from '../calib/data';
import { CancelledError, QuantLensError } from '../base/errors';
import type { JobContext } from '../base/jobs';
import { DataType } from '../onnx/dtypes';
import type { LoadedModel } from '../onnx/model-io';
import { onnx, type ModelProto, type NodeProto, type TensorProto } from '../onnx/proto';
import { int64Tensor, makeTensor } from '../onnx/tensor';
import { intAttr, intsAttr } from '../onnx/attributes';
import { defaultOpset, axesNode, negativeSize, statisticsInGraphOrder, tensorShapes, withReductions } from './capture';
import type { VariantRunner } from './pinned-session';
import { startSessionWorker, variantRunner, wantsWorker } from './threaded-session';
import { pipelineSamples } from './sample-pipeline';
import { channelInner, HELD_VALUES, type ChannelLayout, type ChannelOf } from '../calib/channel-scaled';
import type { DevicePreference, Provider } from './session';

/**
 * What one sample showed of one tensor, for a histogram: groups of values, each value standing for
 * `weight` of the tensor's elements: the strided picks of its middle at the stride's weight, every value
 * past the tail threshold exactly (weight 1), or all of it. `min` and `max` are exact.
 */
export interface SampledTensor {
  min: number;
  max: number;
  /** Elements in the whole tensor. */
  size: number;
  /** The stride of the picks, and the magnitude past which every value came out exactly (Infinity: none). */
  step: number;
  over: number;
  /** With a ChannelLayout, `channel` gives each value's channel (for the picks, from the index; their values past the threshold are NaN there: the tail counts them). */
  parts: Array<{ values: Float32Array; weight: number; channel?: ChannelOf }>;
  /** With a ChannelLayout: each value's channel (in parts) and the channels' exact extremes in this sample. */
  perChannel?: { min: Float32Array; max: Float32Array };
  /** With a ChannelLayout: whether element `i` (value `v`) is in the tail (thresholds relative to each channel's magnitude). */
  isTail?: (v: number, i: number) => boolean;
}

/**
 * The smallest prime stride of at least `want` that does not divide `size`. A prime that does not divide
 * the element count divides none of the dimensions, so the picks walk through every channel and position
 * of the tensor instead of landing on the same few columns (a stride of 3 over rows of 768 features would
 * only ever see every third feature).
 */
export function sampleStride(size: number, want: number): number {
  if (want <= 1) return 1;
  for (let p = Math.max(2, Math.ceil(want)); ; p++) if (isPrime(p) && size % p !== 0) return p;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/**
 * Histogram statistics without copying whole activations out of onnxruntime: a copy of the model gets,
 * beside each float32 tensor's producer, its rows' extremes (along the last axis; the tensor's exact
 * extremes follow), a strided Slice of the flattened tensor (about `cap` values per sample), and Compress
 * of every row holding a value whose magnitude passes a threshold, an input; the values past it are picked
 * out of those rows here. Clipping is decided in the tails, where a stride would catch a handful of
 * values each standing for hundreds: they come out exactly, and the picks count only between them.
 * Strides are primes chosen from the sizes onnxruntime infers for the first sample; thresholds follow the
 * values the rows copied, aiming at about cap/8 per sample (the first sample is run once more
 * beforehand, without a tail, to learn the ranges). 'small' when every tensor fits the cap, undefined
 * when onnxruntime refuses the variant (an opset below 10 has no Slice steps): either way the caller
 * copies the tensors instead.
 */
export async function captureSampled(
  loaded: LoadedModel, names: string[], data: CalibrationData, device: DevicePreference, cap: number,
  onTensor: (name: string, t: SampledTensor) => void, ctx: JobContext = {}, layouts: Array<ChannelLayout | undefined> = [],
): Promise<{ provider: Provider; fallbackReason?: string; samples: number; seconds: number } | 'small' | undefined> {
  const opset = defaultOpset(loaded.model);
  if (opset < 10 || !names.length) return undefined;
  const t0 = performance.now();
  const samples = data.samples()[Symbol.iterator]();
  const next = samples.next();
  if (next.done) return undefined;
  // Every tensor within the cap (the shapes onnxruntime infers for the first sample's): the picks would be
  // every value, at the cost of this variant's extra nodes on every run, so the caller copies them out
  // plainly, and no variant is set up for nothing (the fixtures: 60 and 200 ms of a calibration of 0.2 and
  // 0.46 s; PaddleOCR det 320x640 pays 11-19 ms for the question, scratch).
  // (Where onnxruntime cannot say, every tensor is tried with a coarse stride: a type Concat refuses fails
  // the variant, and the caller copies.)
  const meta = await tensorShapes(loaded, names, next.value, device).catch((e: unknown) => {
    // Inputs too small for the model: the variant's session below could abort the process (see shapesInferable).
    if (negativeSize(e)) throw new QuantLensError(loaded.loc.file, `onnxruntime infers a negative size inside the model for inputs of ${Object.entries(next.value).map(([n, t]) => `'${n}' ${t.dims.join('x')}`).join(', ')}: they are too small for it`, 'runtime');
    return names.map(() => ({ type: undefined, rank: undefined, size: undefined }));
  });
  if (meta.every((m) => m.size !== undefined && m.size <= cap)) return 'small';
  // Only float32 activations are calibrated (and one vector holds every tensor's values).
  const kept = names.map((_, k) => k).filter((k) => (meta[k].type ?? 'float32') === 'float32');
  if (!kept.length) return undefined;
  const floatNames = kept.map((k) => names[k]), floatLayouts = kept.map((k) => layouts[k]);
  // For image-sized samples (see wantsWorker); it comes up while this thread builds the variant.
  const worker = wantsWorker(next.value, data.count) ? startSessionWorker(device, loaded.loc.file) : undefined;
  const target = Math.max(16, Math.ceil(cap / 8));
  // Held tensors (see ChannelLayout) keep their picks until the pass ends: as many as the others while
  // they fit in HELD_VALUES (fewer picks moved PaddleOCR rec's clips enough to cost real lines).
  const heldCount = floatLayouts.filter((l) => l).length;
  const capOf = (k: number) => (floatLayouts[k] ? Math.max(256, Math.min(cap, Math.floor(HELD_VALUES / (heldCount * Math.max(1, data.count))))) : cap);
  // Strides from the sizes onnxruntime infers for the first sample (primes, see sampleStride); a size it
  // cannot tell gets a coarse one (the picks' weight follows the size each sample has).
  const specs: SampledSpec[] = kept.map((k, j) => ({ step: meta[k].size === undefined ? 101 : sampleStride(meta[k].size!, meta[k].size! / capOf(j)), rank: meta[k].rank }));
  let io: SampledIO, s: VariantRunner;
  try {
    io = sampledVariant(loaded.model, floatNames, specs, floatLayouts);
    // No planned memory pattern: the row extremes and copies beside each tensor would make onnxruntime
    // plan, and fault in on the second run, a block far above what is live at once (PaddleOCR det
    // 320x640, 16 samples, percentile: the quantize command's peak 470-473 MiB planned, 352-356 unplanned; the
    // capture 2.55 s, 2.28 s). Without any arena the peak is lower (325-328 MiB), but where page faults are
    // dear every run pays them (3.0 s).
    // On the CPU, in a worker thread, so that binning and making samples overlap the runs (see the loop).
    s = await variantRunner(worker, io.model, loaded, device, next.value, 'all', { noMemPattern: true });
  } catch (e) {
    await worker?.close();
    if (process.env.QUANTLENS_DEBUG) console.error(`captureSampled: ${String(e)}`);
    return undefined;
  }
  // Each held tensor's channel magnitudes so far, which its thresholds follow.
  const magnitudes: Array<Float64Array | undefined> = floatLayouts.map((l) => l && new Float64Array(l.channels));
  try {
    // Each held tensor's channel extremes in a sample (its magnitudes so far follow them), ahead of its parts.
    const extremesOf = (got: Read[]) => got.map((t, k) => {
      const l = floatLayouts[k];
      if (!l) return undefined;
      const e = channelExtremes(l, t);
      if (!e) throw new Error(`'${floatNames[k]}' does not have ${l.channels} channels on its ${l.axis === 1 ? 'second' : 'last'} axis`);
      const m = magnitudes[k]!;
      for (let ch = 0; ch < l.channels; ch++) m[ch] = Math.max(m[ch], Math.abs(e.min[ch]), Math.abs(e.max[ch]));
      return e;
    });
    // The first sample runs once more, without a tail, to learn each tensor's range.
    const first = specs.map((sp, k) => openPlan(floatLayouts[k], sp.step));
    const probe = io.read(await s.run({ ...next.value, ...io.feeds(first) }, io.fetch), first);
    extremesOf(probe);
    // Within the cap after all, where the shapes could not say so beforehand (see above).
    if (probe.every((t) => t.size <= cap)) return 'small';
    let plans = probe.map((t, k) => {
      // Near the extreme: a row is copied whole for one value past it, so half the extreme copied 3.9 M
      // of det 320x640's 31.6 M values in the first sample (peak memory 328 -> 309 MiB at 0.9); the
      // threshold comes down from there as the copies stay small. A held tensor's is relative: 0.9 of
      // each channel's own extreme.
      const l = floatLayouts[k], step = specs[k].step;
      if (step === 1) return openPlan(l, step);
      return l ? relativePlan(l, step, 0.9, magnitudes[k]!, t) : { step, over: Math.fround(Math.max(Math.abs(t.min), Math.abs(t.max)) * 0.9) };
    });
    // Pipelined (see pipelineSamples): while onnxruntime runs a sample (in a worker where it can), this
    // thread bins the one before it and makes the one after. The next sample's plan needs only the cheap
    // part of this one's read (its copied-row counts and channel extremes), so the run starts before the
    // binning.
    type Ran = { used: Plan[]; got: Read[]; extremes?: ReturnType<typeof extremesOf> };
    const i = await pipelineSamples(samples, true, (feeds): Promise<Ran> => {
      const used = plans;
      return s.run({ ...feeds, ...io.feeds(used) }, io.fetch).then((out) => ({ used, got: io.read(out, used) }));
    }, ({ used, got, extremes }, _feeds, k) => {
      got.forEach((t, j) => {
        const base = { min: t.min, max: t.max, size: t.size, step: used[j].step, over: used[j].over };
        const l = floatLayouts[j];
        const held = l && channelParts(l, t, used[j], extremes![j]);
        if (l && !held) throw new Error(`'${floatNames[j]}' does not have the rows onnxruntime copied`);
        onTensor(floatNames[j], held ? { ...base, ...held } : { ...base, parts: split(t.pick, t.tail, t.size, used[j].over) });
      });
      ctx.onProgress?.({ stage: 'calibration', fraction: (k + 1) / data.count, message: `sample ${k + 1}/${data.count}` });
    }, {
      signal: ctx.signal, first: next,
      settle: (r) => {
        r.extremes = extremesOf(r.got);
        plans = r.got.map((t, j) => {
          const l = floatLayouts[j], p = nextPlan(r.used[j], t.copied, target);
          return !l ? p : p.step === 1 ? openPlan(l, 1) : relativePlan(l, p.step, Number.isFinite(r.used[j].over) ? p.over : 0.9, magnitudes[j]!, t);
        });
      },
    });
    return { provider: s.provider, ...(s.fallbackReason ? { fallbackReason: s.fallbackReason } : {}), samples: i, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    if (e instanceof CancelledError) throw e;
    if (process.env.QUANTLENS_DEBUG) console.error(`captureSampled: ${String(e)}`);
    return undefined;
  } finally {
    await s.release();
  }
}

/**
 * One tensor's stride and tail threshold for a run. A held tensor's threshold is relative to each channel's
 * magnitude so far (so its tail stays exact whatever per-channel scales smoothing chooses later): on axis
 * 1, `rowOver` holds each row's threshold (over × its channel's magnitude; one value: every row's); on the
 * last axis, the rows are compared after multiplying each channel by `inv` (1 / its magnitude) against `over`.
 */
type Plan = { step: number; over: number; rowOver?: Float32Array; inv?: Float32Array };

/** A plan that copies no tail (the probe's, or every value picked). */
function openPlan(l: ChannelLayout | undefined, step = 101): Plan {
  if (!l) return { step, over: Infinity };
  return l.axis === 1 ? { step, over: Infinity, rowOver: Float32Array.of(Infinity) } : { step, over: Infinity, inv: new Float32Array(l.channels).fill(1) };
}

/** A held tensor's plan at relative threshold `q` of each channel's magnitude `m` (rows mapped to channels by `t`'s shape). */
function relativePlan(l: ChannelLayout, step: number, q: number, m: Float64Array, t: Read): Plan {
  const over = Math.fround(q);
  if (l.axis === 'last') return { step, over, inv: Float32Array.from(m, (x) => (x > 0 ? 1 / x : 0)) };
  const shape = t.shape!, w = shape[shape.length - 1] || 1, inner = channelInner(l, shape) ?? 1;
  const rows = Math.floor(t.size / w), rowOver = new Float32Array(rows);
  for (let r = 0; r < rows; r++) rowOver[r] = over * m[Math.floor((r * w) / inner) % l.channels];
  return { step, over, rowOver };
}
/** One tensor's share of a run: its extremes and size, its picks and tail (the copied rows' values past the threshold; held tensors: the rows whole). */
type Read = {
  min: number; max: number; size: number; pick: Float32Array; tail: Float32Array; copied: number;
  /** With a ChannelLayout: the tensor's shape (axis 1), its rows' extremes (the tail rows are those past the threshold), and for a last-axis layout its columns' extremes. */
  shape?: number[]; rows?: { hi: Float32Array; lo: Float32Array }; cols?: { min: Float32Array; max: Float32Array };
};
export interface SampledIO { model: ModelProto; fetch: string[]; feeds: (p: Plan[]) => Record<string, ort.Tensor>; read: (out: Record<string, ort.Tensor>, p: Plan[]) => Read[] }

/** What the variant knows of each tensor before it runs: its stride (1: every value) and its rank where known (undefined: none). */
export interface SampledSpec { step: number; rank?: number }

const INT64_MAX = 2n ** 63n - 1n;

/**
 * The capture variant, float32 tensors only: beside each tensor's producer, its rows' extremes (along the last
 * axis), its strided picks and the rows holding a value past the threshold; a tensor of stride 1 and no
 * channel layout is copied whole instead. Everything goes out as one vector (per tensor its rows and row
 * length, its row extremes, picks and tail rows; or its size and every value when copied whole), because
 * onnxruntime-node's cost per input and output tensor outweighs the work on a small model.
 *
 * Strides are constants and the thresholds come in as one vector, split by one node: onnxruntime's session
 * set-up was slow with what hung off input vectors (a Gather per tensor for its step or threshold, Slices
 * whose end was a Shape, the tail chains after them; PaddleOCR det 320x640, 122 tensors: 620-800 ms, and
 * 185-215 ms without them, scratch). Where a row passes the threshold follows from its extremes, so the
 * reader counts the copied rows itself.
 */
export function sampledVariant(model: ModelProto, names: string[], specs: SampledSpec[], layouts: Array<ChannelLayout | undefined> = []): SampledIO {
  const opset = defaultOpset(model);
  const extra: TensorProto[] = [int64Tensor('quantlens_s_flat', [-1]), int64Tensor('quantlens_s_zero', [0]), makeTensor('quantlens_s_end', DataType.INT64, [1], BigInt64Array.of(INT64_MAX))];
  const node = (op: string, name: string, input: string[], attribute: NodeProto['attribute'] = []): NodeProto => ({ op_type: op, name, input, output: [name], attribute });
  const axesOf = (op: string, name: string, input: string, axes: number[], keepdims: number) => axesNode(opset, extra, op, name, input, axes, keepdims);
  const whole = (k: number) => specs[k].step === 1 && !layouts[k];
  const thresholded = names.map((_, k) => k).filter((k) => !whole(k) && layouts[k]?.axis !== 1);
  const steps = new Set<number>();
  const values: string[] = [];
  // Dimensions go out among the values, as floats (exact to 2^24; past that the lengths do not add up and
  // the caller copies instead): a Shape whose output waited for a vector of its own ran after the whole
  // model and held its tensor until then.
  const asFloat = (name: string, input: string) => node('Cast', name, [input], [intAttr('to', DataType.FLOAT)]);
  const placements = names.map((t, i) => {
    const flat = `quantlens_s_1d_${i}`;
    const nodes: NodeProto[] = [node('Reshape', flat, [t, 'quantlens_s_flat'])];
    if (whole(i)) {
      nodes.push(node('Shape', `quantlens_s_size_${i}`, [flat]), asFloat(`quantlens_s_sizef_${i}`, `quantlens_s_size_${i}`));
      values.push(`quantlens_s_sizef_${i}`, flat);
      return { tensor: t, nodes };
    }
    const l = layouts[i], step = specs[i].step, rows = `quantlens_s_rows_${i}`, hi = `quantlens_s_rowhi_${i}`, lo = `quantlens_s_rowlo_${i}`;
    // Rows along the last axis, a view of the tensor (a scalar, or a tensor of unknown rank, is first made one row).
    if ((specs[i].rank ?? 0) >= 1) nodes.push(node('Flatten', rows, [t], [intAttr('axis', -1)]));
    else nodes.push(axesOf('Unsqueeze', `quantlens_s_1nd_${i}`, t, [0], 0), node('Flatten', rows, [`quantlens_s_1nd_${i}`], [intAttr('axis', -1)]));
    let pick = flat;
    if (step > 1) {
      if (!steps.has(step)) { steps.add(step); extra.push(int64Tensor(`quantlens_s_step${step}`, [step])); }
      pick = `quantlens_s_pick_${i}`;
      nodes.push(node('Slice', pick, [flat, 'quantlens_s_zero', 'quantlens_s_end', 'quantlens_s_zero', `quantlens_s_step${step}`]));
    }
    // Each row's extremes are the tensor's one read (as MinMax's own reductions): the extremes follow from
    // them, and so do the rows holding a value past the threshold, which Compress copies out whole. A held
    // tensor on its last axis is compared in channel units (each channel times 1 / its magnitude): its rows'
    // extremes are of that product, its own extremes come from its columns'.
    const compared = l?.axis === 'last' ? `quantlens_s_units_${i}` : rows;
    if (l?.axis === 'last') nodes.push(node('Mul', compared, [rows, `quantlens_s_inv_${i}`]));
    nodes.push(axesOf('ReduceMax', hi, compared, [1], 0), axesOf('ReduceMin', lo, compared, [1], 0));
    const cols = l?.axis === 'last' ? [`quantlens_s_cmin_${i}`, `quantlens_s_cmax_${i}`] : [];
    if (l?.axis === 'last') nodes.push(axesOf('ReduceMin', cols[0], rows, [0], 0), axesOf('ReduceMax', cols[1], rows, [0], 0));
    // A row passes when its max is above the threshold or its min below minus it (|x| > threshold).
    const [over, under] = l?.axis === 1 ? [`quantlens_s_rowover_${i}`, `quantlens_s_rowunder_${i}`] : [`quantlens_s_ov_${i}`, `quantlens_s_un_${i}`];
    if (l?.axis === 1) nodes.push(node('Neg', under, [over]));
    nodes.push(
      node('Greater', `quantlens_s_gt_${i}`, [hi, over]),
      node('Less', `quantlens_s_lt_${i}`, [lo, under]),
      node('Or', `quantlens_s_past_${i}`, [`quantlens_s_gt_${i}`, `quantlens_s_lt_${i}`]),
      node('Compress', `quantlens_s_tailrows_${i}`, [rows, `quantlens_s_past_${i}`], [intAttr('axis', 0)]),
      node('Reshape', `quantlens_s_tail_${i}`, [`quantlens_s_tailrows_${i}`, 'quantlens_s_flat']),
      node('Shape', `quantlens_s_dims_${i}`, [rows]),
      asFloat(`quantlens_s_dimsf_${i}`, `quantlens_s_dims_${i}`),
    );
    // Axis 1: the shape says which channel each row lies in.
    if (l?.axis === 1) nodes.push(node('Shape', `quantlens_s_shape_${i}`, [t]), asFloat(`quantlens_s_shapef_${i}`, `quantlens_s_shape_${i}`));
    values.push(`quantlens_s_dimsf_${i}`, ...(l?.axis === 1 ? [`quantlens_s_shapef_${i}`] : []), hi, lo, ...cols, pick, `quantlens_s_tail_${i}`);
    return { tensor: t, nodes };
  });
  // One Split per threshold vector hands each tensor its own (before the statistics that read them).
  const split = (input: string, kind: string): NodeProto[] => {
    if (!thresholded.length) return [];
    const outputs = thresholded.map((k) => `quantlens_s_${kind}_${k}`);
    const sizes = thresholded.map(() => 1);
    if (opset < 13) return [{ op_type: 'Split', name: `quantlens_split_${kind}`, input: [input], output: outputs, attribute: [intAttr('axis', 0), intsAttr('split', sizes)] }];
    extra.push(int64Tensor(`quantlens_s_split_${kind}`, sizes));
    return [{ op_type: 'Split', name: `quantlens_split_${kind}`, input: [input, `quantlens_s_split_${kind}`], output: outputs, attribute: [intAttr('axis', 0)] }];
  };
  const splits = [...split('quantlens_s_overs', 'ov'), ...split('quantlens_s_unders', 'un')];
  const g = withReductions(model, placements, extra).graph!;
  const vector = (name: string, elem: number, n: number) => onnx.ValueInfoProto.create({ name, type: { tensor_type: { elem_type: elem, shape: { dim: [{ dim_value: n }] } } } });
  const concat = (out: string, input: string[]): NodeProto => ({ op_type: 'Concat', name: out, input, output: [out], attribute: [intAttr('axis', 0)] });
  const fetch = ['quantlens_s_values'];
  // Held tensors' thresholds: each row's (axis 1: one vector as long as the tensor has rows), or each channel's 1 / magnitude (last axis).
  const rowsVector = (name: string) => onnx.ValueInfoProto.create({ name, type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: [{ dim_param: `${name}_rows` }] } } } });
  const held = names.flatMap((_, i) => (whole(i) ? [] : layouts[i]?.axis === 1 ? [rowsVector(`quantlens_s_rowover_${i}`)] : layouts[i] ? [vector(`quantlens_s_inv_${i}`, DataType.FLOAT, layouts[i]!.channels)] : []));
  const inputs = [...(thresholded.length ? [vector('quantlens_s_overs', DataType.FLOAT, thresholded.length), vector('quantlens_s_unders', DataType.FLOAT, thresholded.length)] : []), ...held];
  // The values vector is gathered last: the walk takes it first (see statisticsInGraphOrder), so each
  // tensor's statistics run as the graph makes it.
  const nodes = [...splits, ...statisticsInGraphOrder(g.node ?? []), concat('quantlens_s_values', values)];
  const built = onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...g, node: nodes, input: [...(g.input ?? []), ...inputs], output: [...(g.output ?? []), ...fetch.map((name) => ({ name }))] }) });
  const float = (xs: number[]) => new ort.Tensor('float32', Float32Array.from(xs), [xs.length]);
  return {
    model: built, fetch,
    feeds: (p) => ({
      ...(thresholded.length ? { quantlens_s_overs: float(thresholded.map((k) => p[k].over)), quantlens_s_unders: float(thresholded.map((k) => -Math.fround(p[k].over))) } : {}),
      ...Object.fromEntries(p.flatMap((x, i) => (whole(i) ? [] : x.rowOver ? [[`quantlens_s_rowover_${i}`, new ort.Tensor('float32', x.rowOver, [x.rowOver.length])]] : x.inv ? [[`quantlens_s_inv_${i}`, new ort.Tensor('float32', x.inv, [x.inv.length])]] : []))),
    }),
    // Per tensor: its size and every value (copied whole), or its rows and row length, (axis-1 layout) its
    // shape, its rows' maxima and minima, (last-axis layout) its columns' minima and maxima, its picks and
    // its tail rows.
    read: (out, p) => {
      const v = out.quantlens_s_values.data as Float32Array;
      let at = 0;
      const reads = names.map((_, k): Read => {
        if (whole(k)) {
          const size = v[at], all = v.subarray(at + 1, at + 1 + size);
          at += 1 + size;
          let min = Infinity, max = -Infinity;
          for (let j = 0; j < all.length; j++) { const x = all[j]; if (x < min) min = x; if (x > max) max = x; }
          return { min, max, size, pick: all, tail: all.subarray(0, 0), copied: 0, shape: undefined, rows: undefined, cols: undefined };
        }
        const nRows = v[at], w = v[at + 1], size = nRows * w, l = layouts[k];
        at += 2;
        let shape: number[] | undefined;
        if (l?.axis === 1) { shape = Array.from(v.subarray(at, at + l.rank)); at += l.rank; }
        const hi = v.subarray(at, at + nRows), lo = v.subarray(at + nRows, at + 2 * nRows);
        at += 2 * nRows;
        let cols: Read['cols'];
        if (l?.axis === 'last') { cols = { min: v.subarray(at, at + w), max: v.subarray(at + w, at + 2 * w) }; at += 2 * w; }
        const n = Math.ceil(size / specs[k].step), pick = v.subarray(at, at + n);
        at += n;
        // The rows onnxruntime copied: those whose extremes passed the threshold, compared as it did (float32).
        const over = Math.fround(p[k].over), rowOver = p[k].rowOver;
        let copiedRows = 0, min = Infinity, max = -Infinity;
        for (let j = 0; j < nRows; j++) {
          const t = rowOver ? rowOver[rowOver.length === 1 ? 0 : j] : over;
          if (hi[j] > t || lo[j] < -t) copiedRows++;
          if (lo[j] < min) min = lo[j];
          if (hi[j] > max) max = hi[j];
        }
        const rowsCopied = v.subarray(at, at + copiedRows * w);
        at += copiedRows * w;
        if (cols) {
          // (The rows are in channel units: the extremes are the columns'.)
          min = Infinity; max = -Infinity;
          for (let j = 0; j < w; j++) { if (cols.min[j] < min) min = cols.min[j]; if (cols.max[j] > max) max = cols.max[j]; }
        }
        // A tensor with a layout keeps its copied rows whole (channelParts needs their positions).
        return { min, max, size, pick, tail: l ? rowsCopied : past(rowsCopied, p[k].over), copied: rowsCopied.length, shape, rows: l ? { hi, lo } : undefined, cols };
      });
      // Lengths read from a layout the tensor does not have would not add up.
      if (at !== v.length) throw new Error('the packed statistics do not have the lengths the tensors\' dimensions imply');
      return reads;
    },
  };
}

/**
 * The next sample's tail threshold (the stride stays), moved by at most ×1.5 or ÷1.5 a sample toward
 * `target` values copied. Any threshold keeps the estimate unbiased; it only sets how much is copied exactly.
 */
function nextPlan(used: { step: number; over: number }, copied: number, target: number): { step: number; over: number } {
  if (!Number.isFinite(used.over)) return used;
  const ratio = Math.min(1.5, Math.max(1 / 1.5, ((copied + 1) / target) ** 0.25));
  return { step: used.step, over: Math.fround(used.over * ratio) }; // as onnxruntime compares it
}

/**
 * The values of the copied rows whose magnitude passes the threshold, in order (the rest of each row is the
 * picks' to count), compacted in place: the rows are this sample's own, read out of its run, and a fresh
 * array per tensor was 1.5-5.2 MB a sample on PaddleOCR det 320x640 (random inputs), every page of it
 * faulted in anew (about 3 ms a MB on this machine).
 */
function past(rows: Float32Array, over: number): Float32Array {
  let n = 0;
  for (let j = 0; j < rows.length; j++) if (Math.abs(rows[j]) > over) rows[n++] = rows[j];
  return rows.subarray(0, n);
}

/**
 * The picks whose magnitude is within the threshold (each standing for size/picks elements) and the exact
 * tail. The picks are compacted in place (they are this sample's own, read out of its run): a copy per
 * tensor made about 8 MB of garbage a sample on PaddleOCR det 320x640 (16 K picks for each of 122 tensors).
 */
export function split(picks: Float32Array, tail: Float32Array, size: number, over: number): SampledTensor['parts'] {
  const weight = size / Math.max(1, picks.length);
  if (!Number.isFinite(over)) return [{ values: picks, weight }];
  let n = 0;
  for (let j = 0; j < picks.length; j++) if (Math.abs(picks[j]) <= over) picks[n++] = picks[j];
  return [{ values: picks.subarray(0, n), weight }, { values: tail, weight: 1 }];
}

/**
 * A sample of a tensor with a channel layout: the picks within the thresholds and the tail values, each with
 * its channel (from its position: the picks are every step-th element, the tail the rows whose extremes
 * passed the threshold, as onnxruntime compared them), and the channels' extremes (axis 1: from the rows',
 * each row lying in one channel; last axis: the columns'). Undefined when the shape does not have the
 * layout's channels.
 */
export function channelParts(l: ChannelLayout, t: Read, plan: Plan, extremes = channelExtremes(l, t)): Pick<SampledTensor, 'parts' | 'perChannel' | 'isTail'> | undefined {
  const C = l.channels, shape = t.shape;
  const inner = rowLayout(l, t)?.inner;
  if (!t.rows || inner === undefined || !extremes) return undefined;
  const w = shape ? shape[shape.length - 1] || 1 : C;
  // Whether element i (value v) is past its threshold, as onnxruntime compared it (float32 throughout);
  // for the caller (the loops below write it out).
  const rowOver = plan.rowOver, inv = plan.inv, q = plan.over;
  const past = rowOver
    ? (v: number, i: number) => Math.abs(v) > rowOver[rowOver.length === 1 ? 0 : Math.floor(i / w)]
    : (v: number, i: number) => Math.fround(Math.abs(v) * inv![i % C]) > q;
  const Ch = C <= 65536 ? Uint16Array : Uint32Array;
  const pick = t.pick!, rowsCopied = t.tail!, step = plan.step, one = rowOver?.length === 1;
  // Every pick in place (its channel follows from its index), NaN where the tail counts it instead. The
  // loops below are `past` written out for each layout (a call per element doubled this pass's JS time).
  const bulk = new Float32Array(pick.length);
  // Pick j is element j·step: its row and column (or channel) are stepped, not divided (a third of this
  // loop's time went to the division and remainder).
  if (rowOver) {
    const dr = Math.floor(step / w), dc = step % w;
    for (let j = 0, r = 0, c = 0; j < pick.length; j++) {
      const v = pick[j];
      bulk[j] = Math.abs(v) > rowOver[one ? 0 : r] ? NaN : v;
      r += dr; c += dc;
      if (c >= w) { c -= w; r++; }
    }
  } else {
    const dc = step % C;
    for (let j = 0, c = 0; j < pick.length; j++) {
      const v = pick[j];
      bulk[j] = Math.fround(Math.abs(v) * inv![c]) > q ? NaN : v;
      c += dc;
      if (c >= C) c -= C;
    }
  }
  // The tail is compacted in place, as `past` does (the rows are this sample's own; the holder copies what it keeps).
  const tailCh = new Ch(rowsCopied.length);
  const { hi, lo } = t.rows;
  let m = 0, at = 0;
  for (let r = 0; r < hi.length && at < rowsCopied.length; r++) {
    const over = rowOver ? rowOver[one ? 0 : r] : q;
    if (!(Math.max(hi[r], -lo[r]) > over)) continue;
    if (rowOver) {
      const c = Math.floor((r * w) / inner) % C;
      for (let j = 0; j < w; j++, at++) if (Math.abs(rowsCopied[at]) > over) { rowsCopied[m] = rowsCopied[at]; tailCh[m++] = c; }
    } else for (let j = 0; j < w; j++, at++) if (Math.fround(Math.abs(rowsCopied[at]) * inv![j]) > q) { rowsCopied[m] = rowsCopied[at]; tailCh[m++] = j; }
  }
  if (at !== rowsCopied.length) return undefined; // not the rows onnxruntime copied
  const weight = t.size / Math.max(1, pick.length);
  return { parts: [{ values: bulk, weight, channel: { step, inner, channels: C } }, { values: rowsCopied.subarray(0, m), weight: 1, channel: tailCh.subarray(0, m) }], perChannel: extremes, isTail: past };
}

/** Where a held tensor's channels lie in its rows: elements per channel run (undefined when the shape does not have the layout's channels). */
function rowLayout(l: ChannelLayout, t: Read): { inner: number; w: number } | undefined {
  // (A last-axis layout fetches no shape: its rows are of C values.)
  const inner = t.shape ? channelInner(l, t.shape) : l.axis === 'last' && t.size % l.channels === 0 ? 1 : undefined;
  return inner === undefined ? undefined : { inner, w: t.shape ? t.shape[t.shape.length - 1] || 1 : l.channels };
}

/** A held tensor's channel extremes in one sample (axis 1: from its rows', each row lying in one channel; last axis: its columns'). */
export function channelExtremes(l: ChannelLayout, t: Read): { min: Float32Array; max: Float32Array } | undefined {
  const r = rowLayout(l, t);
  if (!t.rows || !r) return undefined;
  const C = l.channels, { hi, lo } = t.rows;
  const min = new Float32Array(C).fill(Infinity), max = new Float32Array(C).fill(-Infinity);
  if (t.cols) { min.set(t.cols.min); max.set(t.cols.max); }
  else for (let k = 0; k < hi.length; k++) { const c = Math.floor((k * r.w) / r.inner) % C; if (lo[k] < min[c]) min[c] = lo[k]; if (hi[k] > max[c]) max[c] = hi[k]; }
  return { min, max };
}
