import type * as ort from 'onnxruntime-node';
import type { CalibrationData } from '../../calib/data';
import { calibrator, minmaxRange } from '../../calib/calibrators';
import { GrowingHistogram } from '../../calib/histogram';
import type { JobContext } from '../../base/jobs';
import type { LoadedModel } from '../../onnx/model-io';
import type { NodeProto } from '../../onnx/proto';
import { captureMinMax, captureTensors } from '../../runtime/capture';
import { captureSampled } from '../../runtime/capture-sampled';
import { channelInner, ChannelScaledValues, HELD_VALUES, type ChannelLayout } from '../../calib/channel-scaled';
import type { Provider } from '../../runtime/session';
import type { QuantContext } from '../context';
import { CancelledError } from '../../base/errors';
import type { QuantizeOptions } from '../options';
import { computeQParams } from '../qparams';
import { activationTensors, sharesInputRange } from './qdq';

export interface TensorCalibration {
  tensor: string;
  min: number;
  max: number;
  /** The range the method chose, and MinMax's for comparison. */
  clip: [number, number];
  minmax: [number, number];
  clippedPercent: number;
  scale: number;
  zeroPoint: number;
  sharedWith?: string;
  /** Why the method's clip was not applied (the tensor keeps MinMax's range). */
  fullRange?: string;
  histogram?: { edges: [number, number]; counts: number[] };
}

export interface CalibrationReport {
  method: QuantizeOptions['calibrationMethod'];
  source: string;
  samples: number;
  warning?: string;
  device: Provider;
  fallbackReason?: string;
  seconds: number;
  /** Set when histograms binned a strided pick of about this many values per tensor per sample (--histogram-values). */
  histogramValues?: number;
  /** Activations binned after smoothing decided in this same pass (their values divided by its scales). */
  smoothedInPass?: number;
  tensors: TensorCalibration[];
}

/** Ranges measured before calibration proper (with smoothing's statistics, in the same pass). */
export interface MeasuredRanges { ranges: Map<string, { min: number; max: number }>; provider: Provider; fallbackReason?: string; samples: number; seconds: number }

/**
 * Smoothing decided in the calibration pass itself (histogram methods): the activations it may divide,
 * each with its channel layout and its item, the items' own activations (whose per-channel maxima decide),
 * and `apply`, which decides and writes smoothing and returns each item's scales.
 */
export interface OnePassSmoothing {
  affected: Map<string, { layout: ChannelLayout; item: number }>;
  items: string[];
  apply: (absmax: Array<Float64Array | undefined>) => Float64Array[];
}

/** The activations calibration measures; outputs of pass-through ops (and Resize) take their input's parameters. */
export function calibrationTensors(nodes: NodeProto[], ctx: QuantContext): string[] {
  const derived = new Set(nodes.filter(sharesInputRange).map((n) => n.output![0]));
  return [...new Set(nodes.flatMap((n) => activationTensors(n, ctx)))].filter((t) => !derived.has(t));
}

const DECISION_OPS = new Set(['Softmax', 'LogSoftmax', 'ArgMax', 'ArgMin', 'TopK']);

/**
 * Tensors whose extremes are the answer: the model's outputs and what feeds Softmax/ArgMax/TopK, followed
 * back through pass-through ops and bias adds. Clipping the largest logit erases the very difference
 * top-1 depends on, so these keep MinMax's range whatever the method (entropy clips them hardest).
 */
function decisionTensors(ctx: QuantContext): Map<string, string> {
  const out = new Map<string, string>();
  const queue: Array<[string, string]> = [];
  for (const o of ctx.view.graph.output ?? []) if (o.name) queue.push([o.name, 'a model output']);
  for (const n of ctx.view.graph.node ?? []) {
    if (DECISION_OPS.has(n.op_type ?? '') && n.input?.[0]) queue.push([n.input[0], `feeds ${n.op_type}`]);
  }
  while (queue.length) {
    const [t, why] = queue.pop()!;
    if (out.has(t)) continue;
    out.set(t, why);
    const p = ctx.view.producer.get(t);
    if (!p) continue;
    const op = p.op_type ?? '';
    const data = (p.input ?? []).filter((i) => i && !ctx.view.constant(i));
    if (sharesInputRange(p) || ((op === 'Add' || op === 'Sub') && data.length === 1)) queue.push([data[0], why]);
  }
  return out;
}

/**
 * Captures every activation the static nodes touch, streamed sample by sample into a histogram per
 * tensor, then picks each tensor's range with the chosen method and its uint8 (or int8 symmetric) scale.
 */
export async function calibrateActivations(loaded: LoadedModel, ctx: QuantContext, nodes: NodeProto[], data: CalibrationData, o: QuantizeOptions, job: JobContext, measured?: MeasuredRanges): Promise<CalibrationReport> {
  return (await calibrate(loaded, ctx, nodes, data, o, job, measured))!;
}

/**
 * Histogram calibration and smoothing in one pass over the data: the activations smoothing may divide are
 * captured with each value's channel and held; smoothing then decides from their per-channel extremes,
 * and their histograms are binned divided by its scales. Undefined where that is not possible (a variant
 * onnxruntime refuses, activations too large to hold): the caller smooths in a pass of its own first.
 */
export async function calibrateWithSmoothing(loaded: LoadedModel, ctx: QuantContext, nodes: NodeProto[], data: CalibrationData, o: QuantizeOptions, job: JobContext, smoothing: OnePassSmoothing): Promise<CalibrationReport | undefined> {
  return calibrate(loaded, ctx, nodes, data, o, job, undefined, smoothing);
}

/** The capture, or undefined if it failed in a way the two-pass path may not (a layout the shapes do not have). */
async function orUndefined<T>(f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof CancelledError) throw e;
    if (process.env.QUANTLENS_DEBUG) console.error(`one-pass smoothing: ${String(e)}`);
    return undefined;
  }
}

async function calibrate(loaded: LoadedModel, ctx: QuantContext, nodes: NodeProto[], data: CalibrationData, o: QuantizeOptions, job: JobContext, measured?: MeasuredRanges, smoothing?: OnePassSmoothing): Promise<CalibrationReport | undefined> {
  const names = calibrationTensors(nodes, ctx);
  const hists = new Map<string, GrowingHistogram>();
  const method = calibrator(o.calibrationMethod, o);
  // A method that needs only the extremes: reduce inside onnxruntime instead of copying activations out
  // (or take the ranges the smoothing pass measured alongside its own statistics).
  const reduced = method.bins !== 0 || smoothing ? undefined : measured && names.every((n) => measured.ranges.has(n)) ? measured : await captureMinMax(loaded, names, data, o.device, job);
  let run: { provider: Provider; fallbackReason?: string; samples: number; seconds: number };
  let picked: number | undefined;
  // With smoothing: its items' activations are captured too (their channels decide), and every affected one is held.
  const captured = smoothing ? [...new Set([...names, ...smoothing.items])] : names;
  const calibrated = new Set(names);
  const held = new Map<string, ChannelScaledValues>();
  const holder = (name: string) => {
    const a = smoothing?.affected.get(name);
    if (!a) return undefined;
    let v = held.get(name);
    if (!v) held.set(name, (v = new ChannelScaledValues(a.layout.channels)));
    return v;
  };
  const histogram = (name: string) => {
    let h = hists.get(name);
    if (!h) hists.set(name, (h = new GrowingHistogram(method.bins)));
    return h;
  };
  if (reduced) {
    for (const [name, r] of reduced.ranges) {
      const h = new GrowingHistogram(0);
      h.add([r.min, r.max]);
      hists.set(name, h);
    }
    run = reduced;
  } else {
    // --histogram-values N: a strided pick of each tensor (exact extremes beside it) instead of every
    // value, which costs several inferences' worth of copying and binning (see captureSampled).
    const layouts = captured.map((n) => smoothing?.affected.get(n)?.layout);
    const sampled = o.histogramValues > 0 ? await captureSampled(loaded, captured, data, o.device, o.histogramValues, (name, t) => {
      const v = t.perChannel && holder(name);
      if (v) {
        v.sample(t.perChannel!.min, t.perChannel!.max);
        // (An item's activation no node calibrates is captured for its channels' extremes only.)
        if (calibrated.has(name)) for (const part of t.parts) v.add(part.values, part.weight, part.channel!);
        return;
      }
      const h = histogram(name);
      for (const part of t.parts) h.add(part.values, part.weight, t);
    }, job, layouts) : undefined;
    if (sampled && sampled !== 'small') picked = o.histogramValues;
    else {
      hists.clear();
      held.clear();
      // Every value of every affected activation, held until smoothing decides: only while they are small.
      if (smoothing && (sampled !== 'small' || o.histogramValues * data.count * smoothing.affected.size > HELD_VALUES)) return undefined;
    }
    const copy = () => captureTensors(loaded, captured, data, o.device, (values, _i, feeds) => {
      for (const name of captured) {
        const t: ort.Tensor | undefined = values[name] ?? feeds[name];
        if (!t || t.type !== 'float32') continue;
        const v = holder(name);
        if (v) holdWhole(v, smoothing!.affected.get(name)!.layout, t, calibrated.has(name));
        else histogram(name).add(t.data as Float32Array);
      }
    }, job, undefined, { stack: true }); // histograms and channel extremes: small samples may run stacked
    const copied = sampled && sampled !== 'small' ? sampled : smoothing ? await orUndefined(copy) : await copy();
    if (!copied) return undefined;
    run = copied;
  }
  let smoothedInPass: number | undefined;
  if (smoothing) {
    const scales = smoothing.apply(smoothing.items.map((n) => held.get(n)?.absMax()));
    const binned = [...held].filter(([name]) => calibrated.has(name));
    for (const [name, v] of binned) hists.set(name, v.histogram(method.bins, scales[smoothing.affected.get(name)!.item]));
    smoothedInPass = binned.length;
  }
  const qtype = o.symmetric ? 'int8' : 'uint8';
  const tensors = new Map<string, TensorCalibration>();
  const decisions = method.bins === 0 ? new Map<string, string>() : decisionTensors(ctx);
  // In the order the graph makes them, whichever way they were captured.
  for (const name of names) {
    const h = hists.get(name);
    if (!h) continue;
    const why = decisions.get(name);
    const r = why ? minmaxRange(h) : method.range(h);
    const p = computeQParams(r.lo, r.hi, qtype, o.symmetric);
    ctx.activations.set(name, { qtype, scale: p.scale, zeroPoint: p.zeroPoint });
    tensors.set(name, {
      tensor: name, min: h.min, max: h.max, clip: [r.lo, r.hi], minmax: [Math.min(h.min, 0), Math.max(h.max, 0)],
      clippedPercent: method.bins === 0 ? 0 : h.clippedPercent(r.lo, r.hi), scale: p.scale, zeroPoint: p.zeroPoint,
      ...(why ? { fullRange: `${why}: clipping would cut the answer itself` } : {}),
      ...(method.bins === 0 ? {} : { histogram: h.summary() }),
    });
  }
  // Pass-through ops keep their input's scale (in graph order, so chains propagate).
  for (const n of nodes) {
    if (!sharesInputRange(n)) continue;
    const src = ctx.activations.get(n.input![0]);
    const from = tensors.get(n.input![0]);
    const out = n.output![0];
    if (src && from) {
      ctx.activations.set(out, src);
      tensors.set(out, { ...from, tensor: out, sharedWith: n.input![0], histogram: undefined });
    }
  }
  return {
    method: o.calibrationMethod, source: data.source, samples: run.samples, ...(data.warning ? { warning: data.warning } : {}),
    device: run.provider, ...(run.fallbackReason ? { fallbackReason: run.fallbackReason } : {}), seconds: run.seconds,
    ...(picked ? { histogramValues: picked } : {}), ...(smoothedInPass !== undefined ? { smoothedInPass } : {}), tensors: [...tensors.values()],
  };
}

/** Every value of a tensor (`keep`: else only its channels' extremes) for ChannelScaledValues; each value's channel follows from its position. */
function holdWhole(v: ChannelScaledValues, l: ChannelLayout, t: ort.Tensor, keep: boolean): void {
  const x = t.data as Float32Array, C = l.channels, inner = channelInner(l, t.dims);
  if (inner === undefined) throw new Error(`a ${t.dims.join('x')} tensor does not have ${C} channels where smoothing divides them`);
  const min = new Float64Array(C).fill(Infinity), max = new Float64Array(C).fill(-Infinity);
  // A run of `inner` values per channel in turn (no division per value).
  for (let at = 0, c = 0; at < x.length; at += inner, c = c + 1 === C ? 0 : c + 1) {
    let lo = min[c], hi = max[c];
    for (let j = at, end = Math.min(x.length, at + inner); j < end; j++) {
      const v = x[j];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    min[c] = lo;
    max[c] = hi;
  }
  v.sample(min, max);
  if (keep) v.add(x, 1, { step: 1, inner, channels: C });
}
