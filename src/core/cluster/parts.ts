// Part files: what one shard of a job writes, and how `quantlens merge` reads them back.
import fs from 'node:fs';
import { QuantLensError } from '../base/errors';
import { writeJsonAtomic } from '../fs/json';
import type { Shard } from './shard';

export type ShardableJob = 'sensitivity' | 'sweep';
export const SHARDABLE_JOBS: readonly ShardableJob[] = ['sensitivity', 'sweep'];

export interface PartFile<R = unknown> {
  quantlens: 'part';
  version: 1;
  job: ShardableJob;
  /** Hash of the model and the options that change results: the parts of one job share it. */
  key: string;
  shard: Shard;
  /** Where the merged report goes: the file a single run would have written. */
  report: string;
  /** How many pieces (layers, points) the whole job has, and which of them this part holds, in order. */
  total: number;
  pieces: number[];
  /** The shard's own report over its pieces. */
  result: R;
}

/** Default part path beside the report: `X.json` → `X.part-2-of-4.json`. */
export function partPath(report: string, s: Shard): string {
  return `${report.replace(/\.json$/i, '')}.part-${s.index}-of-${s.count}.json`;
}

export function writePart<R>(file: string, p: Omit<PartFile<R>, 'quantlens' | 'version'>): void {
  writeJsonAtomic(file, { quantlens: 'part', version: 1, ...p });
}

/** JSON stores non-finite numbers as strings (writeJsonAtomic): these fields come back as numbers. */
const NUMERIC = new Set(['sensitivity', 'sensitivityDb', 'reverse', 'allQuantized', 'cosine', 'sqnr', 'sum', 'max']);

export function readPart(file: string): PartFile {
  let p: PartFile;
  try {
    p = JSON.parse(fs.readFileSync(file, 'utf8'), (k, v) => (NUMERIC.has(k) && typeof v === 'string' ? Number(v) : v));
  } catch (e) {
    throw new QuantLensError(file, fs.existsSync(file) ? `is not a part file (${e instanceof Error ? e.message.split('\n')[0] : e})` : 'does not exist');
  }
  if (p?.quantlens !== 'part' || !SHARDABLE_JOBS.includes(p.job) || !p.shard || !Array.isArray(p.pieces)) throw new QuantLensError(file, 'is not a QuantLens part file (written by a command run with --shard I/N)');
  if (p.version !== 1) throw new QuantLensError(file, `is a version ${p.version} part file; this QuantLens reads version 1`);
  return p;
}

/**
 * Reads the parts of one job and checks they belong together and are complete: one job, one key (same model
 * and options), one shard count, every shard once, every piece once.
 */
export function readJobParts(files: string[]): PartFile[] {
  if (!files.length) throw new QuantLensError(undefined, 'merge needs the part files of one job (quantlens merge PARTS... [-o OUT])', 'usage');
  const parts = files.map(readPart);
  const first = parts[0];
  parts.forEach((p, i) => {
    if (p.job !== first.job) throw new QuantLensError(files[i], `is a ${p.job} part; ${files[0]} is a ${first.job} part`);
    if (p.key !== first.key) throw new QuantLensError(files[i], `belongs to another job than ${files[0]} (different model or options: key ${p.key.slice(0, 8)} vs ${first.key.slice(0, 8)})`);
    if (p.shard.count !== first.shard.count) throw new QuantLensError(files[i], `is shard ${p.shard.index}/${p.shard.count}; ${files[0]} is of ${first.shard.count} shards`);
  });
  const byIndex = new Map<number, string>();
  parts.forEach((p, i) => {
    const other = byIndex.get(p.shard.index);
    if (other) throw new QuantLensError(files[i], `is shard ${p.shard.index}/${p.shard.count} again (also ${other})`);
    byIndex.set(p.shard.index, files[i]);
  });
  const missing = Array.from({ length: first.shard.count }, (_, i) => i + 1).filter((i) => !byIndex.has(i));
  if (missing.length) throw new QuantLensError(undefined, `the ${first.job} job has ${first.shard.count} shards; missing shard${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (rerun ${missing.length > 1 ? 'them' : 'it'} with --shard ${missing[0]}/${first.shard.count})`);
  const seen = new Set<number>();
  for (const p of parts) for (const i of p.pieces) {
    if (seen.has(i) || i < 0 || i >= first.total) throw new QuantLensError(undefined, `the parts do not split the job's ${first.total} pieces (piece ${i} of shard ${p.shard.index} ${seen.has(i) ? 'twice' : 'out of range'})`);
    seen.add(i);
  }
  if (seen.size !== first.total) throw new QuantLensError(undefined, `the parts hold ${seen.size} of the job's ${first.total} pieces`);
  return [...parts].sort((a, b) => a.shard.index - b.shard.index);
}
