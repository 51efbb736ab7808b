import { isRandomData, METRIC_NAMES, RANDOM_DATA_NOTE } from '../core/eval/metrics';
import { CancelledError, errorLine, QuantLensError } from '../core/base/errors';
import { formatSummary } from '../core/inspect';
import { formatPipelineSummary } from '../core/pipeline/summary';
import { commandSpec } from '../core/jobs/options/commands';
import type { CommandSpec } from '../core/jobs/options/schema';
import { runRequest } from '../core/jobs/handlers';
import type { JobKind, JobRequest, JobRequests, JobResults } from '../core/jobs/requests';
import type { SweepPoint } from '../core/prune/sweep';
import type { Progress } from '../core/base/jobs';
import { formatCompare, formatPruneResult, formatQuantizeResult, formatSensitivity, inputLines } from './format';
import { UsageError } from './args';
import { requestFromArgs } from './flags';
import { commandHelp, USAGE } from './help';
import { STATUS_HELP, statusCommand, SUBMIT_HELP, submitCommand } from './submit';
import pkg from '../../package.json';

type Out = { stdout: (s: string) => void; stderr: (s: string) => void };

const printJson = (out: Out, v: unknown) => out.stdout(JSON.stringify(v, null, 2) + '\n');

/**
 * How each job's result is printed (its request comes from the command's declared options, and the job
 * runs through the same handlers as the engine's).
 */
const present: { [K in JobKind]?: (r: JobResults[K], out: Out, req: JobRequests[K]) => void } = {
  inspect: (summary, out) => out.stdout(('kind' in summary ? formatPipelineSummary(summary) : formatSummary(summary)) + '\n'),
  run(report, out) {
    out.stdout(`${report.model}: ran on ${report.device}${report.fallbackReason ? ` (CUDA unavailable: ${report.fallbackReason})` : ''}, median ${report.latencyMs.toFixed(2)} ms over ${report.runs} runs (${report.warning})\n`);
    out.stdout(inputLines(report.inputShapes, report.chosenDims).join('\n') + '\n');
    for (const [name, s] of Object.entries(report.outputs)) {
      // An empty output (a detector that kept nothing) has no mean or range to print; a string one shows its first strings.
      const strings = s.strings && `${s.strings.map((v) => JSON.stringify(v)).join(', ')}${s.shape.reduce((a, b) => a * b, 1) > s.strings.length ? ', …' : ''}`;
      const stats = s.shape.includes(0) ? 'empty' : strings ?? `mean ${s.mean.toFixed(4)} std ${s.std.toFixed(4)} range [${s.min.toFixed(4)}, ${s.max.toFixed(4)}]${s.finite ? '' : ' (has NaN/Inf)'}`;
      out.stdout(`  ${name}: ${s.type}[${s.shape.join(', ')}] ${stats}\n`);
    }
    for (const name of report.notTensors ?? []) out.stdout(`  ${name}: not a tensor (a sequence, map or optional, which onnxruntime-node cannot return): not fetched\n`);
    const x = report.expected;
    if (x) {
      out.stdout(`  expected outputs (${x.source}): ${x.matches ? 'all match' : 'DIFFER'} (within 1e-3 relative)\n`);
      for (const [name, o] of Object.entries(x.outputs)) out.stdout(`    ${name}: ${o.matches ? 'matches' : 'differs'}, ${o.differingStrings === undefined ? `max |err| ${o.maxAbsError.toPrecision(3)}` : `${o.differingStrings} strings differ`}\n`);
    }
  },
  quantize: (r, out) => out.stdout(formatQuantizeResult(r) + '\n'),
  prune: (r, out) => out.stdout(formatPruneResult(r) + '\n'),
  sweep: (r, out) => out.stdout(`${r.points.length} points in ${r.shard ? `part ${r.shard.index}/${r.shard.count} ${r.shard.part}` : r.report} (models in ${r.folder}/)${r.reused ? `, ${r.reused} reused from the last run of this sweep` : ''}${r.warning ? `\n  warning: ${r.warning}` : ''}\n`),
  compare: (r, out) => out.stdout(formatCompare(r) + '\n'),
  sensitivity: (r, out, req) => out.stdout((r.shard ? `shard ${r.shard.index}/${r.shard.count}: ${r.layers.length} layers measured, part written to ${r.shard.part} (quantlens merge combines the parts)` : formatSensitivity(r, req.options.output ?? `${req.model.replace(/[\\/]+$/, '')}.sensitivity.json`)) + '\n'),
  merge: (r, out) => out.stdout(`wrote ${r.output}: ${r.job} of ${r.pieces} ${r.job === 'sensitivity' ? 'layers' : 'points'} from ${r.shards} shards\n`),
  'qat-plan': (plan, out, req) => out.stdout(`wrote ${req.output}: ${Object.keys(plan.modules).length} modules to fake-quantize, ${plan.float.length} kept float; apply it with python/quantlens_qat.py\n`),
  // The fixture's line goes to stderr: `fixture` is a set-up step whose stdout scripts may pipe.
  fixture: (r, out) => out.stderr(`wrote ${r.output} (${r.fixture}: ${r.description}, ${r.sizeBytes} bytes)\n`),
};

/** `--json` output: the fixture job's result without its description, as the CLI contract has it. */
const jsonOf = (kind: JobKind, r: unknown) => (kind === 'fixture' ? (({ description: _d, ...rest }) => rest)(r as JobResults['fixture']) : r);

/** Runs one command: its flags into the job's request, the job, then its result printed. */
async function runCommand(spec: CommandSpec, args: string[], out: Out): Promise<void> {
  const { request, values } = requestFromArgs(spec, args);
  const ctx = { ...(spec.quiet ? { signal: cliAbort.signal } : progress(out)), ...(spec.job === 'sweep' ? { onProgress: sweepPoints(out, request as unknown as JobRequests['sweep']) } : {}) };
  const result = await runRequest({ kind: spec.job, ...request } as JobRequest, ctx);
  if (values.json) return printJson(out, jsonOf(spec.job, result));
  (present[spec.job] as (r: unknown, o: Out, q: unknown) => void)(result, out, request);
}

/** A sweep's points on stderr as they are measured. */
function sweepPoints(out: Out, req: JobRequests['sweep']) {
  const randomData = isRandomData(req.options.calibration);
  return (p: Progress<SweepPoint>) => {
    const point = p.partial;
    const h = point?.headline && point.headline.metric !== 'cosine' ? `${METRIC_NAMES[point.headline.metric]} ${(point.headline.value * 100).toFixed(2)}% (worst), ` : '';
    if (point) out.stderr(`sparsity ${point.sparsity}: ${h}cosine ${point.cosine.toFixed(5)}, SQNR ${point.sqnr.toFixed(1)} dB, ${point.parameters.toLocaleString('en-US')} parameters, ${point.latencyMs.toFixed(2)} ms${point.metric === undefined ? '' : `, metric ${point.metric}`}${randomData ? ` [${RANDOM_DATA_NOTE}]` : ''}\n`);
  };
}

/**
 * Ctrl-C (SIGINT) and SIGTERM abort the running job through this signal: it stops at its next check, its
 * staging files are removed by the job's own cleanup, and the CLI exits 130 (src/cli/index.ts).
 */
export const cliAbort = new AbortController();
/**
 * Progress on stderr: one line rewritten in place on a terminal; elsewhere (CI logs, pipes) a line per
 * stage, and at most one every 5 s within a stage.
 */
const progress = (out: Out) => {
  let stage = '', at = 0;
  return {
    signal: cliAbort.signal,
    onProgress: (p: { stage: string; message?: string }) => {
      if (process.stderr.isTTY) return out.stderr(`\r${p.stage} ${p.message ?? ''}`.padEnd(60));
      const now = Date.now();
      if (p.stage === stage && now - at < 5000) return;
      stage = p.stage;
      at = now;
      out.stderr(`quantlens: ${p.stage}${p.message ? `: ${p.message}` : ''}\n`);
    },
  };
};

/** Runs the CLI; returns the exit status instead of exiting, so tests can call it in-process. */
export async function main(argv: string[], out: Out = { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) }): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    const help = cmd === 'help' && rest[0] ? commandHelp(rest[0]) ?? ({ submit: SUBMIT_HELP, status: STATUS_HELP } as Record<string, string>)[rest[0]] : undefined;
    out.stdout((help ?? USAGE) + '\n');
    return cmd ? 0 : 2;
  }
  if (cmd === '--version' || cmd === '-V') {
    out.stdout(`quantlens ${pkg.version}\n`);
    return 0;
  }
  const spec = commandSpec(cmd);
  if (spec && (rest.includes('--help') || rest.includes('-h'))) {
    out.stdout(`${commandHelp(cmd) ?? USAGE}\n`);
    return 0;
  }
  try {
    if (cmd === 'submit') return await submitCommand(rest, out);
    if (cmd === 'status') return await statusCommand(rest, out, cliAbort.signal);
    if (!spec) throw new UsageError(`unknown command '${cmd}'`);
    await runCommand(spec, rest, out);
    return 0;
  } catch (e) {
    if (e instanceof CancelledError || cliAbort.signal.aborted) {
      out.stderr('quantlens: cancelled; nothing was written\n');
      return 130;
    }
    if (e instanceof UsageError || (e instanceof QuantLensError && e.kind === 'usage')) {
      out.stderr(`quantlens: ${e instanceof QuantLensError ? errorLine(e) : e.message}\n${USAGE.split('\n')[0]} (quantlens ${cmd} --help for its options)\n`);
      return 2;
    }
    out.stderr(`quantlens: error: ${errorLine(e)}\n`);
    const cause = e instanceof QuantLensError ? e.cause : e;
    if (process.env.QUANTLENS_DEBUG && cause instanceof Error) out.stderr(`${cause.stack}\n`);
    return 1;
  }
}
