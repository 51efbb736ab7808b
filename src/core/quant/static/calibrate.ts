import type * as ort from 'onnxruntime-node';
import type { CalibrationData } from '../../calib/data';
import { calibrator, minmaxRange } from '../../calib/calibrators';
import { GrowingHistogram } from '../../calib/histogram';
import type { JobContext } from '../../base/jobs';
import type { LoadedModel } from '../../onnx/model-io';
import type { NodeProto } from '../../onnx/proto';
import { captureMinMax, captureTensors } from '../../runtime/capture';
import { captureSampled } from '../../runtime/capture-sampled';
import type { Provider } from '../../runtime/session';
import type { QuantContext } from '../context';
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
  tensors: TensorCalibration[];
}

/** Ranges measured before calibration proper (with smoothing's statistics, in the same pass). */
export interface MeasuredRanges { ranges: Map<string, { min: number; max: number }>; provider: Provider; fallbackReason?: string; samples: number; seconds: number }

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
  const names = calibrationTensors(nodes, ctx);
  const hists = new Map<string, GrowingHistogram>();
  const method = calibrator(o.calibrationMethod, o);
  // A method that needs only the extremes: reduce inside onnxruntime instead of copying activations out
  // (or take the ranges the smoothing pass measured alongside its own statistics).
  const reduced = method.bins !== 0 ? undefined : measured && names.every((n) => measured.ranges.has(n)) ? measured : await captureMinMax(loaded, names, data, o.device, job);
  let run: { provider: Provider; fallbackReason?: string; samples: number; seconds: number };
  let picked: number | undefined;
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
    const sampled = o.histogramValues > 0 ? await captureSampled(loaded, names, data, o.device, o.histogramValues, (name, t) => {
      let h = hists.get(name);
      if (!h) hists.set(name, (h = new GrowingHistogram(method.bins)));
      for (const part of t.parts) h.add(part.values, part.weight, t);
    }, job) : undefined;
    if (sampled) picked = o.histogramValues;
    else hists.clear();
    run = sampled ?? await captureTensors(loaded, names, data, o.device, (values, _i, feeds) => {
      for (const name of names) {
        const t: ort.Tensor | undefined = values[name] ?? feeds[name];
        if (!t || t.type !== 'float32') continue;
        let h = hists.get(name);
        if (!h) hists.set(name, (h = new GrowingHistogram(method.bins)));
        h.add(t.data as Float32Array);
      }
    }, job);
  }
  const qtype = o.symmetric ? 'int8' : 'uint8';
  const tensors = new Map<string, TensorCalibration>();
  const decisions = method.bins === 0 ? new Map<string, string>() : decisionTensors(ctx);
  for (const [name, h] of hists) {
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
    ...(picked ? { histogramValues: picked } : {}), tensors: [...tensors.values()],
  };
}
