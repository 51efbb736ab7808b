// Sharding a job's independent pieces (sensitivity layers, sweep points) over N processes: which pieces a
// shard owns, and the key that ties the shards of one job together.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { QuantLensError } from '../base/errors';

/** `--shard I/N`: this process computes the I-th of N shares (1-based, as Slurm array ids and humans count). */
export interface Shard {
  index: number;
  count: number;
}

export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new QuantLensError(undefined, `--shard must be I/N with 1 <= I <= N (e.g. 2/4), not '${text}'`, 'usage');
  return { index, count };
}

/**
 * Which shard (1-based) runs each piece, balancing the pieces' costs: the costliest piece goes to the
 * least loaded shard first (longest-processing-time), ties by position, so every shard computes the same
 * assignment from the same model and options without talking to the others.
 */
export function assignShards(costs: number[], count: number): number[] {
  const load = new Array<number>(count).fill(0);
  const owner = new Array<number>(costs.length).fill(0);
  const order = [...costs.keys()].sort((a, b) => costs[b] - costs[a] || a - b);
  for (const i of order) {
    let best = 0;
    for (let s = 1; s < count; s++) if (load[s] < load[best]) best = s;
    owner[i] = best + 1;
    load[best] += Math.max(costs[i], 1e-9);
  }
  return owner;
}

/** The pieces (indices) shard `s` owns. */
export function shareOf(costs: number[], s: Shard): number[] {
  const owner = assignShards(costs, s.count);
  return [...owner.keys()].filter((i) => owner[i] === s.index);
}

/**
 * The job key each part carries: a hash of the model's bytes (and its external data files' sizes) and the
 * options that change results; merge refuses parts whose keys differ.
 */
export function jobKey(modelPath: string, options: unknown, extraFiles: string[] = []): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(modelPath, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  for (const f of extraFiles) h.update(`\0${f}:${fs.existsSync(f) ? fs.statSync(f).size : -1}`);
  h.update(`\0${stableJson(options)}`);
  return h.digest('hex').slice(0, 32);
}

/** JSON with sorted keys, so option objects built in a different order hash the same. */
function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}
