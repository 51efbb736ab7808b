import type * as ort from 'onnxruntime-node';
import type { CalibrationData, Feeds } from '../calib/data';
import { CancelledError } from '../base/errors';
import { FidelityAccumulator, tensorValues } from '../eval/metrics';
import { isFeatureOutput } from '../eval/output-kind';
import { NsrAccumulator } from '../eval/stats';
import type { Provider } from '../runtime/session';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runUserEvaluator, type UserEvaluator } from '../eval/user-evaluator';
import { saveModel } from '../onnx/model-io';
import { onnx, type ModelProto } from '../onnx/proto';
import { sessionForVariant } from '../runtime/stage-variant';
import { stageVariant } from '../runtime/staged-copy';
import { SessionPool } from '../runtime/session-pool';
import { applyQuantization, type PreparedQuantization } from './prepare';

/** 'task': the headline metric of each output (sequence/CTC agreement for [N, T, C], else top-1 or cosine). */
export type BudgetMetric = 'cosine' | 'top1' | 'task';

/**
 * How far a variant strays from the float model: 1 − cosine, or 1 − top-1 agreement (worst output), or
 * with a user evaluator, how much its metric falls short of the float model's.
 */
export class VariantScorer {
  private floatMetric?: number;
  provider: Provider = 'cpu';
  fallbackReason?: string;

  private constructor(private readonly prep: PreparedQuantization, readonly samples: Feeds[], private readonly reference: Array<Record<string, ort.Tensor>>, readonly metric: BudgetMetric | 'evaluator', private readonly evaluator?: UserEvaluator) {}

  /** With an evaluator, each variant is written to a temp file and the user's command measures it. */
  static async withEvaluator(prep: PreparedQuantization, evaluator: UserEvaluator): Promise<VariantScorer> {
    const s = new VariantScorer(prep, [], [], 'evaluator', evaluator);
    s.floatMetric = await s.evaluate(prep.loaded.model);
    return s;
  }

  private async evaluate(model: ModelProto, signal?: AbortSignal): Promise<number> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-eval-'));
    try {
      const file = path.join(dir, path.basename(this.prep.loaded.loc.file));
      saveModel(model, file, { source: this.prep.loaded.loc });
      return await runUserEvaluator(this.evaluator!, file, signal);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  private pool?: SessionPool;
  private features = new Map<string, boolean>();

  /** Whether an output holds features (judged by cosine alone), decided once per output, not per variant. */
  private isFeature(output: string): boolean {
    if (!this.features.has(output)) this.features.set(output, isFeatureOutput(this.prep.loaded.model.graph!, output));
    return this.features.get(output)!;
  }

  /** Variants then load and run in `workers` worker threads; score() may be called concurrently. */
  startWorkers(workers: number): void {
    if (workers > 1 && !this.evaluator && !this.pool) this.pool = SessionPool.create(this.samples, this.provider, workers, 'all', this.prep.loaded.loc.file);
  }

  get workers(): number {
    return this.pool?.size ?? 1;
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
  }

  static async create(prep: PreparedQuantization, data: CalibrationData, metric: BudgetMetric): Promise<VariantScorer> {
    const samples = [...data.samples()];
    const s = await sessionForVariant(prep.loaded.model, prep.loaded, prep.options.device);
    const reference: Array<Record<string, ort.Tensor>> = [];
    try {
      for (const f of samples) reference.push(await s.session.run(f));
    } finally {
      await s.release();
    }
    const scorer = new VariantScorer(prep, samples, reference, metric);
    scorer.provider = s.provider;
    scorer.fallbackReason = s.fallbackReason;
    return scorer;
  }

  /**
   * Builds the model that quantizes the planned nodes `select` accepts, runs it on the samples and returns
   * its drop, its size and the noise-to-signal ratio Σ(y−ŷ)²/Σy² over all float outputs.
   */
  async score(select: (node: string) => boolean, signal?: AbortSignal, boundaries?: boolean, halfStored?: ReadonlySet<string>): Promise<{ drop: number; sizeBytes: number; nsr: number }> {
    const { model } = await applyQuantization(this.prep, select, { signal, boundaries, halfStored });
    if (this.evaluator) {
      const v = await this.evaluate(model, signal);
      const drop = this.evaluator.lowerIsBetter ? v - this.floatMetric! : this.floatMetric! - v;
      return { drop: Math.max(0, drop), sizeBytes: onnx.ModelProto.encode(model).finish().length, nsr: NaN };
    }
    let outputs: Array<Record<string, ort.Tensor>>;
    let sizeBytes: number;
    if (this.pool) {
      const staged = stageVariant(model, this.prep.loaded);
      try {
        outputs = await this.pool.run(staged.source, signal);
      } finally {
        staged.cleanup();
      }
      sizeBytes = staged.sizeBytes;
    } else {
      const s = await sessionForVariant(model, this.prep.loaded, this.prep.options.device);
      outputs = [];
      try {
        for (const feeds of this.samples) {
          if (signal?.aborted) throw new CancelledError();
          outputs.push(await s.session.run(feeds));
        }
      } finally {
        await s.release();
      }
      sizeBytes = s.sizeBytes;
    }
    return { ...this.fidelityOf(outputs), sizeBytes };
  }

  /**
   * A built variant loaded for timing (idle threads not spinning) and scored on the samples in that same
   * session, so a candidate that is both timed and scored is built and loaded once. The caller releases it.
   */
  async scoredSession(model: ModelProto, signal?: AbortSignal): Promise<{ session: Awaited<ReturnType<typeof sessionForVariant>>; drop: number; nsr: number }> {
    const session = await sessionForVariant(model, this.prep.loaded, this.prep.options.device, undefined, { noSpin: true });
    try {
      const outputs: Array<Record<string, ort.Tensor>> = [];
      for (const feeds of this.samples) {
        if (signal?.aborted) throw new CancelledError();
        outputs.push(await session.session.run(feeds));
      }
      return { session, ...this.fidelityOf(outputs) };
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  /** Drop (1 − the metric, worst output) and noise-to-signal ratio of a variant's outputs on `samples`, in order. */
  fidelityOf(outputs: Array<Record<string, ort.Tensor>>): { drop: number; nsr: number } {
    const acc = new Map<string, FidelityAccumulator>();
    const nsr = new NsrAccumulator();
    for (let i = 0; i < this.samples.length; i++) {
      for (const [k, ref] of Object.entries(this.reference[i])) {
        if (!acc.has(k)) acc.set(k, new FidelityAccumulator(this.isFeature(k)));
        acc.get(k)!.add(ref, outputs[i][k]);
        if (ref.type === 'float32' || ref.type === 'float16') nsr.add(tensorValues(ref), tensorValues(outputs[i][k]));
      }
    }
    const drops = [...acc.values()].map((a) => {
      const r = a.result();
      if (this.metric === 'task') return 1 - r.headline.value;
      return this.metric === 'top1' && r.top1Agreement !== null ? 1 - r.top1Agreement : 1 - r.cosine;
    });
    return { drop: Math.max(0, ...drops), nsr: nsr.value };
  }
}
