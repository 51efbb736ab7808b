// Sharded jobs as Slurm job arrays: the scripts (readable, meant to be edited), sbatch submission, and
// the job's state from squeue and the part files.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { QuantLensError } from '../base/errors';
import { AtomicFile } from '../fs/atomic';
import { shellJoin, shellQuote } from './shell';
import { readClusterJob, shardLog, shardsDone, writeClusterJob, type ClusterJob } from './job-dir';
import type { ShardableJob } from './parts';

export interface SlurmOptions {
  partition?: string;
  gpusPerTask?: number;
  cpusPerTask?: number;
  time?: string;
  mem?: string;
  account?: string;
}

export interface ClusterPlan {
  job: ShardableJob;
  args: string[];
  cwd: string;
  shards: number;
  report: string;
  dir: string;
  /** How the shards start QuantLens: the node binary and the CLI script. */
  launcher: { node: string; cli: string };
}

/** Writes a file whole or not at all. */
function writeText(file: string, text: string, mode = 0o644): void {
  const f = new AtomicFile(file);
  try {
    f.write(Buffer.from(text));
    f.commit();
    fs.chmodSync(file, mode);
  } catch (e) {
    f.abort();
    throw e;
  }
}

function directives(o: SlurmOptions): string[] {
  return [
    o.partition && `#SBATCH --partition=${o.partition}`,
    o.account && `#SBATCH --account=${o.account}`,
    o.time && `#SBATCH --time=${o.time}`,
    o.gpusPerTask && `#SBATCH --gpus-per-task=${o.gpusPerTask}`,
    o.cpusPerTask && `#SBATCH --cpus-per-task=${o.cpusPerTask}`,
    o.mem && `#SBATCH --mem=${o.mem}`,
  ].filter((l): l is string => !!l);
}

const launcherLines = (p: ClusterPlan) => [
  '# The QuantLens that wrote this script; set QL_NODE / QL_CLI (or edit these) to use another.',
  `QL_NODE=\${QL_NODE:-${shellQuote(p.launcher.node)}}`,
  `QL_CLI=\${QL_CLI:-${shellQuote(p.launcher.cli)}}`,
];

/** The array job: task I computes shard I/N of the job into parts/part-I.json. */
export function shardsScript(p: ClusterPlan, o: SlurmOptions): string {
  return [
    '#!/bin/bash',
    `# QuantLens ${p.job}, split into ${p.shards} shards: Slurm array task I computes shard I/${p.shards}`,
    `# into parts/part-I.json. Written by \`quantlens submit slurm\`; edit the #SBATCH lines, modules or`,
    '# environment for your site. A failed task can be rerun alone: quantlens submit slurm --rerun THIS_FOLDER.',
    `#SBATCH --job-name=quantlens-${p.job}`,
    `#SBATCH --array=1-${p.shards}`,
    `#SBATCH --output=${path.join(p.dir, 'logs', 'shard-%a.log')}`,
    `#SBATCH --chdir=${p.cwd}`,
    ...directives(o),
    'set -euo pipefail',
    ...launcherLines(p),
    '',
    `exec "$QL_NODE" "$QL_CLI" ${shellJoin(p.args)} \\`,
    `  --shard "$SLURM_ARRAY_TASK_ID/${p.shards}" --part ${shellQuote(path.join(p.dir, 'parts'))}/part-"$SLURM_ARRAY_TASK_ID".json`,
    '',
  ].join('\n');
}

/** The merge job, submitted with --dependency=afterok on the array: it runs only when every shard succeeded. */
export function mergeScript(p: ClusterPlan, o: SlurmOptions): string {
  return [
    '#!/bin/bash',
    `# QuantLens ${p.job}: merges the ${p.shards} parts into ${p.report}, the report one run would write.`,
    '# Submitted with --dependency=afterok:<array job> by submit.sh or `quantlens submit slurm`.',
    `#SBATCH --job-name=quantlens-${p.job}-merge`,
    `#SBATCH --output=${path.join(p.dir, 'logs', 'merge.log')}`,
    `#SBATCH --chdir=${p.cwd}`,
    ...directives({ partition: o.partition, account: o.account }),
    'set -euo pipefail',
    ...launcherLines(p),
    '',
    `exec "$QL_NODE" "$QL_CLI" merge ${shellQuote(path.join(p.dir, 'parts'))}/part-{1..${p.shards}}.json -o ${shellQuote(p.report)}`,
    '',
  ].join('\n');
}

/** submit.sh: what `quantlens submit slurm` runs; people who edit the scripts can run it themselves. */
export function submitScript(): string {
  return [
    '#!/bin/bash',
    '# Submits the array of shards, then the merge job that waits for all of them (afterok).',
    '# Usage: ./submit.sh [ARRAY]   (ARRAY: the tasks to run, e.g. 3 or 2,4; default all)',
    'set -euo pipefail',
    'cd "$(dirname "$0")"',
    'array=$(sbatch --parsable ${1:+--array=$1} shards.sbatch)',
    'array=${array%%;*}',
    'deps=afterok:$array',
    '# A rerun of some shards: the merge also waits for the first submission\'s tasks still running.',
    '[ -n "${QL_AFTER_ANY:-}" ] && deps=$deps,afterany:$QL_AFTER_ANY',
    'merge=$(sbatch --parsable --dependency=$deps merge.sbatch)',
    'echo "array $array"',
    'echo "merge ${merge%%;*}"',
    '',
  ].join('\n');
}

/** Writes the job folder: scripts, job.json, parts/ and logs/. Refuses a folder that holds another job. */
export function writeSlurmJob(p: ClusterPlan, o: SlurmOptions): ClusterJob {
  if (fs.existsSync(path.join(p.dir, 'job.json'))) {
    const prior = readClusterJob(p.dir);
    const running = prior.submissions.length && shardsDone(p.dir, prior.shards).size < prior.shards;
    if (running) throw new QuantLensError(p.dir, 'already holds a job whose shards are not all done (quantlens status DIR; --rerun DIR finishes it; remove the folder to start over)');
  }
  fs.mkdirSync(path.join(p.dir, 'parts'), { recursive: true });
  fs.mkdirSync(path.join(p.dir, 'logs'), { recursive: true });
  for (const f of fs.readdirSync(path.join(p.dir, 'parts'))) fs.rmSync(path.join(p.dir, 'parts', f), { force: true });
  writeText(path.join(p.dir, 'shards.sbatch'), shardsScript(p, o), 0o755);
  writeText(path.join(p.dir, 'merge.sbatch'), mergeScript(p, o), 0o755);
  writeText(path.join(p.dir, 'submit.sh'), submitScript(), 0o755);
  const job: ClusterJob = { quantlens: 'cluster-job', backend: 'slurm', job: p.job, args: p.args, cwd: p.cwd, shards: p.shards, report: p.report, created: Date.now(), submissions: [] };
  writeClusterJob(p.dir, job);
  return job;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException;
        reject(new QuantLensError(undefined, e.code === 'ENOENT' ? `${cmd} was not found: is this a Slurm login node? (--dry-run writes the scripts without submitting)` : `${cmd} ${args.join(' ')} failed: ${(stderr || e.message).trim().split('\n').pop()}`));
      } else resolve(stdout);
    });
  });
}

/** Submits the folder's array (or some of its tasks) and its merge job; returns the job ids. */
export async function submitSlurmJob(dir: string, tasks?: number[]): Promise<ClusterJob['submissions'][number]> {
  const job = readClusterJob(dir);
  const last = job.submissions.at(-1);
  const out = await run('bash', [path.join(dir, 'submit.sh'), ...(tasks ? [tasks.join(',')] : [])], tasks && last ? { QL_AFTER_ANY: last.array } : {});
  const id = (k: string) => /^\d+$/.exec(out.match(new RegExp(`^${k} (\\S+)$`, 'm'))?.[1] ?? '')?.[0];
  const array = id('array'), merge = id('merge');
  if (!array || !merge) throw new QuantLensError(path.join(dir, 'submit.sh'), `did not print the job ids (got: ${out.trim().slice(0, 200)})`);
  const sub = { array, merge, shards: tasks ?? Array.from({ length: job.shards }, (_, i) => i + 1), at: Date.now() };
  writeClusterJob(dir, { ...job, submissions: [...job.submissions, sub] });
  return sub;
}

export type ShardState = 'done' | 'pending' | 'running' | 'failed' | 'not submitted';

export interface ClusterStatus {
  dir: string;
  job: ClusterJob;
  shards: Array<{ index: number; state: ShardState; detail?: string }>;
  merge: { state: 'done' | 'pending' | 'running' | 'failed' | 'waiting' | 'not submitted'; detail?: string };
  /** Every shard done and the report written. */
  complete: boolean;
}

/** Slurm's own word for a job (squeue, then sacct where accounting exists), or undefined once it left. */
async function slurmStates(ids: string[]): Promise<Map<string, string>> {
  const states = new Map<string, string>();
  if (!ids.length) return states;
  // One squeue per id: squeue refuses the whole list when one id has left its memory (MinJobAge).
  const lines = (await Promise.all(ids.map((id) => run('squeue', ['-h', '-r', '-j', id, '-o', '%i %T %r']).catch(() => '')))).join('\n');
  for (const l of lines.split('\n')) {
    const [id, state, ...reason] = l.trim().split(/\s+/);
    if (id && state) states.set(id, `${state}${reason.length && reason[0] !== 'None' ? ` (${reason.join(' ')})` : ''}`);
  }
  return states;
}

const lastLine = (file: string) => {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').filter((l) => l.trim()).pop();
  } catch {
    return undefined;
  }
};

/** Where a job stands: each shard from its part file or squeue, the merge from squeue and the report. */
export async function slurmStatus(dir: string): Promise<ClusterStatus> {
  const job = readClusterJob(dir);
  const last = job.submissions.at(-1);
  // The array id of the newest submission that ran each shard.
  const arrayOf = new Map<number, string>();
  for (const s of job.submissions) for (const i of s.shards) arrayOf.set(i, s.array);
  const states = await slurmStates([...new Set([...arrayOf.values(), ...(last ? [last.merge] : [])])]);
  // The parts after the queue: a task that left the queue wrote its part before it exited, or failed.
  const done = shardsDone(dir, job.shards);
  const shards = Array.from({ length: job.shards }, (_, k) => {
    const index = k + 1;
    if (done.has(index)) return { index, state: 'done' as ShardState };
    const array = arrayOf.get(index);
    if (!array) return { index, state: 'not submitted' as ShardState };
    const s = states.get(`${array}_${index}`) ?? (states.get(array)?.startsWith('PENDING') ? states.get(array) : undefined);
    if (s) return { index, state: (s.startsWith('RUNNING') || s.startsWith('COMPLETING') ? 'running' : 'pending') as ShardState, detail: `${array}_${index} ${s}` };
    const why = lastLine(shardLog(dir, index));
    return { index, state: 'failed' as ShardState, detail: `task ${array}_${index} left the queue without writing its part${why ? `; its log ends: ${why.slice(0, 200)}` : ''} (${shardLog(dir, index)})` };
  });
  const reportFresh = fs.existsSync(job.report) && fs.statSync(job.report).mtimeMs >= job.created;
  let merge: ClusterStatus['merge'];
  if (reportFresh && done.size === job.shards) merge = { state: 'done', detail: job.report };
  else if (!last) merge = { state: 'not submitted' };
  else {
    const s = states.get(last.merge);
    if (s) merge = { state: s.startsWith('RUNNING') ? 'running' : s.includes('Dependency') ? 'waiting' : 'pending', detail: `job ${last.merge} ${s}` };
    else merge = { state: 'failed', detail: `job ${last.merge} left the queue without writing ${job.report}${shards.some((x) => x.state === 'failed') ? ' (a shard failed, so it was cancelled)' : `; ${lastLine(path.join(dir, 'logs', 'merge.log')) ?? 'no log'}`}` };
  }
  return { dir, job, shards, merge, complete: merge.state === 'done' };
}

/** Resubmits the shards that failed (or were never submitted) and a merge that waits for them and the rest. */
export async function rerunSlurmJob(dir: string): Promise<{ tasks: number[]; submission: ClusterJob['submissions'][number] }> {
  const st = await slurmStatus(dir);
  const tasks = st.shards.filter((s) => s.state === 'failed' || s.state === 'not submitted').map((s) => s.index);
  if (!tasks.length) {
    if (st.complete) throw new QuantLensError(dir, `is complete: the report is ${st.job.report}`);
    if (st.shards.every((s) => s.state === 'done') && st.merge.state === 'failed') return { tasks, submission: await submitMergeOnly(dir) };
    throw new QuantLensError(dir, 'has no failed shard to rerun (quantlens status DIR shows where it stands)');
  }
  return { tasks, submission: await submitSlurmJob(dir, tasks) };
}

/** Every part is there but the merge failed or was cancelled: the merge alone. */
async function submitMergeOnly(dir: string): Promise<ClusterJob['submissions'][number]> {
  const job = readClusterJob(dir);
  const out = await run('sbatch', ['--parsable', path.join(dir, 'merge.sbatch')]);
  const sub = { array: job.submissions.at(-1)?.array ?? '', merge: out.trim().split(';')[0], shards: [], at: Date.now() };
  writeClusterJob(dir, { ...job, submissions: [...job.submissions, sub] });
  return sub;
}

/** The job can no longer finish without a rerun: the merge failed, or a shard did (its afterok merge will never run). */
export const jobFailed = (st: ClusterStatus) => !st.complete && (st.merge.state === 'failed' || (st.shards.some((s) => s.state === 'failed') && st.merge.state !== 'running'));

/** Cancels every submission's array and merge (the editor's Cancel). */
export async function cancelSlurmJob(dir: string): Promise<void> {
  const job = readClusterJob(dir);
  const ids = job.submissions.flatMap((s) => [s.array, s.merge]).filter(Boolean);
  if (ids.length) await run('scancel', ids);
}
