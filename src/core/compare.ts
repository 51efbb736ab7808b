import { openCalibration, type CalibrationData } from './calib/data';
import { CancelledError, QuantLensError } from './errors';
import type { JobContext } from './jobs';
import { FidelityAccumulator } from './metrics';
import { loadModel } from './onnx/model-io';
import { createSession, type DevicePreference, type Provider } from './runtime/session';

export interface CompareOptions {
  /** Calibration-style data folder or `random:N`; default seeded random samples. */
  data?: string;
  samples?: number;
  device?: DevicePreference;
  /** Timed runs per model for latency (median). */
  latencyRuns?: number;
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
}

/** SQNR of identical outputs is infinite; reports cap it at 200 dB (identical within float32). */
const capDb = (v: number) => (Number.isFinite(v) ? Math.min(v, 200) : 200);

/** Runs both models in onnxruntime on the same inputs and measures how far the candidate strays. */
export async function compareModels(reference: string, candidate: string, opts: CompareOptions = {}, ctx: JobContext = {}): Promise<CompareReport> {
  const ref = loadModel(reference);
  const cand = loadModel(candidate);
  const n = opts.samples ?? 8;
  const data: CalibrationData = openCalibration(opts.data ?? `random:${n}`, ref.model.graph!, { maxSamples: n });
  const a = await createSession(reference, { device: opts.device });
  const b = await createSession(candidate, { device: opts.device });
  try {
    const acc = new Map<string, FidelityAccumulator>();
    let first: Record<string, import('onnxruntime-node').Tensor> | undefined;
    let count = 0;
    for (const feeds of data.samples()) {
      if (ctx.signal?.aborted) throw new CancelledError();
      first ??= feeds;
      const runOn = async (s: typeof a.session, file: string) => {
        try {
          return await s.run(feeds);
        } catch (e) {
          throw new QuantLensError(file, `onnxruntime failed to run it on sample ${count + 1} of ${data.source}: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`, 'runtime');
        }
      };
      const [ra, rb] = [await runOn(a.session, reference), await runOn(b.session, candidate)];
      for (const name of a.session.outputNames) {
        if (!rb[name]) throw new QuantLensError(candidate, `has no output '${name}' (the reference has)`);
        if (!acc.has(name)) acc.set(name, new FidelityAccumulator());
        acc.get(name)!.add(ra[name], rb[name]);
      }
      count++;
      ctx.onProgress?.({ stage: 'compare', fraction: count / data.count });
    }
    if (!first) throw new QuantLensError(data.source, 'gave no samples to compare on');
    const runs = Math.max(1, opts.latencyRuns ?? 10);
    const latency = async (s: typeof a.session) => {
      await s.run(first!);
      const t: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        await s.run(first!);
        t.push(performance.now() - t0);
      }
      return t.sort((x, y) => x - y)[Math.floor(t.length / 2)];
    };
    const outputs: CompareReport['outputs'] = {};
    for (const [k, v] of acc) {
      const r = v.result();
      outputs[k] = { ...r, sqnr: capDb(r.sqnr) };
    }
    return {
      outputs,
      latencyMs: { reference: await latency(a.session), candidate: await latency(b.session) },
      sizeBytes: { reference: ref.fileBytes + ref.externalBytes, candidate: cand.fileBytes + cand.externalBytes },
      device: b.provider,
      ...(b.fallbackReason ? { fallbackReason: b.fallbackReason } : {}),
      samples: count,
      data: data.source,
      ...(data.warning ? { warning: data.warning.replace('calibrated on', 'compared on') } : {}),
    };
  } finally {
    await a.session.release();
    await b.session.release();
  }
}

