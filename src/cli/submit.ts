// `quantlens submit slurm|kubernetes JOB ARGS...` and `quantlens status DIR`: a sharded job on a cluster.
import fs from 'node:fs';
import path from 'node:path';
import { QuantLensError } from '../core/base/errors';
import { commandSpec } from '../core/jobs/options/commands';
import { SHARDABLE_JOBS, type ShardableJob } from '../core/cluster/parts';
import { jobFailed, rerunSlurmJob, slurmStatus, submitSlurmJob, writeSlurmJob, type ClusterPlan, type ClusterStatus } from '../core/cluster/slurm';
import { writeKubernetesJob } from '../core/cluster/kubernetes';
import { reportOf } from '../core/cluster/job-dir';
import { parse, UsageError } from './args';
import { requestFromArgs } from './flags';
import type { JobRequests } from '../core/jobs/requests';

type Out = { stdout: (s: string) => void; stderr: (s: string) => void };

export const SUBMIT_HELP = [
  'usage: quantlens submit slurm [options] JOB JOB-ARGS...      (JOB: sensitivity | sweep)',
  '       quantlens submit slurm --rerun DIR',
  '       quantlens submit kubernetes --image IMG [options] JOB JOB-ARGS...',
  '  runs JOB in N shards (--shard I/N each) and merges their parts into the report one run writes.',
  '  slurm: writes DIR/shards.sbatch (an array job), DIR/merge.sbatch (afterok on the array) and DIR/submit.sh,',
  '  then submits them with sbatch and prints the job ids; kubernetes: writes DIR/job.yaml (an Indexed Job and',
  '  its merge Job) for kubectl. Paths in JOB-ARGS are read from the current folder on the compute nodes.',
  '',
  'options:',
  '    --array N             shards (default 4)',
  '    --dir DIR             the job folder (default REPORT.slurm or REPORT.k8s beside the report)',
  '    --dry-run             write the scripts and print them; submit nothing',
  '    --rerun DIR           resubmit the shards that failed, and a merge that waits for them',
  '  slurm: --partition P, --account A, --time T, --gpus-per-task G, --cpus-per-task C, --mem M (#SBATCH lines)',
  '  kubernetes: --image IMG (node and quantlens on PATH), --claim PVC (default quantlens-work; holds the',
  '    model, data and DIR), --mount-path P (default the current folder), --namespace NS, --gpus-per-task G',
].join('\n');

export const STATUS_HELP = [
  'usage: quantlens status DIR [--wait] [--json]',
  '  where a submitted job stands: each shard (done, pending, running, failed and why), the merge, and the report.',
  '    --wait    poll until the report is written (exit 0) or the job failed (exit 1)',
].join('\n');

const SUBMIT_OPTIONS = {
  array: { type: 'string' }, dir: { type: 'string' }, 'dry-run': { type: 'boolean' }, rerun: { type: 'string' },
  partition: { type: 'string' }, account: { type: 'string' }, time: { type: 'string' }, 'gpus-per-task': { type: 'string' },
  'cpus-per-task': { type: 'string' }, mem: { type: 'string' }, image: { type: 'string' }, claim: { type: 'string' },
  'mount-path': { type: 'string' }, namespace: { type: 'string' },
} as const;

const whole = (flag: string, v: string | undefined, min: number, max: number) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag} must be a whole number in [${min}, ${max}], not '${v}'`);
  return n;
};

/**
 * submit's own flags may come before the job or among its arguments (`submit slurm sensitivity M ... --array 8
 * --dry-run`): they are taken out wherever they are, unless the job has a flag of that name.
 */
function splitArgs(rest: string[]): { own: string[]; at: number; job: string[] } {
  const at = rest.findIndex((a) => (SHARDABLE_JOBS as readonly string[]).includes(a));
  if (at < 0) return { own: rest, at, job: [] };
  const jobFlags = new Set(commandSpec(rest[at])!.options.map((o) => o.flag));
  const own = rest.slice(0, at), job: string[] = [];
  for (let i = at + 1; i < rest.length; i++) {
    const m = /^--([a-z-]+)(=.*)?$/.exec(rest[i]);
    const spec = m && !jobFlags.has(m[1]) ? (SUBMIT_OPTIONS as Record<string, { type: string }>)[m[1]] : undefined;
    if (!spec) {
      job.push(rest[i]);
      continue;
    }
    own.push(rest[i]);
    if (spec.type === 'string' && !m![2] && i + 1 < rest.length) own.push(rest[++i]);
  }
  return { own, at, job };
}

/** The launcher the shards use: this node and this CLI's script, unless QL_NODE / QL_CLI name others (as in the scripts). */
const launcher = () => ({ node: process.env.QL_NODE || process.execPath, cli: path.resolve(process.env.QL_CLI || process.argv[1] || 'quantlens') });

export async function submitCommand(argv: string[], out: Out): Promise<number> {
  const [backend, ...rest] = argv;
  if (!backend || backend === '--help' || backend === '-h') {
    out.stdout(`${SUBMIT_HELP}\n`);
    return backend ? 0 : 2;
  }
  if (backend !== 'slurm' && backend !== 'kubernetes') throw new UsageError(`submit to slurm or kubernetes, not '${backend}'`);
  const { own, at, job: jobArgs } = splitArgs(rest);
  const { values, positionals } = parse(own, SUBMIT_OPTIONS);
  if (positionals.length) throw new UsageError(`'${positionals[0]}' is not a job that can be sharded (${SHARDABLE_JOBS.join(', ')})`);
  if (values.rerun !== undefined) {
    if (backend !== 'slurm') throw new UsageError('--rerun applies to slurm');
    const r = await rerunSlurmJob(values.rerun);
    out.stdout(r.tasks.length ? `resubmitted shard${r.tasks.length > 1 ? 's' : ''} ${r.tasks.join(', ')}: array job ${r.submission.array}, merge job ${r.submission.merge}\n` : `every part is there: merge job ${r.submission.merge}\n`);
    return 0;
  }
  if (at < 0) throw new UsageError(`submit needs the job to run: quantlens submit ${backend} [options] ${SHARDABLE_JOBS.join('|')} MODEL ...`);
  const job = rest[at] as ShardableJob;
  const args = jobArgs;
  if (args.some((a) => /^--(shard|part)(=|$)/.test(a))) throw new UsageError('submit adds --shard and --part to each task: leave them out');
  const { request } = requestFromArgs(commandSpec(job)!, args);
  const model = String(request.model);
  if (!fs.existsSync(model)) throw new QuantLensError(model, 'does not exist');
  if (job === 'sweep' && (request.sweep as { iterative?: boolean })?.iterative) throw new UsageError('cannot split an --iterative sweep: each point prunes the one before');
  const shards = whole('array', values.array, 1, 10000) ?? 4;
  const report = reportOf(job, request as unknown as JobRequests[typeof job]);
  const dir = path.resolve(values.dir ?? `${report.replace(/\.json$/i, '')}.${backend === 'slurm' ? 'slurm' : 'k8s'}`);
  if (!fs.existsSync(path.dirname(dir))) throw new QuantLensError(dir, `folder '${path.dirname(dir)}' does not exist`);
  const plan: ClusterPlan = { job, args: [job, ...args], cwd: process.cwd(), shards, report, dir, launcher: launcher() };
  const gpus = whole('gpus-per-task', values['gpus-per-task'], 0, 64);
  if (backend === 'kubernetes') {
    if (!values.image) throw new UsageError('submit kubernetes needs --image IMG (an image with node and quantlens on PATH)');
    writeKubernetesJob(plan, { image: values.image, claim: values.claim ?? 'quantlens-work', mountPath: values['mount-path'] ?? process.cwd(), gpusPerTask: gpus, namespace: values.namespace });
    out.stdout(`wrote ${path.join(dir, 'job.yaml')}: ${job} in ${shards} shards as an Indexed Job, then its merge (no cluster is contacted; see its header for kubectl)\n`);
    if (values['dry-run']) out.stdout(fs.readFileSync(path.join(dir, 'job.yaml'), 'utf8'));
    return 0;
  }
  writeSlurmJob(plan, { partition: values.partition, account: values.account, time: values.time, gpusPerTask: gpus, cpusPerTask: whole('cpus-per-task', values['cpus-per-task'], 1, 1024), mem: values.mem });
  if (values['dry-run']) {
    for (const f of ['shards.sbatch', 'merge.sbatch']) out.stdout(`# ${path.join(dir, f)}\n${fs.readFileSync(path.join(dir, f), 'utf8')}\n`);
    out.stdout(`# not submitted (--dry-run); to submit: bash ${path.join(dir, 'submit.sh')}\n`);
    return 0;
  }
  const sub = await submitSlurmJob(dir);
  out.stdout(`submitted ${job} of ${model} in ${shards} shards: array job ${sub.array} (tasks 1-${shards}), merge job ${sub.merge} (afterok)\n  folder: ${dir}\n  follow it: quantlens status ${dir} --wait\n`);
  return 0;
}

export function formatStatus(st: ClusterStatus): string {
  const j = st.job;
  const lines = [`${j.job} in ${j.shards} shards (${j.backend}), report ${j.report}`];
  for (const s of st.shards) lines.push(`  shard ${s.index}/${j.shards}: ${s.state}${s.detail ? ` (${s.detail})` : ''}`);
  lines.push(`  merge: ${st.merge.state}${st.merge.detail ? ` (${st.merge.detail})` : ''}`);
  const failed = st.shards.filter((s) => s.state === 'failed').map((s) => s.index);
  if (failed.length) lines.push(`  shard${failed.length > 1 ? 's' : ''} ${failed.join(', ')} failed: quantlens submit slurm --rerun ${st.dir} runs ${failed.length > 1 ? 'them' : 'it'} again and merges`);
  return lines.join('\n');
}


export async function statusCommand(argv: string[], out: Out, signal?: AbortSignal): Promise<number> {
  const { values, positionals } = parse(argv, { wait: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const);
  if (values.help) {
    out.stdout(`${STATUS_HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('status takes the job folder that quantlens submit wrote');
  const dir = positionals[0];
  let st = await slurmStatus(dir);
  while (values.wait && !st.complete && !jobFailed(st)) {
    if (signal?.aborted) break;
    await new Promise((r) => setTimeout(r, 1000));
    st = await slurmStatus(dir);
  }
  out.stdout(values.json ? `${JSON.stringify(st, null, 2)}\n` : `${formatStatus(st)}\n`);
  return st.complete ? 0 : jobFailed(st) ? 1 : 0;
}
