import type { CalibrationData } from '../calib/data';
import { CancelledError, errorLine } from '../base/errors';
import type { JobContext } from '../base/jobs';
import type { ModelProto } from '../onnx/proto';
import type { PreparedQuantization } from '../quant/prepare';
import { VariantScorer } from '../quant/variant-scorer';
import { createSession } from '../runtime/session';
import type { Feeds } from '../calib/data';
import { latencyStats, pairedFaster } from '../runtime/latency';
import type { ModelSession } from '../runtime/session';

export interface TimedVariant<T> {
  item: T;
  /** Median of interleaved runs, batch 1, beside the float model's. */
  latencyMs: number;
  /** Each round's run, ms, in the same rounds as every other variant's (see pairedFaster). */
  runs: number[];
  /** Fidelity against the float model on the samples: 1 − headline metric, and Σ(y−ŷ)²/Σy². */
  drop: number;
  nsr: number;
}

/**
 * What the measured choices (static placement, weight format, dynamic convs) share: each item built into
 * a model, scored against the float model on the samples, then all timed beside the float model in
 * interleaved runs (so drift and neighbours' load fall on all alike). `build` may answer undefined (the
 * item would repeat another). With `refused`, a model onnxruntime refuses is reported there and left out;
 * without, its error ends the search. `first` runs with the scorer before any build (a reference score).
 */
export async function timeVariants<T>(
  input: string, prep: PreparedQuantization, data: CalibrationData, items: T[],
  o: { stage: string; label: (item: T) => string; build: (item: T) => Promise<ModelProto | undefined>; refused?: (item: T, error: string) => void; first?: (scorer: VariantScorer) => Promise<void> },
  ctx: JobContext = {},
): Promise<{ floatMs: number; spread: number; samples: number; timed: Array<TimedVariant<T>> }> {
  const scorer = await VariantScorer.create(prep, data, 'task');
  const float = await createSession(input, { device: prep.options.device, label: input, noSpin: true });
  const built: Array<{ item: T } & Awaited<ReturnType<VariantScorer['scoredSession']>>> = [];
  try {
    await o.first?.(scorer);
    for (const item of items) {
      ctx.onProgress?.({ stage: o.stage, message: `building ${o.label(item)}` });
      const model = await o.build(item);
      if (!model) continue;
      try {
        built.push({ item, ...await scorer.scoredSession(model, ctx.signal) });
      } catch (e) {
        if (e instanceof CancelledError || !o.refused) throw e;
        o.refused(item, errorLine(e));
      }
    }
    ctx.onProgress?.({ stage: o.stage, message: 'timing beside the float model' });
    const { medians, spread, times } = await interleavedLatency([float, ...built.map((b) => b.session)], scorer.samples[0], 4000, ctx.signal);
    return { floatMs: medians[0], spread, samples: scorer.samples.length, timed: built.map((b, i) => ({ item: b.item, latencyMs: medians[i + 1], runs: times[i + 1], drop: b.drop, nsr: b.nsr })) };
  } finally {
    await scorer.close();
    await float.session.release();
    for (const b of built) await b.session.release();
  }
}

/**
 * Times sessions round-robin on one sample (a run of each per round, so drift and neighbours' load fall on
 * all alike) for about `budgetMs`, at least 5 rounds; medians per session, the spread of the first, and
 * every session's runs by round.
 */
export async function interleavedLatency(sessions: ModelSession[], feeds: Feeds, budgetMs = 4000, signal?: AbortSignal): Promise<{ medians: number[]; spread: number; times: number[][] }> {
  const once = async (s: ModelSession) => { const t = performance.now(); await s.session.run(feeds); return performance.now() - t; };
  let round = 0;
  for (const s of sessions) { await once(s); round += await once(s); } // warm-up
  const rounds = Math.max(5, Math.min(50, Math.floor(budgetMs / Math.max(round, 1e-3))));
  const times = sessions.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    if (signal?.aborted) throw new CancelledError();
    for (let i = 0; i < sessions.length; i++) times[i].push(await once(sessions[i]));
  }
  const q = times.map(latencyStats);
  return { medians: q.map((x) => x.median), spread: (q[0].q3 - q[0].q1) / q[0].median, times };
}

/** How much faster (over interleaved rounds, see pairedFaster) a candidate must run to win over another. */
const WIN_MARGIN = 0.05;

/** Whether one candidate ran clearly faster than another, where `candidates[i]` was timed as `timed[i]`. */
export function pairedComparator<C>(candidates: C[], timed: Array<{ runs: number[] }>): (a: C, b: C) => boolean {
  const runs = new Map(candidates.map((c, i) => [c, timed[i].runs]));
  return (a, b) => pairedFaster(runs.get(a)!, runs.get(b)!, WIN_MARGIN);
}
