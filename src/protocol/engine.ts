// Messages between the extension (or any client) and the engine process: one JSON object per line.
import type { CompareOptions, CompareReport } from '../core/compare';
import type { ModelSummary } from '../core/inspect';
import type { QuantizeOptions } from '../core/quant/options';
import type { QuantizeResult } from '../core/jobs/quantize-model';
import type { SensitivityOptions, SensitivityReport } from '../core/sensitivity/analyze';
import type { Progress } from '../core/base/jobs';
import type { PruneOptions } from '../core/prune/options';
import type { PruneResult } from '../core/prune/prune-model';
import type { SweepOptions, SweepReport } from '../core/prune/sweep';
import type { RunReport } from '../core/runtime/run-model';
import type { DevicePreference } from '../core/runtime/session';

/** The jobs the engine runs, each with its typed options. */
export interface JobRequests {
  inspect: { model: string };
  run: { model: string; device?: DevicePreference; runs?: number };
  fixture: { name: string; output: string };
  quantize: { model: string; output: string; options: Partial<QuantizeOptions> };
  compare: { reference: string; candidate: string; options: CompareOptions };
  sensitivity: { model: string; options: SensitivityOptions };
  prune: { model: string; output: string; options: Partial<PruneOptions>; masks?: string };
  /** Streams each point as a progress event with `partial` set to the SweepPoint. */
  sweep: { model: string; sweep: SweepOptions; options: Partial<PruneOptions> };
  /** Waits `ms` while reporting progress; lets tests exercise cancellation and crashes deterministically. */
  sleep: { ms: number };
}

export interface JobResults {
  inspect: ModelSummary;
  run: RunReport;
  fixture: { output: string; sizeBytes: number };
  quantize: QuantizeResult;
  compare: CompareReport;
  sensitivity: SensitivityReport;
  prune: PruneResult;
  sweep: SweepReport;
  sleep: { sleptMs: number };
}

export type JobKind = keyof JobRequests;
export type JobRequest = { [K in JobKind]: { kind: K } & JobRequests[K] }[JobKind];

export type EngineRequest =
  | { type: 'start'; id: number; job: JobRequest }
  | { type: 'cancel'; id: number };

export type EngineEvent =
  | { type: 'ready'; pid: number }
  | { type: 'started'; id: number }
  | { type: 'progress'; id: number; progress: Progress }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; message: string; errorKind: string }
  | { type: 'cancelled'; id: number }
  | { type: 'log'; message: string };

export const JOB_KINDS: readonly JobKind[] = ['inspect', 'run', 'fixture', 'quantize', 'compare', 'sensitivity', 'prune', 'sweep', 'sleep'];

/** Narrows an untrusted parsed line to a request; anything else is rejected by the caller. */
export function isEngineRequest(v: unknown): v is EngineRequest {
  if (!v || typeof v !== 'object') return false;
  const r = v as Record<string, unknown>;
  if (typeof r.id !== 'number') return false;
  if (r.type === 'cancel') return true;
  if (r.type !== 'start' || !r.job || typeof r.job !== 'object') return false;
  return JOB_KINDS.includes((r.job as { kind: JobKind }).kind);
}

export function isEngineEvent(v: unknown): v is EngineEvent {
  return !!v && typeof v === 'object' && typeof (v as { type?: unknown }).type === 'string';
}
