// A cluster job's folder: its scripts, the shards' parts and logs, and job.json (what was submitted).
import fs from 'node:fs';
import path from 'node:path';
import { QuantLensError } from '../base/errors';
import { writeJsonAtomic } from '../fs/json';
import type { ShardableJob } from './parts';

export interface ClusterJob {
  quantlens: 'cluster-job';
  backend: 'slurm' | 'kubernetes';
  job: ShardableJob;
  /** The job's command line after `quantlens` (without --shard/--part), run from `cwd`. */
  args: string[];
  cwd: string;
  shards: number;
  /** The merged report (where a single run would write it), absolute. */
  report: string;
  /** When the scripts were written (ms since the epoch): a report older than this is a previous run's. */
  created: number;
  /** Slurm job ids of each submission, newest last (a rerun adds one). */
  submissions: Array<{ array: string; merge: string; shards: number[]; at: number }>;
}

/** The report a sharded job's request writes (absolute): where a single run of it would write. */
export function reportOf(job: ShardableJob, request: { model: string; options?: object; sweep?: { output?: string } }): string {
  const out = job === 'sensitivity' ? (request.options as { output?: string | null } | undefined)?.output : request.sweep?.output;
  return path.resolve(out ?? `${request.model}.${job}.json`);
}

export const partFile = (dir: string, i: number) => path.join(dir, 'parts', `part-${i}.json`);
export const shardLog = (dir: string, i: number) => path.join(dir, 'logs', `shard-${i}.log`);

export function readClusterJob(dir: string): ClusterJob {
  const file = path.join(dir, 'job.json');
  let j: ClusterJob;
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    throw new QuantLensError(dir, fs.existsSync(dir) ? 'is not a QuantLens cluster job folder (no readable job.json; quantlens submit writes one)' : 'does not exist');
  }
  if (j.quantlens !== 'cluster-job') throw new QuantLensError(file, 'is not a QuantLens cluster job');
  return j;
}

export function writeClusterJob(dir: string, j: ClusterJob): void {
  writeJsonAtomic(path.join(dir, 'job.json'), j);
}

/** Which shards have written their part, 1-based. */
export function shardsDone(dir: string, shards: number): Set<number> {
  return new Set(Array.from({ length: shards }, (_, i) => i + 1).filter((i) => fs.existsSync(partFile(dir, i))));
}
