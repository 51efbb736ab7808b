import * as ort from 'onnxruntime-node';
import type { CalibrationData } from '../calib/data';
import { CancelledError } from '../base/errors';
import type { JobContext } from '../base/jobs';
import { DataType } from '../onnx/dtypes';
import type { LoadedModel } from '../onnx/model-io';
import { onnx, type ModelProto, type NodeProto, type TensorProto } from '../onnx/proto';
import { int64Tensor } from '../onnx/tensor';
import { intAttr } from '../onnx/attributes';
import { defaultOpset, axesNode, statisticsInGraphOrder, tensorSizes, withReductions } from './capture';
import { pinnedVariantSession, type PinnedSession } from './pinned-session';
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
 * beside each tensor's producer, its exact extremes (from each row's), its size, a Slice of the flattened
 * tensor whose step is a graph input (about `cap` values per sample), and Compress of every row (along
 * the last axis) holding a value whose magnitude passes a threshold, also an input; the values past it
 * are picked out of those rows here. Clipping is decided in the tails, where a stride would
 * catch a handful of values each standing for hundreds: they come out exactly, and the picks count only
 * between them. Strides are primes chosen from the size each tensor had in the previous sample;
 * thresholds follow the values the rows copied, aiming at about cap/8 per sample (the first sample is run
 * once more beforehand, with a coarse stride, to learn sizes and ranges). 'small' when every tensor fits
 * the cap, undefined when onnxruntime refuses the variant (an opset below 10 has no Slice steps; a type
 * ReduceMin lacks): either way the caller copies the tensors instead.
 */
export async function captureSampled(
  loaded: LoadedModel, names: string[], data: CalibrationData, device: DevicePreference, cap: number,
  onTensor: (name: string, t: SampledTensor) => void, ctx: JobContext = {}, layouts: Array<ChannelLayout | undefined> = [],
): Promise<{ provider: Provider; fallbackReason?: string; samples: number; seconds: number } | 'small' | undefined> {
  const opset = defaultOpset(loaded.model);
  if (opset < 10 || !names.length) return undefined;
  const t0 = performance.now();
  const samples = data.samples()[Symbol.iterator]();
  let next = samples.next();
  if (next.done) return undefined;
  // Every tensor within the cap (the shapes onnxruntime infers for the first sample's): the picks would be
  // every value, at the cost of this variant's extra nodes on every run, so the caller copies them out
  // plainly, and no variant is set up for nothing (the fixtures: 60 and 200 ms of a calibration of 0.2 and
  // 0.46 s; PaddleOCR det 320x640 pays 11-19 ms for the question, scratch).
  const sizes = await tensorSizes(loaded, names, next.value, device).catch(() => undefined);
  if (sizes?.every((n) => n !== undefined && n <= cap)) return 'small';
  let io: SampledIO | undefined;
  let s: PinnedSession | undefined;
  // Packed first (six outputs whatever the tensor count); tensors of mixed types cannot be concatenated,
  // and onnxruntime then refuses it: one output per value instead.
  // Channels come out in the packed vectors only: without them the caller measures in two passes.
  const withChannels = layouts.some((l) => l);
  for (const packed of withChannels ? [true] : [true, false]) {
    io = sampledVariant(loaded.model, names, packed, layouts);
    try {
      // No planned memory pattern: the row extremes and copies beside each tensor would make onnxruntime
      // plan, and fault in on the second run, a block far above what is live at once (PaddleOCR det
      // 320x640, 16 samples, percentile: the quantize command's peak 470-473 MiB planned, 352-356 unplanned; the
      // capture 2.55 s, 2.28 s). Without any arena the peak is lower (325-328 MiB), but where page faults are
      // dear every run pays them (3.0 s).
      s = await pinnedVariantSession(io.model, loaded, device, next.value, 'all', { noMemPattern: true });
      break;
    } catch (e) { if (process.env.QUANTLENS_DEBUG) console.error(`captureSampled ${packed ? 'packed' : 'unpacked'}: ${String(e)}`); }
  }
  if (!s || !io) return undefined;
  const target = Math.max(16, Math.ceil(cap / 8));
  // Held tensors (see ChannelLayout) keep their picks until the pass ends: as many as the others while
  // they fit in HELD_VALUES (fewer picks moved PaddleOCR rec's clips enough to cost real lines).
  const heldCount = layouts.filter((l) => l).length;
  const capOf = (k: number) => (layouts[k] ? Math.max(256, Math.min(cap, Math.floor(HELD_VALUES / (heldCount * Math.max(1, data.count))))) : cap);
  // Each held tensor's channel magnitudes so far, which its thresholds follow.
  const magnitudes: Array<Float64Array | undefined> = layouts.map((l) => l && new Float64Array(l.channels));
  try {
    let plans: Plan[] | undefined;
    let i = 0;
    for (; !next.done; next = samples.next()) {
      const feeds = next.value;
      if (ctx.signal?.aborted) throw new CancelledError();
      const run = async (p: Plan[]) => io!.read(await s!.run({ ...feeds, ...io!.feeds(p) }, io!.fetch), p);
      const follow = (t: Read, k: number, p: Plan) => {
        const l = layouts[k];
        if (!l) return undefined;
        const c = channelParts(l, t, p);
        if (!c) throw new Error(`'${names[k]}' does not have ${l.channels} channels on its ${l.axis === 1 ? 'second' : 'last'} axis`);
        const m = magnitudes[k]!;
        for (let ch = 0; ch < l.channels; ch++) m[ch] = Math.max(m[ch], Math.abs(c.perChannel!.min[ch]), Math.abs(c.perChannel!.max[ch]));
        return c;
      };
      // The first sample runs once more, coarsely, to learn each tensor's size and range.
      if (!plans) {
        const first = names.map((_, k) => openPlan(layouts[k]));
        const probe = await run(first);
        probe.forEach((t, k) => { if (t.pick && t.tail) follow(t, k, first[k]); });
        plans = probe.map((t, k) => {
          const step = sampleStride(t.size, t.size / capOf(k));
          // Near the extreme: a row is copied whole for one value past it, so half the extreme copied 3.9 M
          // of det 320x640's 31.6 M values in the first sample (peak memory 328 -> 309 MiB at 0.9); the
          // threshold comes down from there as the copies stay small. A held tensor's is relative: 0.9 of
          // each channel's own extreme.
          const l = layouts[k];
          if (step === 1) return openPlan(l, step);
          return l ? relativePlan(l, step, 0.9, magnitudes[k]!, t) : { step, over: Math.fround(Math.max(Math.abs(t.min), Math.abs(t.max)) * 0.9) };
        });
        // Within the cap after all, where the shapes could not say so beforehand (see above).
        if (plans.every((p) => p.step === 1)) return 'small';
      }
      const used = plans;
      const got = await run(used);
      const held = got.map((t, k) => (t.pick && t.tail ? follow(t, k, used[k]) : undefined));
      plans = got.map((t, k) => {
        const l = layouts[k], p = nextPlan(used[k], t.size, capOf(k), t.copied, target);
        return !l ? p : p.step === 1 ? openPlan(l, p.step) : relativePlan(l, p.step, Number.isFinite(used[k].over) ? p.over : 0.9, magnitudes[k]!, t);
      });
      got.forEach((t, k) => {
        if (!t.pick || !t.tail) return; // only float activations are calibrated
        const base = { min: t.min, max: t.max, size: t.size, step: used[k].step, over: used[k].over };
        onTensor(names[k], held[k] ? { ...base, ...held[k]! } : { ...base, parts: split(t.pick, t.tail, t.size, used[k].over) });
      });
      i++;
      ctx.onProgress?.({ stage: 'calibration', fraction: i / data.count, message: `sample ${i}/${data.count}` });
    }
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
/** One tensor's share of a run: its extremes and size, and (float tensors only) its picks and tail. */
type Read = {
  min: number; max: number; size: number; pick?: Float32Array; tail?: Float32Array; copied: number;
  /** With a ChannelLayout: the tensor's shape, its rows' extremes (the tail rows are those past the threshold), and for a last-axis layout its columns' extremes. */
  shape?: number[]; rows?: { hi: Float32Array; lo: Float32Array }; cols?: { min: Float32Array; max: Float32Array };
};
export interface SampledIO { model: ModelProto; fetch: string[]; feeds: (p: Plan[]) => Record<string, ort.Tensor>; read: (out: Record<string, ort.Tensor>, p: Plan[]) => Read[] }

/**
 * The capture variant: beside each tensor's producer, its flattened copy's extremes, size, strided picks
 * and the values past the threshold. Packed, the strides and thresholds come in as two vectors and
 * everything goes out as two (the sizes and tail lengths; each tensor's extremes, picks and tail values),
 * because onnxruntime-node's cost per input and output tensor outweighs the work on a small model
 * (transformer fixture: 7 tensors per calibrated tensor per run); unpacked, each is its own input and output.
 */
export function sampledVariant(model: ModelProto, names: string[], packed: boolean, layouts: Array<ChannelLayout | undefined> = []): SampledIO {
  const extra: TensorProto[] = [int64Tensor('quantlens_s_flat', [-1]), int64Tensor('quantlens_s_zero', [0])];
  const node = (op: string, name: string, input: string[], attribute: NodeProto['attribute'] = []): NodeProto => ({ op_type: op, name, input, output: [name], attribute });
  const stepOf = (i: number) => (packed ? `quantlens_s_st_${i}` : `quantlens_s_step_${i}`), overOf = (i: number) => (packed ? `quantlens_s_ov_${i}` : `quantlens_s_over_${i}`);
  const opset = defaultOpset(model);
  const axesOf = (op: string, name: string, input: string, axes: number[], keepdims: number) => axesNode(opset, extra, op, name, input, axes, keepdims);
  const placements = names.map((t, i) => {
    const flat = `quantlens_s_1d_${i}`, rows = `quantlens_s_rows_${i}`, hi = `quantlens_s_rowhi_${i}`, lo = `quantlens_s_rowlo_${i}`;
    // Rows along the last axis (a scalar is one row of one): views of the tensor, not copies.
    const nodes: NodeProto[] = [node('Reshape', flat, [t, 'quantlens_s_flat']), axesOf('Unsqueeze', `quantlens_s_1nd_${i}`, t, [0], 0), node('Flatten', rows, [`quantlens_s_1nd_${i}`], [intAttr('axis', -1)])];
    if (packed) {
      extra.push(int64Tensor(`quantlens_s_at_${i}`, [i]));
      nodes.push(node('Gather', stepOf(i), ['quantlens_s_steps', `quantlens_s_at_${i}`]), node('Gather', overOf(i), ['quantlens_s_overs', `quantlens_s_at_${i}`]));
    }
    // Each row's extremes are the tensor's one read (as MinMax's own reductions): the extremes follow from
    // them, and so do the rows holding a value past the threshold, which Compress copies out whole. An
    // elementwise |x| > threshold mask read and wrote the whole tensor three more times (PaddleOCR det
    // 320x640: this pass took 2.99x an inference with it, 2.14x without). A tensor of one long row (a
    // waveform) is copied whole whenever it holds a tail value: the threshold then rises past its extreme.
    // A held tensor on its last axis is compared in channel units (each channel times 1 / its magnitude):
    // its rows' extremes are of that product, its own extremes come from its columns'.
    const l = packed ? layouts[i] : undefined;
    const compared = l?.axis === 'last' ? `quantlens_s_units_${i}` : rows;
    if (l?.axis === 'last') nodes.push(node('Mul', compared, [rows, `quantlens_s_inv_${i}`]), axesOf('ReduceMin', `quantlens_s_cmin_${i}`, rows, [0], 0), axesOf('ReduceMax', `quantlens_s_cmax_${i}`, rows, [0], 0));
    const [lowest, highest] = l?.axis === 'last' ? [`quantlens_s_cmin_${i}`, `quantlens_s_cmax_${i}`] : [lo, hi];
    nodes.push(
      axesOf('ReduceMax', hi, compared, [1], 0),
      axesOf('ReduceMin', lo, compared, [1], 0),
      axesOf('ReduceMin', `quantlens_s_min_${i}`, lowest, [0], packed ? 1 : 0),
      axesOf('ReduceMax', `quantlens_s_max_${i}`, highest, [0], packed ? 1 : 0),
      // Shape of a 1-D tensor: its size as a [1] vector, ready to concatenate.
      node('Shape', `quantlens_s_size_${i}`, [flat]),
      // Up to its size (the end of it): the Shape is then in the values' walk, not left to hold the tensor.
      node('Slice', `quantlens_s_pick_${i}`, [flat, 'quantlens_s_zero', `quantlens_s_size_${i}`, 'quantlens_s_zero', stepOf(i)]),
      // A row passes when max(its max, −its min) does: any element type compares as float (onnxruntime drops
      // a float-to-float Cast).
      node('Cast', `quantlens_s_hif_${i}`, [hi], [intAttr('to', DataType.FLOAT)]),
      node('Cast', `quantlens_s_lof_${i}`, [lo], [intAttr('to', DataType.FLOAT)]),
      node('Neg', `quantlens_s_neglo_${i}`, [`quantlens_s_lof_${i}`]),
      node('Max', `quantlens_s_absrow_${i}`, [`quantlens_s_hif_${i}`, `quantlens_s_neglo_${i}`]),
      node('Greater', `quantlens_s_past_${i}`, [`quantlens_s_absrow_${i}`, l?.axis === 1 ? `quantlens_s_rowover_${i}` : overOf(i)]),
      node('Compress', `quantlens_s_tailrows_${i}`, [rows, `quantlens_s_past_${i}`], [intAttr('axis', 0)]),
      node('Reshape', `quantlens_s_tail_${i}`, [`quantlens_s_tailrows_${i}`, 'quantlens_s_flat']),
      node('Shape', `quantlens_s_tailn_${i}`, [`quantlens_s_tail_${i}`]),
    );
    // Axis 1: the shape says which channel each row lies in.
    if (l?.axis === 1) nodes.push(node('Shape', `quantlens_s_shape_${i}`, [t]));
    return { tensor: t, nodes };
  });
  const g = withReductions(model, placements, extra).graph!;
  const vector = (name: string, elem: number, n: number) => onnx.ValueInfoProto.create({ name, type: { tensor_type: { elem_type: elem, shape: { dim: [{ dim_value: n }] } } } });
  const concat = (out: string, input: string[]): NodeProto => ({ op_type: 'Concat', name: out, input, output: [out], attribute: [intAttr('axis', 0)] });
  const each = (kind: string) => names.map((_, i) => `quantlens_s_${kind}_${i}`);
  const fetch = packed ? ['quantlens_s_counts', 'quantlens_s_values'] : names.flatMap((_, i) => ['min', 'max', 'size', 'pick', 'tail'].map((k) => `quantlens_s_${k}_${i}`));
  const rowsVector = (name: string) => onnx.ValueInfoProto.create({ name, type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: [{ dim_param: `${name}_rows` }] } } } });
  // Held tensors' thresholds: each row's (axis 1), or each channel's 1 / magnitude (last axis).
  const held = packed ? names.flatMap((_, i) => (layouts[i]?.axis === 1 ? [rowsVector(`quantlens_s_rowover_${i}`)] : layouts[i] ? [vector(`quantlens_s_inv_${i}`, DataType.FLOAT, layouts[i]!.channels)] : [])) : [];
  const inputs = packed ? [vector('quantlens_s_steps', DataType.INT64, names.length), vector('quantlens_s_overs', DataType.FLOAT, names.length), ...held] : names.flatMap((_, i) => [vector(stepOf(i), DataType.INT64, 1), vector(overOf(i), DataType.FLOAT, 1)]);
  // The values vector is gathered last: the walk takes it first (see statisticsInGraphOrder), and each
  // tensor's size and tail length, read while it ran, wait in the counts.
  const values = names.flatMap((_, i) => ['min', 'max', 'pick', 'tail', ...(!layouts[i] ? [] : layouts[i]!.axis === 'last' ? ['rowhi', 'rowlo', 'cmin', 'cmax'] : ['rowhi', 'rowlo'])].map((k) => `quantlens_s_${k}_${i}`));
  const shapes = names.flatMap((_, i) => (layouts[i]?.axis === 1 ? [`quantlens_s_shape_${i}`] : []));
  const gathered = packed ? [concat('quantlens_s_counts', [...each('size'), ...each('tailn'), ...shapes]), concat('quantlens_s_values', values)] : [];
  const nodes = [...statisticsInGraphOrder(g.node ?? []), ...gathered];
  const built = onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...g, node: nodes, input: [...(g.input ?? []), ...inputs], output: [...(g.output ?? []), ...fetch.map((name) => ({ name }))] }) });
  const int64 = (xs: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs.map((x) => BigInt(x))), [xs.length]);
  const float = (xs: number[]) => new ort.Tensor('float32', Float32Array.from(xs), [xs.length]);
  if (packed) {
    return {
      model: built, fetch,
      feeds: (p) => ({
        quantlens_s_steps: int64(p.map((x) => x.step)), quantlens_s_overs: float(p.map((x) => x.over)),
        ...Object.fromEntries(p.flatMap((x, i) => (x.rowOver ? [[`quantlens_s_rowover_${i}`, new ort.Tensor('float32', x.rowOver, [x.rowOver.length])]] : x.inv ? [[`quantlens_s_inv_${i}`, new ort.Tensor('float32', x.inv, [x.inv.length])]] : []))),
      }),
      // counts: every size, every tail's length, then the shapes of the tensors with an axis-1 layout;
      // values: per tensor [min, max, picks, tail], and with a layout its rows' maxima and minima (and for
      // the last axis its columns' minima and maxima).
      read: (out, p) => {
        const counts = out.quantlens_s_counts.data, values = out.quantlens_s_values;
        const isFloat = values.type === 'float32';
        let at = 0, shapeAt = 2 * names.length;
        const reads = names.map((_, k) => {
          const size = Number(counts[k]), n = Math.ceil(size / p[k].step), m = Number(counts[names.length + k]);
          const r: Read = { min: Number(values.data[at]), max: Number(values.data[at + 1]), size, copied: m };
          const v = values.data as Float32Array;
          const l = layouts[k];
          // A tensor with a layout keeps its copied rows whole (channelParts needs their positions).
          if (isFloat) { r.pick = v.subarray(at + 2, at + 2 + n); r.tail = l ? v.subarray(at + 2 + n, at + 2 + n + m) : past(v.subarray(at + 2 + n, at + 2 + n + m), p[k].over); }
          at += 2 + n + m;
          if (!l) return r;
          // Axis 1: the shape says where the channels are; last axis: rows of the channels.
          if (l.axis === 1) { r.shape = Array.from({ length: l.rank }, (_, d) => Number(counts[shapeAt + d])); shapeAt += l.rank; }
          const w = r.shape ? r.shape[l.rank - 1] || 1 : l.channels, rows = Math.floor(size / w);
          r.rows = { hi: v.subarray(at, at + rows), lo: v.subarray(at + rows, at + 2 * rows) };
          at += 2 * rows;
          if (l.axis === 'last') { r.cols = { min: v.subarray(at, at + w), max: v.subarray(at + w, at + 2 * w) }; at += 2 * w; }
          return r;
        });
        // Lengths read from a layout the tensor does not have would not add up.
        if (layouts.length && (at !== values.data.length || shapeAt !== counts.length)) throw new Error('the packed statistics do not have the lengths the channel layouts imply');
        return reads;
      },
    };
  }
  return {
    model: built, fetch,
    feeds: (p) => Object.fromEntries(p.flatMap((x, k) => [[stepOf(k), int64([x.step])], [overOf(k), float([x.over])]])),
    read: (out, p) => names.map((_, k) => {
      const [lo, hi, size, pick, tail] = ['min', 'max', 'size', 'pick', 'tail'].map((x) => out[`quantlens_s_${x}_${k}`]);
      const r: Read = { min: Number(lo.data[0]), max: Number(hi.data[0]), size: Number(size.data[0]), copied: tail.data.length };
      if (lo.type === 'float32' && pick.type === 'float32') { r.pick = pick.data as Float32Array; r.tail = past(tail.data as Float32Array, p[k].over); }
      return r;
    }),
  };
}

/**
 * The next sample's stride (from this one's size: samples of one model rarely change shape) and tail
 * threshold, moved by at most ×1.5 or ÷1.5 a sample toward `target` values copied. Any threshold keeps the
 * estimate unbiased; it only sets how much is copied exactly.
 */
function nextPlan(used: { step: number; over: number }, size: number, cap: number, copied: number, target: number): { step: number; over: number } {
  const step = sampleStride(size, size / cap);
  if (step === 1) return { step, over: Infinity };
  if (!Number.isFinite(used.over)) return { step, over: used.over };
  const ratio = Math.min(1.5, Math.max(1 / 1.5, ((copied + 1) / target) ** 0.25));
  return { step, over: Math.fround(used.over * ratio) }; // as onnxruntime compares it
}

/** The values of the copied rows whose magnitude passes the threshold, in order (the rest of each row is the picks' to count). */
function past(rows: Float32Array, over: number): Float32Array {
  const out = new Float32Array(rows.length);
  let n = 0;
  for (let j = 0; j < rows.length; j++) if (Math.abs(rows[j]) > over) out[n++] = rows[j];
  return out.subarray(0, n);
}

/** The picks whose magnitude is within the threshold (each standing for size/picks elements) and the exact tail. */
export function split(picks: Float32Array, tail: Float32Array, size: number, over: number): SampledTensor['parts'] {
  const weight = size / Math.max(1, picks.length);
  if (!Number.isFinite(over)) return [{ values: picks, weight }];
  const bulk = new Float32Array(picks.length);
  let n = 0;
  for (let j = 0; j < picks.length; j++) if (Math.abs(picks[j]) <= over) bulk[n++] = picks[j];
  return [{ values: bulk.subarray(0, n), weight }, { values: tail, weight: 1 }];
}

/**
 * A sample of a tensor with a channel layout: the picks within the thresholds and the tail values, each with
 * its channel (from its position: the picks are every step-th element, the tail the rows whose extremes
 * passed the threshold, as onnxruntime compared them), and the channels' extremes (axis 1: from the rows',
 * each row lying in one channel; last axis: the columns'). Undefined when the shape does not have the
 * layout's channels.
 */
export function channelParts(l: ChannelLayout, t: Read, plan: Plan): Pick<SampledTensor, 'parts' | 'perChannel' | 'isTail'> | undefined {
  const C = l.channels, shape = t.shape;
  // (A last-axis layout fetches no shape: its rows are of C values.)
  const inner = shape ? channelInner(l, shape) : l.axis === 'last' && t.size % C === 0 ? 1 : undefined;
  if (!t.rows || inner === undefined) return undefined;
  const w = shape ? shape[shape.length - 1] || 1 : C;
  const channelAt = (i: number) => Math.floor(i / inner) % C;
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
  if (rowOver) for (let j = 0, i = 0; j < pick.length; j++, i += step) { const v = pick[j]; bulk[j] = Math.abs(v) > rowOver[one ? 0 : Math.floor(i / w)] ? NaN : v; }
  else for (let j = 0, i = 0; j < pick.length; j++, i += step) { const v = pick[j]; bulk[j] = Math.fround(Math.abs(v) * inv![i % C]) > q ? NaN : v; }
  const tail = new Float32Array(rowsCopied.length), tailCh = new Ch(rowsCopied.length);
  const { hi, lo } = t.rows;
  let m = 0, at = 0;
  for (let r = 0; r < hi.length && at < rowsCopied.length; r++) {
    const over = rowOver ? rowOver[one ? 0 : r] : q;
    if (!(Math.max(hi[r], -lo[r]) > over)) continue;
    if (rowOver) {
      const c = Math.floor((r * w) / inner) % C;
      for (let j = 0; j < w; j++, at++) if (Math.abs(rowsCopied[at]) > over) { tail[m] = rowsCopied[at]; tailCh[m++] = c; }
    } else for (let j = 0; j < w; j++, at++) if (Math.fround(Math.abs(rowsCopied[at]) * inv![j]) > q) { tail[m] = rowsCopied[at]; tailCh[m++] = j; }
  }
  if (at !== rowsCopied.length) return undefined; // not the rows onnxruntime copied
  const min = new Float32Array(C).fill(Infinity), max = new Float32Array(C).fill(-Infinity);
  if (t.cols) { min.set(t.cols.min); max.set(t.cols.max); }
  else for (let r = 0; r < hi.length; r++) { const c = channelAt(r * w); if (lo[r] < min[c]) min[c] = lo[r]; if (hi[r] > max[c]) max[c] = hi[r]; }
  const weight = t.size / Math.max(1, pick.length);
  return { parts: [{ values: bulk, weight, channel: { step, inner, channels: C } }, { values: tail.subarray(0, m), weight: 1, channel: tailCh.subarray(0, m) }], perChannel: { min, max }, isTail: past };
}
