import type * as ort from 'onnxruntime-node';
import type { CalibrationData } from '../calib/data';
import { CancelledError } from '../base/errors';
import type { JobContext } from '../base/jobs';
import type { LoadedModel } from '../onnx/model-io';
import { onnx, type ModelProto, type NodeProto, type TensorProto } from '../onnx/proto';
import { int64Tensor } from '../onnx/tensor';
import { sessionForVariant } from './stage-variant';
import { pinInputs, pinnedVariantSession } from './pinned-session';
import { runStacked, stackable } from './stacked-runs';
import { startSessionWorker, variantRunner, wantsWorker } from './threaded-session';
import { pipelineSamples } from './sample-pipeline';
import { runSegmented } from './segmented-run';
import { verifySegmentBytes } from './segments';
import { weightsAsInputs, withExtraOutputs } from './expose-outputs';
import type { DevicePreference, Provider, SessionOptions } from './session';
import { attrInts, attrString, intAttr, intsAttr } from '../onnx/attributes';
import { GraphView } from '../onnx/graph';
import { opsetImport } from '../onnx/editor';
import { monotoneMap } from '../calib/monotone';
import { walkNodes } from '../onnx/walk';

/**
 * Runs the model (or `model`, an edited copy of it) on every sample with `names` exposed as extra outputs
 * and hands each sample's tensors to `onSample` before the next runs, so nothing accumulates but what the
 * caller keeps. `holdAll`: the fetched values of every sample are small enough to hold at once (scalars,
 * or one sample). `stack`: the caller's statistics do not care which sample a value came from, so small
 * samples may run stacked (see runStacked); `onSample` then gets a stack's values and feeds at once, with
 * the index of its last sample.
 */
export async function captureTensors(
  loaded: LoadedModel, names: string[], data: CalibrationData, device: DevicePreference,
  onSample: (values: Record<string, ort.Tensor>, index: number, feeds: Record<string, ort.Tensor>) => void | Promise<void>, ctx: JobContext = {},
  model: ModelProto = loaded.model, opts: { holdAll?: boolean; optimization?: SessionOptions['optimization']; stack?: boolean } = {},
): Promise<{ provider: Provider; fallbackReason?: string; samples: number; seconds: number }> {
  const { holdAll = false, optimization = 'basic' } = opts;
  // Graph inputs cannot be fetched as outputs: callers read them from the feeds.
  const inputs = new Set((loaded.model.graph!.input ?? []).map((v) => v.name));
  const fetch = names.filter((n) => !inputs.has(n));
  const t0 = performance.now();
  // Values small enough to hold for every sample: a large external-data model runs a segment at a time for
  // all samples, and they are handed over after.
  if (holdAll && loaded.externalBytes > verifySegmentBytes()) {
    const samples = [...data.samples()];
    const r = await runSegmented({ ...loaded, model }, samples, { budgetBytes: verifySegmentBytes(), device, mappedWeights: true, latencyRuns: 0, fetch, stage: 'calibration' }, ctx)
      .catch((e) => { if (e instanceof CancelledError) throw e; return undefined; });
    if (r) {
      for (let i = 0; i < samples.length; i++) {
        await onSample(Object.fromEntries(fetch.map((n) => [n, r.outputs[i][n]])), i, samples[i]);
        ctx.onProgress?.({ stage: 'calibration', fraction: (i + 1) / samples.length, message: `sample ${i + 1}/${samples.length}` });
      }
      return { provider: r.provider, ...(r.fallbackReason ? { fallbackReason: r.fallbackReason } : {}), samples: samples.length, seconds: (performance.now() - t0) / 1000 };
    }
  }
  // Fetching intermediate values blocks most fusions anyway: basic optimisation loads faster (reductions
  // fetch only scalars and keep the conv layouts: callers ask for all).
  const samples = data.samples()[Symbol.iterator]();
  const next = samples.next();
  if (next.done) return { provider: 'cpu', samples: 0, seconds: (performance.now() - t0) / 1000 };
  // Unplanned memory (see SessionOptions.noMemPattern): PaddleOCR det 320x640's MinMax pass, 16 samples,
  // 2.03-2.46 s planned against 1.64-2.03 s, and the quantize command's peak 412 MiB against 287-289 MiB.
  // Run whole, a variant's statistics go in graph order (a segmented run needs them beside their producers).
  const variant = inGraphOrder(withExtraOutputs(model, fetch));
  // Scalars out (holdAll) of image-sized samples: onnxruntime runs in a worker while this thread makes the
  // next sample (see threadedVariantSession and wantsWorker).
  const worker = holdAll && wantsWorker(next.value, data.count) ? startSessionWorker(device, loaded.loc.file) : undefined;
  const stack = !worker && opts.stack && fetch.length > 0 && stackable(loaded.model.graph!, next.value, data.count);
  // Stacked, the pass runs a few times: the basic level's set-up costs more than it saves (MinMax, 64
  // samples, medians of 20, scratch: transformer fixture 26-28 -> 22-25 ms, tiny VLM 68-72 -> 65-66 ms).
  // A conv net's 'all' (its layouts) stays.
  const s = stack ? await pinnedVariantSession(variant, loaded, device, next.value, optimization === 'basic' ? 'disabled' : optimization, { noMemPattern: true }, true)
    : await variantRunner(worker, variant, loaded, device, next.value, optimization, { noMemPattern: true });
  try {
    const handle = async (out: Record<string, ort.Tensor>, feeds: Record<string, ort.Tensor>, k: number) => {
      await onSample(out, k, feeds);
      ctx.onProgress?.({ stage: 'calibration', fraction: (k + 1) / data.count, message: `sample ${k + 1}/${data.count}` });
    };
    const i = stack ? await runStacked(samples, next.value, s, fetch, ownOutputs(loaded.model, variant), handle, ctx.signal)
      : await pipelineSamples(samples, worker !== undefined, (feeds) => (fetch.length ? s.run(feeds, fetch) : Promise.resolve({})), handle, { signal: ctx.signal, first: next });
    return { provider: s.provider, ...(s.fallbackReason ? { fallbackReason: s.fallbackReason } : {}), samples: i, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await s.release();
  }
}

/** The model's own outputs the variant still has: what a stack is checked against (see runStacked). */
function ownOutputs(model: ModelProto, variant: ModelProto): string[] {
  const outputs = new Set((variant.graph!.output ?? []).map((o) => o.name));
  return (model.graph!.output ?? []).map((v) => v.name ?? '').filter((n) => n && outputs.has(n));
}

/**
 * onnxruntime's metadata (element type and inferred shape) of `names`, graph inputs or values inside the
 * model: from a session at the `disabled` level with them as outputs (inputs pinned to `feeds`' shapes
 * when given), without running it, so no activation is held. `flat`: each of them is also reshaped to one
 * dimension, whose inferred length is the product of its dims: a dim of -1 (inputs too small for the
 * model) reads like an unknown one in onnxruntime-node's metadata, but its product does not, and
 * onnxruntime-node refuses it (see negativeSize).
 */
async function tensorMetadata(loaded: LoadedModel, names: string[], device: DevicePreference, feeds?: Record<string, { dims: readonly number[] }>, flat = false): Promise<Map<string, { type: string; shape: ReadonlyArray<number | string> }>> {
  const inputs = new Set((loaded.model.graph!.input ?? []).map((v) => v.name));
  const inside = names.filter((n) => !inputs.has(n));
  const flats = flat ? inside.map((n, i): NodeProto => ({ op_type: 'Reshape', name: `quantlens_meta_flat_${i}`, input: [n, 'quantlens_meta_flat'], output: [`quantlens_meta_flat_${i}`] })) : [];
  const g = loaded.model.graph!;
  const model = flats.length ? onnx.ModelProto.create({ ...loaded.model, graph: onnx.GraphProto.create({ ...g, node: [...(g.node ?? []), ...flats], initializer: [...(g.initializer ?? []), int64Tensor('quantlens_meta_flat', [-1])] }) }) : loaded.model;
  const variant = weightsAsInputs(withExtraOutputs(model, [...inside, ...flats.map((n) => n.output![0])]));
  const s = await sessionForVariant(feeds ? pinInputs(variant, feeds) : variant, loaded, device, 'disabled');
  try {
    const meta = new Map<string, { type: string; shape: ReadonlyArray<number | string> }>();
    for (const m of [...s.session.inputMetadata, ...s.session.outputMetadata]) if (m.isTensor) meta.set(m.name, { type: m.type, shape: m.shape });
    return meta;
  } finally {
    await s.release();
  }
}

/** The element types of `names` as onnxruntime infers them (see tensorMetadata). */
export async function tensorTypes(loaded: LoadedModel, names: string[], device: DevicePreference): Promise<Map<string, string>> {
  return new Map([...(await tensorMetadata(loaded, names, device))].map(([k, m]) => [k, m.type]));
}

/** The element counts of `names` as onnxruntime infers them for inputs shaped like `feeds` (see tensorMetadata); undefined for any it cannot tell. */
export async function tensorSizes(loaded: LoadedModel, names: string[], feeds: Record<string, ort.Tensor>, device: DevicePreference): Promise<Array<number | undefined>> {
  return (await tensorShapes(loaded, names, feeds, device)).map((t) => t.size);
}

/**
 * Each of `names`' element type, rank, element count and dims as onnxruntime infers them for inputs shaped
 * like `feeds` (see tensorMetadata): the rank, the count or the dims undefined where it cannot tell.
 */
export async function tensorShapes(loaded: LoadedModel, names: string[], feeds: Record<string, ort.Tensor>, device: DevicePreference): Promise<Array<{ type?: string; rank?: number; size?: number; dims?: number[] }>> {
  // Flattened too: a negative size is refused here, before a variant whose Slices would abort on it.
  const meta = await tensorMetadata(loaded, names, device, feeds, true);
  return names.map((n) => {
    const m = meta.get(n);
    const d = feeds[n]?.dims ?? m?.shape;
    const known = d && d.every((x) => typeof x === 'number' && x >= 0);
    return { type: feeds[n]?.type ?? m?.type, rank: d?.length, size: known ? (d as number[]).reduce((a, b) => a * b, 1) : undefined, ...(known ? { dims: [...d as number[]] } : {}) };
  });
}

/**
 * Whether onnxruntime's shape inference gives no value of the model a negative or empty size for inputs
 * of `shapes`, and every conv's and pool's window fits in its input (from a session that never runs,
 * weights left out). False where inputs are too small for the model (a conv's kernel longer than the
 * signal): a variant session pinned to such shapes can abort the whole process inside onnxruntime (an
 * openWakeWord spectrogram at 1x16 samples: the shape inference of a strided Slice of static mode's
 * capture), where a plain run only fails. Other failures are thrown.
 */
export async function shapesInferable(loaded: LoadedModel, shapes: Record<string, readonly number[]>, device: DevicePreference): Promise<boolean> {
  // Every value the main graph makes, flattened (see tensorMetadata): a negative dim can hide behind an
  // op whose output onnxruntime cannot size.
  const values = [...new Set((loaded.model.graph!.node ?? []).flatMap((n) => n.output ?? []).filter(Boolean))];
  try {
    const meta = await tensorMetadata(loaded, values, device, Object.fromEntries(Object.entries(shapes).map(([n, dims]) => [n, { dims }])), true);
    const inputShape = (v: string) => (shapes[v] ?? meta.get(v)?.shape) as ReadonlyArray<number | string> | undefined;
    const view = new GraphView(loaded.model.graph!);
    return [...meta.values()].every((m) => m.shape.every((d) => typeof d !== 'number' || d > 0))
      && (loaded.model.graph!.node ?? []).every((n) => windowFits(n, inputShape(n.input?.[0] ?? ''), view));
  } catch (e) {
    if (negativeSize(e)) return false;
    throw e;
  }
}

/** onnxruntime-node's refusal of a negative inferred dimension: inputs too small for the model (see shapesInferable). */
export const negativeSize = (e: unknown) => /Invalid dimension: -\d/.test(String(e instanceof Error ? e.message : e));

const WINDOWED = new Set(['Conv', 'MaxPool', 'AveragePool', 'LpPool']);

/**
 * Whether a conv's or pool's window fits in its (padded) input: shape inference truncates (L − k) / s
 * toward zero, so a window wider than its input by less than a stride still gets one output position,
 * which the run then refuses ("Invalid input shape": wav2vec2's last feature conv at 256 samples).
 */
function windowFits(n: NodeProto, shape: ReadonlyArray<number | string> | undefined, view: GraphView): boolean {
  if (!WINDOWED.has(n.op_type ?? '') || (n.domain ?? '') !== '' || !shape) return true;
  const auto = attrString(n, 'auto_pad');
  if (auto && auto !== 'NOTSET') return true;
  const weight = n.op_type === 'Conv' ? view.constant(n.input?.[1] ?? '') : undefined;
  const kernel = attrInts(n, 'kernel_shape') ?? (weight ? (weight.dims ?? []).slice(2).map(Number) : undefined);
  if (!kernel) return true;
  const pads = attrInts(n, 'pads') ?? [], dil = attrInts(n, 'dilations') ?? [];
  return kernel.every((k, i) => {
    const d = shape[2 + i];
    return typeof d !== 'number' || d + (pads[i] ?? 0) + (pads[i + kernel.length] ?? 0) >= (k - 1) * (dil[i] ?? 1) + 1;
  });
}

/** The model's default-domain opset (13 when it names none). */
export function defaultOpset(model: ModelProto): number {
  return Number(opsetImport(model)?.version ?? 13);
}

/**
 * A Reduce* node (or an Unsqueeze) named after its output, over `axes` (all when absent): an attribute
 * below opset 18 (13 for Unsqueeze), an input from then on (its initializer pushed onto `extra`).
 */
export function axesNode(opset: number, extra: TensorProto[], op: string, name: string, input: string, axes?: number[], keepdims = 0): NodeProto {
  const n: NodeProto = { op_type: op, name, input: [input], output: [name], attribute: op === 'Unsqueeze' ? [] : [intAttr('keepdims', keepdims)] };
  if (axes && opset >= (op === 'Unsqueeze' ? 13 : 18)) { extra.push(int64Tensor(`${name}_axes`, axes)); n.input!.push(`${name}_axes`); }
  else if (axes) n.attribute!.push(intsAttr('axes', axes));
  return n;
}

/**
 * A copy of the model with reduction nodes over some of its tensors, each right after the node that makes
 * its tensor (graph inputs: first), so a run cut into segments reduces a tensor in the segment that makes it
 * instead of carrying it to the end.
 */
export function withReductions(model: ModelProto, placements: Array<{ tensor: string; nodes: NodeProto[] }>, initializers: TensorProto[] = []): ModelProto {
  const graph = model.graph!;
  const producer = new Map<string, NodeProto>();
  for (const x of graph.node ?? []) for (const o of x.output ?? []) producer.set(o, x);
  const first: NodeProto[] = [];
  const after = new Map<NodeProto, NodeProto[]>();
  for (const { tensor, nodes } of placements) {
    const p = producer.get(tensor);
    (p ? after.get(p) ?? after.set(p, []).get(p)! : first).push(...nodes);
  }
  const nodes = [...first, ...(graph.node ?? []).flatMap((x) => [x, ...(after.get(x) ?? [])])];
  return onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, node: nodes, initializer: [...(graph.initializer ?? []), ...initializers] }) });
}

/**
 * Per-channel means of tensors, reduced in the graph so that only [channels] vectors leave onnxruntime (a
 * large external-data model then runs a segment at a time). `axis`: where the channels are: 1 (NCHW),
 * 'last' (rows of features) or 0 (features × rows). Float32 tensors only; undefined when onnxruntime
 * refuses the variant. (Channel extremes: captureMinMax's `channels`.)
 */
export async function captureChannelMeans(
  loaded: LoadedModel, specs: Array<{ tensor: string; axis: 0 | 1 | 'last'; channels: number }>, data: CalibrationData, device: DevicePreference, ctx: JobContext = {},
): Promise<{ values: Array<Float64Array | undefined>; provider: Provider; fallbackReason?: string } | undefined> {
  const opset = defaultOpset(loaded.model);
  const extra: TensorProto[] = [];
  const placements = specs.map((sp, i) => {
    // Flatten to [rows, C], [N, C, rest] or [C, rest], then reduce all but the channels.
    const [shape, axes] = sp.axis === 'last' ? [[-1, sp.channels], [0]] : sp.axis === 1 ? [[0, sp.channels, -1], [0, 2]] : [[sp.channels, -1], [1]];
    extra.push(int64Tensor(`quantlens_stat_shape_${i}`, shape));
    const flat: NodeProto = { op_type: 'Reshape', name: `quantlens_stat_flat_${i}`, input: [sp.tensor, `quantlens_stat_shape_${i}`], output: [`quantlens_stat_flat_${i}`] };
    return { tensor: sp.tensor, nodes: [flat, axesNode(opset, extra, 'ReduceMean', `quantlens_stat_${i}`, `quantlens_stat_flat_${i}`, axes)] };
  });
  const variant = withReductions(loaded.model, placements, extra);
  const acc: Array<Float64Array | undefined> = specs.map(() => undefined);
  let count = 0;
  try {
    // onnxruntime's 'basic' level (captureTensors' default), not 'all': with 'all' the inline and
    // external-data copies of one model (weights prepacked or memory-mapped) reduced to values a few ulps
    // apart, and a streamed pruning must write the same weights as an in-memory one.
    const run = await captureTensors(loaded, specs.map((_, i) => `quantlens_stat_${i}`), data, device, (out) => {
      count++;
      specs.forEach((sp, i) => {
        const t = out[`quantlens_stat_${i}`];
        if (t?.type !== 'float32' || t.data.length !== sp.channels) return;
        const a = (acc[i] ??= new Float64Array(sp.channels));
        const d = t.data as Float32Array;
        for (let c = 0; c < sp.channels; c++) a[c] += d[c];
      });
    }, ctx, variant, { holdAll: true });
    return { values: acc.map((v) => v?.map((x) => x / Math.max(1, count))), provider: run.provider, ...(run.fallbackReason ? { fallbackReason: run.fallbackReason } : {}) };
  } catch (e) {
    if (e instanceof CancelledError) throw e;
    return undefined;
  }
}

/** Per-channel extremes of one tensor: its channels along axis 1 (NCHW) or the last axis. */
export interface ChannelSpec { tensor: string; axis: 1 | 'last'; channels: number }
export interface ChannelRange { min: Float64Array; max: Float64Array }

/**
 * onnxruntime's optimisation level for a throwaway analysis variant of `model` (MinMax's reductions, local
 * sensitivity's merged copies): 'all' for a conv net (at least as many convolutions as matrix products:
 * its NCHWc layouts make the convs fast, and the variant's runs are most of its cost), else 'basic'.
 * There the further levels cost set-up time and gain little, because the nodes added beside each tensor
 * block the fusions they would make. Medians of 14 alternated MinMax passes over 64 samples: the
 * transformer fixture 47 ms at 'basic' against 55 ms at 'all', the tiny VLM (one patch-embedding Conv)
 * 132 against 149 ms; local sensitivity, 16 samples, medians of 6: 190 against 217 ms and 444 against
 * 466 ms (scratch).
 */
export function analysisLevel(model: ModelProto): 'all' | 'basic' {
  let convs = 0, products = 0;
  for (const { node } of walkNodes(model.graph!)) {
    if (CONVOLUTIONS.has(node.op_type ?? '')) convs++;
    else if (PRODUCTS.has(node.op_type ?? '')) products++;
  }
  return convs > 0 && convs >= products ? 'all' : 'basic';
}
const CONVOLUTIONS = new Set(['Conv', 'ConvTranspose', 'QLinearConv', 'FusedConv', 'ConvInteger']);
const PRODUCTS = new Set(['MatMul', 'Gemm', 'MatMulInteger', 'QLinearMatMul', 'MatMulNBits', 'FusedMatMul', 'Einsum']);

/**
 * MinMax without copying activations out of onnxruntime: a copy of the model gets, per tensor, a ReduceMin
 * and a ReduceMax (all axes, scalar out; or per channel for `channels`, after a Reshape to [N, C, rest] or
 * [rows, C]) and only those results are fetched, sample by sample. One pass serves both the activation
 * ranges and smoothing's per-channel maxima. Undefined when onnxruntime refuses the variant (a type
 * ReduceMin lacks), so the caller can capture the tensors themselves.
 */
export async function captureMinMax(
  loaded: LoadedModel, wanted: string[], data: CalibrationData, device: DevicePreference, ctx: JobContext = {}, channels: ChannelSpec[] = [],
): Promise<{ ranges: Map<string, { min: number; max: number; count: number }>; channels: Array<ChannelRange | undefined>; provider: Provider; fallbackReason?: string; samples: number; seconds: number } | undefined> {
  // A tensor made by a non-decreasing op (Relu, Clip...) from another wanted tensor takes its range from
  // that one's: on PaddleOCR det, 11 of 97 reductions, each a read of a whole activation.
  const view = new GraphView(loaded.model.graph!);
  const wantedSet = new Set(wanted);
  const derived = new Map<string, { from: string; f: (x: number) => number }>();
  for (const n of wanted) {
    const p = view.producer.get(n);
    const f = p && wantedSet.has(p.input![0]) ? monotoneMap(p, view, loaded.loc) : undefined;
    if (f) derived.set(n, { from: p!.input![0], f });
  }
  const names = wanted.filter((n) => !derived.has(n));
  // Every extreme as its own output costs onnxruntime-node a tensor per value per run, more than the
  // reduction itself on a small model (transformer fixture, 41 tensors: 64 runs 42 ms, packed 21 ms, plain
  // 11 ms): they are gathered into one vector. Tensors of
  // mixed types cannot be concatenated; onnxruntime then refuses the packed copy and each is fetched alone.
  // (A model run a segment at a time keeps them apart: the vectors would be carried through every segment.)
  const attempt = async (packed: boolean) => {
    const ranges = new Map<string, { min: number; max: number; count: number }>();
    const perChannel: Array<ChannelRange | undefined> = channels.map(() => undefined);
    const scalars = names.flatMap((_, i) => [`quantlens_min_${i}`, `quantlens_max_${i}`]);
    const vectors = channels.flatMap((_, i) => [`quantlens_cmin_${i}`, `quantlens_cmax_${i}`]);
    const model = minMaxVariant(loaded.model, names, channels, packed);
    const total = channels.reduce((a, c) => a + c.channels, 0);
    const fetch = packed ? ['quantlens_extremes'] : [...scalars, ...vectors];
    const offsets = channels.map((_, i) => channels.slice(0, i).reduce((x, c) => x + c.channels, 0));
    let ran = 0; // samples so far (a stacked run holds several)
    const run = await captureTensors(loaded, fetch, data, device, (out, last) => {
      const took = last + 1 - ran;
      ran = last + 1;
      // Packed: one vector of [minima, maxima, channel minima, channel maxima]; else a tensor each.
      const all = packed ? out.quantlens_extremes : undefined;
      if (all && (all.type !== 'float32' || all.data.length !== 2 * names.length + 2 * total)) return; // a tensor was not as declared
      const v = all?.data as Float32Array | undefined;
      const floats = (name: string, length: number) => { const t = out[name]; return t?.type === 'float32' && t.data.length === length ? t.data as Float32Array : undefined; };
      names.forEach((n, i) => {
        const lo = v ? v[i] : floats(`quantlens_min_${i}`, 1)?.[0], hi = v ? v[names.length + i] : floats(`quantlens_max_${i}`, 1)?.[0];
        if (lo === undefined || hi === undefined) return; // only float activations are calibrated
        const r = ranges.get(n) ?? { min: Infinity, max: -Infinity, count: 0 };
        r.min = Math.min(r.min, lo);
        r.max = Math.max(r.max, hi);
        r.count += took;
        ranges.set(n, r);
      });
      channels.forEach((c, i) => {
        const at = 2 * names.length + offsets[i];
        const lo = v ? v.subarray(at, at + c.channels) : floats(`quantlens_cmin_${i}`, c.channels), hi = v ? v.subarray(at + total, at + total + c.channels) : floats(`quantlens_cmax_${i}`, c.channels);
        if (!lo || !hi) return;
        const r = (perChannel[i] ??= { min: new Float64Array(c.channels).fill(Infinity), max: new Float64Array(c.channels).fill(-Infinity) });
        for (let k = 0; k < c.channels; k++) { r.min[k] = Math.min(r.min[k], lo[k]); r.max[k] = Math.max(r.max[k], hi[k]); }
      });
    }, ctx, model, { holdAll: true, optimization: analysisLevel(loaded.model), stack: true });
    // Chains (Relu of a Relu) resolve through their sources.
    const rangeOf = (n: string): { min: number; max: number; count: number } | undefined => {
      const d = derived.get(n);
      if (!d) return ranges.get(n);
      const src = rangeOf(d.from);
      return src && { min: d.f(src.min), max: d.f(src.max), count: src.count };
    };
    for (const n of derived.keys()) { const r = rangeOf(n); if (r) ranges.set(n, r); }
    return { ranges, channels: perChannel, ...run };
  };
  const packable = loaded.externalBytes <= verifySegmentBytes() && names.length + channels.length > 0;
  for (const packed of packable ? [true, false] : [false]) {
    try {
      return await attempt(packed);
    } catch (e) {
      if (e instanceof CancelledError) throw e;
    }
  }
  return undefined;
}

/**
 * The model with a ReduceMin and a ReduceMax beside each of `names` (over all of it) and each of
 * `channels` (per channel); packed, gathered into one vector (see packExtremes), else an output each.
 */
export function minMaxVariant(model: ModelProto, names: string[], channels: ChannelSpec[], packed: boolean): ModelProto {
  const opset = defaultOpset(model);
  const extra: TensorProto[] = [];
  const reduceOver = (op: string, name: string, input: string, axes?: number[]) => axesNode(opset, extra, op, name, input, axes);
  const placements = [
    // A flat view reduced with keepdims: each extreme is a [1] vector, ready to concatenate (a scalar
    // needed a Reshape of its own: a node per extreme, onnxruntime's cost per node outweighing the work on
    // a small model).
    ...names.map((n, i) => {
      const flat = `quantlens_flat_${i}`;
      return { tensor: n, nodes: [{ op_type: 'Reshape', name: flat, input: [n, 'quantlens_flat'], output: [flat] }, axesNode(opset, extra, 'ReduceMin', `quantlens_min_${i}`, flat, undefined, 1), axesNode(opset, extra, 'ReduceMax', `quantlens_max_${i}`, flat, undefined, 1)] };
    }),
    ...channels.map((c, i) => {
      const [shape, axes] = c.axis === 'last' ? [[-1, c.channels], [0]] : [[0, c.channels, -1], [0, 2]];
      extra.push(int64Tensor(`quantlens_cflat_shape_${i}`, shape));
      const flat: NodeProto = { op_type: 'Reshape', name: `quantlens_cflat_${i}`, input: [c.tensor, `quantlens_cflat_shape_${i}`], output: [`quantlens_cflat_${i}`] };
      return { tensor: c.tensor, nodes: [flat, reduceOver('ReduceMin', `quantlens_cmin_${i}`, `quantlens_cflat_${i}`, axes), reduceOver('ReduceMax', `quantlens_cmax_${i}`, `quantlens_cflat_${i}`, axes)] };
    }),
  ];
  if (names.length) extra.push(int64Tensor('quantlens_flat', [-1]));
  const variant = withReductions(model, placements, extra);
  return packed ? packExtremes(variant, names.length, channels.length) : variant;
}

/**
 * The MinMax variant with its extremes gathered into one vector, quantlens_extremes: the scalars' minima,
 * their maxima, then the channel minima and maxima, in name order.
 */
function packExtremes(variant: ModelProto, scalars: number, vectors: number): ModelProto {
  const g = variant.graph!;
  const names = (kind: string, count: number) => Array.from({ length: count }, (_, i) => `quantlens_${kind}_${i}`);
  const inputs = [...names('min', scalars), ...names('max', scalars), ...names('cmin', vectors), ...names('cmax', vectors)];
  const gather: NodeProto = { op_type: 'Concat', name: 'quantlens_extremes', input: inputs, output: ['quantlens_extremes'], attribute: [intAttr('axis', 0)] };
  return onnx.ModelProto.create({ ...variant, graph: onnx.GraphProto.create({ ...g, node: [...statisticsInGraphOrder(g.node ?? []), gather] }) });
}

/**
 * A variant's nodes (withReductions' order: each tensor's statistics, named quantlens_*, after its
 * producer) with the statistics moved after the model's own nodes, the first tensor's last. onnxruntime's
 * execution order is a depth-first walk from the graph's leaves that takes the highest-numbered leaf and
 * input first: the statistics then run in graph order, each tensor's as the graph makes it, and it is
 * freed. In withReductions' order the last tensor's ran first, after every node of the model, and every
 * activation stayed alive until the end (PaddleOCR det 320x640, MinMax over 16 samples: 1.62-1.95 s against
 * 0.98-1.22 s, plain inference 0.90-1.31 s). A gathering node over them must come after, and be the leaf.
 */
export function statisticsInGraphOrder(nodes: NodeProto[]): NodeProto[] {
  const own: NodeProto[] = [], groups: NodeProto[][] = [];
  let group: NodeProto[] | undefined;
  for (const n of nodes) {
    if ((n.name ?? '').startsWith('quantlens_')) (group ??= []).push(n);
    else { if (group) groups.push(group); group = undefined; own.push(n); }
  }
  if (group) groups.push(group);
  return [...own, ...groups.reverse().flat()];
}

/** A variant whose statistics are each its own output, ordered by statisticsInGraphOrder. */
function inGraphOrder(variant: ModelProto): ModelProto {
  return onnx.ModelProto.create({ ...variant, graph: onnx.GraphProto.create({ ...variant.graph!, node: statisticsInGraphOrder(variant.graph!.node ?? []) }) });
}
