import type * as ort from 'onnxruntime-node';
import type { Feeds } from '../calib/data';
import { CancelledError, errorLine, QuantLensError } from '../base/errors';
import type { JobContext } from '../base/jobs';
import type { LoadedModel } from '../onnx/model-io';
import type { ValueInfoProto } from '../onnx/proto';
import { stageVariant } from './staged-copy';
import { elemTypeOf, planSegments, segmentModel } from './segments';
import { createSession, type DevicePreference, type Provider } from './session';
import { latencyStats, type LatencyStats } from './latency';

export interface SegmentedRun {
  /** The graph outputs for each sample, in sample order. */
  outputs: Array<Record<string, ort.Tensor>>;
  /** Sum over segments of each one's median time on the first sample (ms). */
  latencyMs: number;
  segments: number;
  provider: Provider;
  fallbackReason?: string;
}

/**
 * Runs a model a few layers at a time: one onnxruntime session per segment of at most `budgetBytes` of
 * weights, loaded, run on every sample and released before the next loads; the values that cross a cut
 * are kept between segments (activations, small next to the weights). Memory then holds one segment's
 * weights, never the whole model, so a model larger than memory can still be checked. Returns undefined
 * when the graph cannot be cut (not topologically ordered, sparse initializers, one segment anyway).
 */
export async function runSegmented(loaded: LoadedModel, samples: Feeds[], opts: { budgetBytes: number; device?: DevicePreference; mappedWeights?: boolean; latencyRuns?: number; fetch?: string[]; stage?: string }, ctx: JobContext = {}): Promise<SegmentedRun | undefined> {
  const graph = loaded.model.graph!;
  if ((graph.sparse_initializer ?? []).length) return undefined;
  // `fetch`: intermediate values returned with the outputs.
  const inputs = new Set((graph.input ?? []).map((v) => v.name ?? ''));
  const extra = (opts.fetch ?? []).filter((n) => !inputs.has(n));
  const segments = planSegments(graph, opts.budgetBytes, new Set(extra));
  if (!segments || segments.length < 2) return undefined;
  const declared = new Map<string, ValueInfoProto>();
  for (const v of [...(graph.value_info ?? []), ...(graph.output ?? []), ...(graph.input ?? [])]) if (v.type) declared.set(v.name ?? '', v);
  // Values alive between segments, per sample; each is dropped after the last segment that reads it.
  const live: Array<Map<string, ort.Tensor>> = samples.map((s) => new Map(Object.entries(s)));
  const lastRead = new Map<string, number>();
  segments.forEach((s, k) => s.inputs.forEach((i) => lastRead.set(i, k)));
  const graphOutputs = [...new Set([...(graph.output ?? []).map((v) => v.name ?? ''), ...extra])];
  let latencyMs = 0;
  let provider: Provider = 'cpu';
  let fallbackReason: string | undefined;
  for (let k = 0; k < segments.length; k++) {
    if (ctx.signal?.aborted) throw new CancelledError();
    const seg = segments[k];
    const typeOf = (name: string): ValueInfoProto => {
      if (declared.has(name)) return declared.get(name)!;
      const t = live[0]?.get(name);
      return t ? { name, type: { tensor_type: { elem_type: elemTypeOf(t.type) } } } : { name };
    };
    const staged = stageVariant(segmentModel(loaded.model, seg, k, typeOf), loaded);
    try {
      const s = await createSession(staged.source, { device: opts.device, label: loaded.loc.file, ...(opts.mappedWeights ? { mappedWeights: true } : {}) });
      provider = s.provider;
      fallbackReason ??= s.fallbackReason;
      try {
        for (let i = 0; i < samples.length; i++) {
          if (ctx.signal?.aborted) throw new CancelledError();
          const feeds = Object.fromEntries(seg.inputs.map((n) => [n, live[i].get(n)!]));
          let out: Record<string, ort.Tensor>;
          try {
            out = await s.session.run(feeds, seg.outputs);
          } catch (e) {
            throw new QuantLensError(loaded.loc.file, `onnxruntime failed to run layers ${k + 1} of ${segments.length} on sample ${i + 1}: ${errorLine(e)}`, 'runtime');
          }
          for (const [n, t] of Object.entries(out)) live[i].set(n, t);
          if (i === 0 && (opts.latencyRuns ?? 3) > 0) latencyMs += await medianRun(s.session, feeds, seg.outputs, opts.latencyRuns ?? 3);
        }
      } finally {
        await s.session.release();
      }
    } finally {
      staged.cleanup();
    }
    for (const m of live) for (const n of seg.inputs) if (lastRead.get(n) === k && !graphOutputs.includes(n)) m.delete(n);
    ctx.onProgress?.({ stage: opts.stage ?? 'compare', fraction: (k + 1) / segments.length, message: `layers ${k + 1}/${segments.length}` });
  }
  return {
    outputs: live.map((m) => Object.fromEntries(graphOutputs.filter((n) => m.has(n)).map((n) => [n, m.get(n)!]))),
    latencyMs, segments: segments.length, provider, ...(fallbackReason ? { fallbackReason } : {}),
  };
}

/**
 * Median and quartiles of at least `runs` runs (at least one) of `session` on `feeds`, in ms; with a
 * `budgetMs`, more runs while they fit in it (up to 20), so a fast model's spread rests on enough runs.
 */
export async function timedRuns(session: ort.InferenceSession, feeds: Feeds, fetch: readonly string[] | undefined, runs: number, budgetMs = 0): Promise<LatencyStats> {
  const t: number[] = [];
  const start = performance.now();
  for (let i = 0; i < Math.max(1, runs) || (i < 20 && performance.now() - start < budgetMs); i++) {
    const t0 = performance.now();
    await (fetch ? session.run(feeds, fetch) : session.run(feeds));
    t.push(performance.now() - t0);
  }
  return latencyStats(t);
}

/** Median time of `runs` runs (at least one) of `session` on `feeds`, in ms. */
export async function medianRun(session: ort.InferenceSession, feeds: Feeds, fetch: readonly string[] | undefined, runs: number): Promise<number> {
  return (await timedRuns(session, feeds, fetch, runs)).median;
}
