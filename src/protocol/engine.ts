// Messages between the extension (or any client) and the engine process: one JSON object per line.
import type { Progress } from '../core/base/jobs';
import type { JobKind, JobRequest } from '../core/jobs/requests';

export type { JobKind, JobPartials, JobRequest, JobRequests, JobResults, PartialOf } from '../core/jobs/requests';

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

/** Narrows an untrusted parsed line to a request for one of `kinds` (the engine's handler table); anything else is rejected by the caller. */
export function isEngineRequest(v: unknown, kinds: readonly JobKind[]): v is EngineRequest {
  if (!v || typeof v !== 'object') return false;
  const r = v as Record<string, unknown>;
  if (typeof r.id !== 'number') return false;
  if (r.type === 'cancel') return true;
  if (r.type !== 'start' || !r.job || typeof r.job !== 'object') return false;
  return kinds.includes((r.job as { kind: JobKind }).kind);
}

export function isEngineEvent(v: unknown): v is EngineEvent {
  return !!v && typeof v === 'object' && typeof (v as { type?: unknown }).type === 'string';
}
