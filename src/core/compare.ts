import { openCalibration, type CalibrationData } from './calib/data';
import { CancelledError, QuantLensError } from './errors';
import type { JobContext } from './jobs';
import { FidelityAccumulator } from './metrics';
import { loadModel } from './onnx/model-io';
import type * as ort from 'onnxruntime-node';
import type { GraphProto } from './onnx/proto';
import { createSession, type DevicePreference, type Provider } from './runtime/session';

export interface CompareOptions {
  /** Calibration-style data folder or `random:N`; default seeded random samples. */
  data?: string;
  samples?: number;
  device?: DevicePreference;
  /** Timed runs per model for latency (median). */
  latencyRuns?: number;
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
}

/** `quantlens compare --json`: the contract's fields, then extras. */
export interface CompareReport {
  outputs: Record<string, { cosine: number; sqnr: number; maxAbsError: number; top1Agreement: number | null }>;
  latencyMs: { reference: number; candidate: number };
  sizeBytes: { reference: number; candidate: number };
  device: Provider;
  fallbackReason?: string;
  samples: number;
  data: string;
  warning?: string;
  /** Set when the reference ran memory-mapped without prepacking: its latency is then slower than deployed. */
  mappedReference?: boolean;
}

/** SQNR of identical outputs is infinite; reports cap it at 200 dB (identical within float32). */
const capDb = (v: number) => (Number.isFinite(v) ? Math.min(v, 200) : 200);

/** Runs both models in onnxruntime on the same inputs and measures how far the candidate strays. */
export async function compareModels(reference: string, candidate: string, opts: CompareOptions = {}, ctx: JobContext = {}): Promise<CompareReport> {
  const known = opts.known;
  const ref = known ? undefined : loadModel(reference);
  const sizes = known ? { reference: known.referenceBytes, candidate: known.candidateBytes } : (() => {
    const cand = loadModel(candidate);
    return { reference: ref!.fileBytes + ref!.externalBytes, candidate: cand.fileBytes + cand.externalBytes };
  })();
  const n = opts.samples ?? 8;
  const data: CalibrationData = openCalibration(opts.data ?? `random:${n}`, known?.referenceGraph ?? ref!.model.graph!, { maxSamples: n });
  const runs = Math.max(1, opts.latencyRuns ?? 10);
  const latency = async (s: ort.InferenceSession, feeds: Record<string, ort.Tensor>) => {
    await s.run(feeds);
    const t: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await s.run(feeds);
      t.push(performance.now() - t0);
    }
    return t.sort((x, y) => x - y)[Math.floor(t.length / 2)];
  };
  const runOn = async (s: ort.InferenceSession, file: string, feeds: Record<string, ort.Tensor>, k: number) => {
    if (ctx.signal?.aborted) throw new CancelledError();
    try {
      return await s.run(feeds);
    } catch (e) {
      throw new QuantLensError(file, `onnxruntime failed to run it on sample ${k + 1} of ${data.source}: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`, 'runtime');
    }
  };
  // One model at a time: the reference's outputs are kept (they are small), its session released, and
  // only then the candidate loads, so memory never holds both models (a large model's weights twice).
  const a = await createSession(reference, { device: opts.device, ...(opts.mappedReference ? { mappedWeights: true } : {}) });
  const refOut: Array<Record<string, ort.Tensor>> = [];
  let first: Record<string, ort.Tensor> | undefined;
  let refLatency: number;
  let outputNames: readonly string[];
  try {
    outputNames = a.session.outputNames;
    for (const feeds of data.samples()) {
      first ??= feeds;
      refOut.push(await runOn(a.session, reference, feeds, refOut.length));
      ctx.onProgress?.({ stage: 'compare', fraction: refOut.length / (2 * data.count) });
    }
    if (!first) throw new QuantLensError(data.source, 'gave no samples to compare on');
    refLatency = await latency(a.session, first);
  } finally {
    await a.session.release();
  }
  const b = await createSession(candidate, { device: opts.device });
  try {
    const acc = new Map<string, FidelityAccumulator>();
    let count = 0;
    for (const feeds of data.samples()) {
      if (count >= refOut.length) break;
      const rb = await runOn(b.session, candidate, feeds, count);
      for (const name of outputNames) {
        if (!rb[name]) throw new QuantLensError(candidate, `has no output '${name}' (the reference has)`);
        if (!acc.has(name)) acc.set(name, new FidelityAccumulator());
        acc.get(name)!.add(refOut[count][name], rb[name]);
      }
      count++;
      ctx.onProgress?.({ stage: 'compare', fraction: (refOut.length + count) / (2 * data.count) });
    }
    const outputs: CompareReport['outputs'] = {};
    for (const [k, v] of acc) {
      const r = v.result();
      outputs[k] = { ...r, sqnr: capDb(r.sqnr) };
    }
    return {
      outputs,
      latencyMs: { reference: refLatency, candidate: await latency(b.session, first!) },
      sizeBytes: sizes,
      device: b.provider,
      ...(b.fallbackReason ? { fallbackReason: b.fallbackReason } : {}),
      samples: count,
      data: data.source,
      ...(data.warning ? { warning: data.warning.replace('calibrated on', 'compared on') } : {}),
      ...(opts.mappedReference ? { mappedReference: true } : {}),
    };
  } finally {
    await b.session.release();
  }
}
