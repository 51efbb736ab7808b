// The jobs QuantLens runs, each with its typed request and result: the CLI builds these from its flags
// (options/), the engine receives them as JSON, and both dispatch to the same handlers (handlers.ts).
import type { CompareOptions, CompareReport } from '../compare';
import type { ModelSummary } from '../inspect';
import type { QuantizeOptions } from '../quant/options';
import type { QuantizeResult } from './quantize-model';
import type { SensitivityOptions, SensitivityReport } from '../sensitivity/analyze';
import type { PruneOptions } from '../prune/options';
import type { PruneResult } from '../prune/prune-model';
import type { SweepOptions, SweepPoint, SweepReport } from '../prune/sweep';
import type { RunReport } from '../runtime/run-model';
import type { DevicePreference } from '../runtime/session';
import type { QatPlan } from '../qat/plan';
import type { InputShapes } from '../calib/input-shapes';
import type { MergeResult } from './merge-parts';
import type { PipelineCompareReport } from '../pipeline/compare';
import type { PipelineQuantizeResult } from './quantize-pipeline';
import type { PipelineSummary } from '../pipeline/summary';

export interface JobRequests {
  inspect: { model: string };
  run: { model: string; device?: DevicePreference; runs?: number; inputShapes?: InputShapes; data?: string };
  fixture: { name: string; output: string };
  quantize: { model: string; output: string; options: Partial<QuantizeOptions> };
  compare: { reference: string; candidate: string; options: CompareOptions };
  sensitivity: { model: string; options: SensitivityOptions };
  'qat-plan': { model: string; output: string; options: Partial<QuantizeOptions> };
  prune: { model: string; output: string; options: Partial<PruneOptions>; masks?: string };
  /** Streams each point as a progress event with `partial` set to the SweepPoint. */
  sweep: { model: string; sweep: SweepOptions; options: Partial<PruneOptions> };
  /** The part files of a sharded job into its report. */
  merge: { parts: string[]; output?: string };
  /** Waits `ms` while reporting progress; lets tests exercise cancellation and crashes deterministically. */
  sleep: { ms: number };
}

export interface JobResults {
  inspect: ModelSummary | PipelineSummary;
  run: RunReport;
  fixture: { output: string; sizeBytes: number; fixture: string; description: string };
  quantize: QuantizeResult | PipelineQuantizeResult;
  compare: CompareReport | PipelineCompareReport;
  sensitivity: SensitivityReport;
  'qat-plan': QatPlan;
  prune: PruneResult;
  sweep: SweepReport;
  merge: MergeResult;
  sleep: { sleptMs: number };
}

/** Results a job streams before it ends (Progress.partial), by job; other jobs stream none. */
export interface JobPartials {
  sweep: SweepPoint;
}
export type PartialOf<K> = K extends keyof JobPartials ? JobPartials[K] : never;

export type JobKind = keyof JobRequests;
export type JobRequest = { [K in JobKind]: { kind: K } & JobRequests[K] }[JobKind];
