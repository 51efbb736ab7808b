import { openCalibration, type CalibrationData, type Feeds } from './calib/data';
import { CancelledError, errorLine, QuantLensError } from './base/errors';
import type { JobContext } from './base/jobs';
import { emptyOutputsWarning, FidelityAccumulator, unmovedOutputsWarning, type FidelityMetrics, type HeadlineMetric } from './eval/metrics';
import { isFeatureOutput } from './eval/output-kind';
import { loadModel } from './onnx/model-io';
import { isTensorValue } from './onnx/value-type';
import type * as ort from 'onnxruntime-node';
import { chosenDims, dataInputs, type InputShapes } from './calib/input-shapes';
import type { GraphProto } from './onnx/proto';
import { runSegmented, timedRuns } from './runtime/segmented-run';
import type { LatencyStats } from './runtime/latency';
import { createSession, type DevicePreference, type Provider } from './runtime/session';

export interface CompareOptions {
  /** Calibration-style data folder or `random:N`; default seeded random samples. */
  data?: string;
  /** Shapes for inputs with dynamic dimensions (`--input-shape`): random samples take them, images are resized to them. */
  inputShapes?: InputShapes;
  samples?: number;
  device?: DevicePreference;
  /** Timed runs per model for latency (median). */
  latencyRuns?: number;
  /** Keep timing past `latencyRuns` while the runs fit in this many ms (up to 20 runs). */
  latencyBudgetMs?: number;
  /**
   * What a caller that already holds the models knows (quantize, prune): the reference's graph (for its
   * inputs) and both sizes. Then neither file is read into memory again; onnxruntime reads them itself.
   */
  known?: { referenceGraph: GraphProto; referenceBytes: number; candidateBytes: number };
  /**
   * Run the reference with its weights memory-mapped and unpacked (large external-data models; see
   * SessionOptions): its float weights stay in reclaimable page cache. The candidate runs as deployed.
   */
  mappedReference?: boolean;
  /**
   * Run a model whose weights pass this many bytes a segment at a time (see runSegmented), so memory holds
   * one segment's weights; latency is then the sum of the segments' times.
   */
  segmentBytes?: number;
  /** The metric each output's headline reports (when it has it); default: the worst relevant one. */
  metric?: HeadlineMetric;
}

/** `quantlens compare --json`: the contract's fields, then extras. */
export interface CompareReport {
  outputs: Record<string, FidelityMetrics>;
  latencyMs: { reference: number; candidate: number };
  /** Median and quartiles of each model's timed runs (absent when a model ran in segments). */
  latencyStats?: { reference: LatencyStats; candidate: LatencyStats };
  sizeBytes: { reference: number; candidate: number };
  device: Provider;
  fallbackReason?: string;
  samples: number;
  data: string;
  /** The headline metric asked for (--metric), if any. */
  metric?: HeadlineMetric;
  warning?: string;
  /** Set when the reference ran memory-mapped without prepacking: its latency is then slower than deployed. */
  mappedReference?: boolean;
  /** Segments each model ran in, when run a segment at a time (1: whole). */
  segments?: { reference: number; candidate: number };
  /** The first sample's shape per input, and what that chose for the model's dynamic dimensions. */
  inputShapes: Record<string, number[]>;
  chosenDims: string[];
  /** Image data: how many, and how they were prepared. */
  images?: string;
}

/** SQNR of identical outputs is infinite; reports cap it at 200 dB (identical within float32). */
const capDb = (v: number) => (Number.isFinite(v) ? Math.min(v, 200) : 200);

/** Two models compared on one set of feeds must take the same data inputs. */
function sameInputs(reference: string, a: GraphProto, candidate: string, b: GraphProto): void {
  const names = (g: GraphProto) => dataInputs(g).map((v) => v.name ?? '');
  const [ia, ib] = [names(a), names(b)];
  const missing = ia.filter((n) => !ib.includes(n)), extra = ib.filter((n) => !ia.includes(n));
  if (missing.length || extra.length) throw new QuantLensError(candidate, `takes different inputs than ${reference} (${ib.join(', ')} against ${ia.join(', ')}): compare a model with one made from it`);
}

/** Runs both models in onnxruntime on the same inputs and measures how far the candidate strays. */
export async function compareModels(reference: string, candidate: string, opts: CompareOptions = {}, ctx: JobContext = {}): Promise<CompareReport> {
  const known = opts.known;
  const ref = known ? undefined : loadModel(reference);
  const sizes = known ? { reference: known.referenceBytes, candidate: known.candidateBytes } : (() => {
    const cand = loadModel(candidate);
    sameInputs(reference, ref!.model.graph!, candidate, cand.model.graph!);
    return { reference: ref!.fileBytes + ref!.externalBytes, candidate: cand.fileBytes + cand.externalBytes };
  })();
  const n = opts.samples ?? 8;
  const data: CalibrationData = openCalibration(opts.data ?? `random:${n}`, known?.referenceGraph ?? ref!.model.graph!, { maxSamples: n, inputShapes: opts.inputShapes });
  const samples = [...data.samples()];
  if (!samples.length) throw new QuantLensError(data.source, 'gave no samples to compare on');
  const inputShapes = Object.fromEntries(Object.entries(samples[0]).map(([k, t]) => [k, t.dims.map(Number)]));
  // One model at a time: the reference's outputs are kept (they are small), its session released, and
  // only then the candidate loads, so memory never holds both models (a large model's weights twice).
  const a = await runModel(reference, sizes.reference, samples, data.source, { ...opts, mappedWeights: !!opts.mappedReference }, ctx, 0);
  const b = await runModel(candidate, sizes.candidate, samples, data.source, { ...opts, mappedWeights: false }, ctx, 1);
  const outputs: CompareReport['outputs'] = {};
  const graph = known?.referenceGraph ?? ref!.model.graph!;
  for (const name of a.outputNames) {
    const acc = new FidelityAccumulator(isFeatureOutput(graph, name));
    samples.forEach((_, k) => {
      if (!b.outputs[k][name]) throw new QuantLensError(candidate, `has no output '${name}' (the reference has)`);
      acc.add(a.outputs[k][name], b.outputs[k][name]);
    });
    const r = acc.result(opts.metric);
    outputs[name] = { ...r, sqnr: capDb(r.sqnr) };
  }
  const warning = [data.warning?.replace('calibrated on', 'compared on'), emptyOutputsWarning(outputs, data.source, '--data'), unmovedOutputsWarning(outputs, data.source, '--data')].filter(Boolean).join('; ');
  return {
    outputs,
    ...(opts.metric ? { metric: opts.metric } : {}),
    latencyMs: { reference: a.latencyMs, candidate: b.latencyMs },
    ...(a.stats && b.stats ? { latencyStats: { reference: a.stats, candidate: b.stats } } : {}),
    sizeBytes: sizes,
    device: b.provider,
    ...(b.fallbackReason ? { fallbackReason: b.fallbackReason } : {}),
    samples: samples.length,
    data: data.source,
    inputShapes, chosenDims: chosenDims(graph, inputShapes),
    ...(warning ? { warning } : {}),
    ...(data.preprocessing ? { images: data.preprocessing } : {}),
    ...(opts.mappedReference ? { mappedReference: true } : {}),
    ...(a.segments > 1 || b.segments > 1 ? { segments: { reference: a.segments, candidate: b.segments } } : {}),
  };
}

interface ModelRun {
  outputs: Array<Record<string, ort.Tensor>>;
  outputNames: readonly string[];
  latencyMs: number;
  stats?: LatencyStats;
  segments: number;
  provider: Provider;
  fallbackReason?: string;
}

/** One model on every sample: whole, or a segment at a time when its weights pass `segmentBytes`. */
async function runModel(file: string, bytes: number, samples: Feeds[], source: string, opts: CompareOptions & { mappedWeights: boolean }, ctx: JobContext, half: number): Promise<ModelRun> {
  const progress = (f: number) => ctx.onProgress?.({ stage: 'compare', fraction: (half + f) / 2 });
  if (opts.segmentBytes !== undefined && bytes > opts.segmentBytes) {
    const loaded = loadModel(file);
    // A cut onnxruntime cannot take (a sequence or optional value crossing it, say) falls back to the whole model.
    const r = await runSegmented(loaded, samples, { budgetBytes: opts.segmentBytes, device: opts.device, mappedWeights: opts.mappedWeights, latencyRuns: opts.latencyRuns ?? 10 },
      { ...(ctx.signal ? { signal: ctx.signal } : {}), onProgress: (p) => progress(p.fraction ?? 0) }).catch((e) => {
      if (e instanceof CancelledError) throw e;
      return undefined;
    });
    if (r) return { ...r, outputNames: (loaded.model.graph!.output ?? []).filter(isTensorValue).map((v) => v.name ?? '') };
  }
  const s = await createSession(file, { device: opts.device, ...(opts.mappedWeights ? { mappedWeights: true } : {}) });
  try {
    const outputs: Array<Record<string, ort.Tensor>> = [];
    for (const feeds of samples) {
      if (ctx.signal?.aborted) throw new CancelledError();
      try {
        outputs.push(await s.session.run(feeds));
      } catch (e) {
        throw new QuantLensError(file, `onnxruntime failed to run it on sample ${outputs.length + 1} of ${source}: ${errorLine(e)}`, 'runtime');
      }
      progress(outputs.length / samples.length);
    }
    await s.session.run(samples[0]); // warm-up
    const stats = await timedRuns(s.session, samples[0], undefined, opts.latencyRuns ?? 10, opts.latencyBudgetMs ?? 0);
    return {
      outputs, outputNames: s.session.outputNames, latencyMs: stats.median, stats, segments: 1,
      provider: s.provider, ...(s.fallbackReason ? { fallbackReason: s.fallbackReason } : {}),
    };
  } finally {
    await s.session.release();
  }
}
