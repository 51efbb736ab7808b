import { HEADLINE_METRICS, isRandomData, METRIC_NAMES, RANDOM_DATA_NOTE } from '../core/eval/metrics';
import { CancelledError, errorLine, QuantLensError } from '../core/base/errors';
import { formatSummary, summarizeModel } from '../core/inspect';
import { loadModel } from '../core/onnx/model-io';
import { runModel } from '../core/runtime/run-model';
import type { DevicePreference } from '../core/runtime/session';
import { USAGE } from './usage';
import { compareModels } from '../core/compare';
import type { QuantizeOptions } from '../core/quant/options';
import { quantizeModel } from '../core/jobs/quantize-model';
import { writeFixture } from '../core/jobs/fixture';
import { formatCompare, formatPruneResult, formatQuantizeResult, formatSensitivity, inputLines } from './format';
import { parseInputShape } from '../core/calib/input-shapes';
import { pruneModel } from '../core/prune/prune-model';
import { sweepModel, type SweepPoint } from '../core/prune/sweep';
import { parsePattern, type PruneOptions } from '../core/prune/options';
import { analyzeSensitivity, type SensitivityMethod } from '../core/sensitivity/analyze';
import { buildQatPlan } from '../core/qat/plan';

import { commandHelp, parse, refuseInapplicable, UsageError } from './args';
import pkg from '../../package.json';

type Out = { stdout: (s: string) => void; stderr: (s: string) => void };

function onePositional(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected one ${what}, got ${positionals.length}`);
  return positionals[0];
}

const printJson = (out: Out, v: unknown) => out.stdout(JSON.stringify(v, null, 2) + '\n');

const commands: Record<string, (args: string[], out: Out) => Promise<void>> = {
  async inspect(args, out) {
    const { values, positionals } = parse(args, { json: { type: 'boolean' } });
    const summary = summarizeModel(loadModel(onePositional(positionals, 'MODEL')));
    if (values.json) printJson(out, summary);
    else out.stdout(formatSummary(summary) + '\n');
  },

  async run(args, out) {
    const { values, positionals } = parse(args, { json: { type: 'boolean' }, device: { type: 'string', default: 'auto' }, runs: { type: 'string', default: '3' }, 'input-shape': { type: 'string', multiple: true } });
    const device = values.device as string;
    if (!['auto', 'cpu', 'cuda'].includes(device)) throw new UsageError(`--device must be auto, cpu or cuda, not '${device}'`);
    const runs = Number(values.runs);
    if (!Number.isInteger(runs) || runs < 1) throw new UsageError(`--runs must be a positive integer, not '${values.runs}'`);
    const report = await runModel(onePositional(positionals, 'MODEL'), { device: device as DevicePreference, runs, inputShapes: inputShapesFrom(values['input-shape']) });
    if (values.json) return printJson(out, report);
    out.stdout(`${report.model}: ran on ${report.device}${report.fallbackReason ? ` (CUDA unavailable: ${report.fallbackReason})` : ''}, median ${report.latencyMs.toFixed(2)} ms over ${report.runs} runs (${report.warning})\n`);
    out.stdout(inputLines(report.inputShapes, report.chosenDims).join('\n') + '\n');
    for (const [name, s] of Object.entries(report.outputs)) {
      out.stdout(`  ${name}: ${s.type}[${s.shape.join(', ')}] mean ${s.mean.toFixed(4)} std ${s.std.toFixed(4)} range [${s.min.toFixed(4)}, ${s.max.toFixed(4)}]${s.finite ? '' : ' (has NaN/Inf)'}\n`);
    }
  },

  async quantize(args, out) {
    const { values, positionals } = parse(args, {
      output: { type: 'string', short: 'o' }, mode: { type: 'string', default: 'weight' }, bits: { type: 'string' },
      'block-size': { type: 'string' }, algorithm: { type: 'string' }, 'per-channel': { type: 'boolean' }, 'per-tensor': { type: 'boolean' },
      symmetric: { type: 'boolean' }, calibration: { type: 'string' }, 'calibration-method': { type: 'string' }, percentile: { type: 'string' },
      samples: { type: 'string' }, 'act-order': { type: 'boolean' }, exclude: { type: 'string', multiple: true }, 'no-smooth': { type: 'boolean' }, 'static-ops': { type: 'string' }, 'reduce-range': { type: 'string' }, objective: { type: 'string' }, 'input-shape': { type: 'string', multiple: true },
      budget: { type: 'string' }, 'budget-metric': { type: 'string' }, progressive: { type: 'boolean' }, steps: { type: 'string' },
      evaluator: { type: 'string' }, 'lower-is-better': { type: 'boolean' }, 'evaluator-timeout': { type: 'string' }, recipe: { type: 'string' }, device: { type: 'string' },
      json: { type: 'boolean' },
    });
    const model = onePositional(positionals, 'MODEL');
    if (!values.output) throw new UsageError('quantize needs -o OUT');
    if (values['per-channel'] && values['per-tensor']) throw new UsageError('choose one of --per-channel and --per-tensor');
    const mode = values.mode as string;
    // A recipe can give modules other modes and bits: the mode-specific flags are then not checked here.
    const recipe = values.recipe !== undefined;
    const staticOnly = !recipe && mode !== 'static';
    refuseInapplicable(values, [
      ['bits', values.bits === '4' && !recipe && mode !== 'weight', `4 applies to --mode weight only (MatMulNBits); --mode ${mode} is 8-bit`],
      ['block-size', values.bits !== '4' && !recipe, 'applies to --bits 4 only (MatMulNBits blocks)'],
      ['algorithm', values.algorithm === 'gptq' && !recipe && !(mode === 'weight' && values.bits === '4'), 'gptq applies to --mode weight --bits 4 only'],
      ['act-order', values.algorithm !== 'gptq', 'applies to --algorithm gptq only'],
      ['calibration-method', staticOnly, `applies to --mode static only (--mode ${mode} calibrates no activation ranges)`],
      ['percentile', values['calibration-method'] !== 'percentile', 'applies to --calibration-method percentile only'],
      ['static-ops', staticOnly, `applies to --mode static only, not --mode ${mode}`],
      ['objective', staticOnly, `applies to --mode static only (it chooses where Q/DQ go), not --mode ${mode}`],
      ['no-smooth', staticOnly, `applies to --mode static only, not --mode ${mode}`],
      ['reduce-range', !recipe && mode === 'weight', 'applies to --mode static and dynamic (integer kernels), not --mode weight'],
      ['budget-metric', values.budget === undefined && !values.progressive, 'applies with --budget or --progressive only'],
      ['steps', !values.progressive, 'applies with --progressive only'],
      ['evaluator', values.budget === undefined && !values.progressive, 'applies with --budget or --progressive only (it scores mixed-precision variants)'],
      ['lower-is-better', values.evaluator === undefined, 'applies with --evaluator only'],
      ['evaluator-timeout', values.evaluator === undefined, 'applies with --evaluator only'],
    ]);
    const num = numFlag;
    const oneOf = oneOfFlag;
    const options: Partial<QuantizeOptions> = {
      mode: oneOf('mode', values.mode, ['weight', 'dynamic', 'static'] as const),
      bits: num('bits', values.bits) as 8 | 4 | undefined,
      blockSize: num('block-size', values['block-size']),
      algorithm: oneOf('algorithm', values.algorithm, ['rtn', 'gptq'] as const),
      perChannel: values['per-tensor'] ? false : values['per-channel'] ? true : undefined,
      symmetric: values.symmetric,
      calibration: values.calibration,
      calibrationMethod: oneOf('calibration-method', values['calibration-method'], ['minmax', 'percentile', 'entropy', 'mse'] as const),
      percentile: num('percentile', values.percentile),
      smoothing: values['no-smooth'] ? 'off' : undefined,
      staticOps: oneOf('static-ops', values['static-ops'], ['auto', 'compute', 'residual', 'all'] as const),
      objective: oneOf('objective', values.objective, ['latency', 'size', 'accuracy'] as const),
      reduceRange: oneOf('reduce-range', values['reduce-range'], ['auto', 'on', 'off'] as const),
      maxSamples: num('samples', values.samples),
      gptqActOrder: values['act-order'],
      budget: num('budget', values.budget),
      budgetMetric: oneOf('budget-metric', values['budget-metric'], ['cosine', 'top1', 'task'] as const),
      progressive: values.progressive,
      progressiveSteps: num('steps', values.steps),
      evaluator: values.evaluator,
      evaluatorLowerIsBetter: values['lower-is-better'],
      evaluatorTimeoutSeconds: num('evaluator-timeout', values['evaluator-timeout']),
      exclude: values.exclude,
      recipe: values.recipe,
      device: oneOf('device', values.device, ['auto', 'cpu', 'cuda'] as const),
      inputShapes: inputShapesFrom(values['input-shape']),
    };
    const r = await quantizeModel(model, values.output, options, progress(out));
    if (values.json) return printJson(out, r);
    out.stdout(formatQuantizeResult(r) + '\n');
  },

  async prune(args, out) {
    const { values, positionals } = parse(args, { ...PRUNE_FLAGS, sparsity: { type: 'string' }, pattern: { type: 'string' }, masks: { type: 'string' } });
    const model = onePositional(positionals, 'MODEL');
    if (!values.output) throw new UsageError('prune needs -o OUT');
    refusePruneInapplicable(values);
    const r = await pruneModel(model, values.output, pruneOptionsFrom(values), progress(out), { masks: values.masks });
    if (values.json) return printJson(out, r);
    out.stdout(formatPruneResult(r) + '\n');
  },

  async sweep(args, out) {
    const { values, positionals } = parse(args, {
      ...PRUNE_FLAGS, sparsities: { type: 'string' }, iterative: { type: 'boolean' },
      evaluator: { type: 'string' }, 'lower-is-better': { type: 'boolean' }, 'evaluator-timeout': { type: 'string' },
    });
    const model = onePositional(positionals, 'MODEL');
    if (!values.sparsities) throw new UsageError('sweep needs --sparsities, e.g. 0.1,0.3,0.5');
    refusePruneInapplicable(values);
    refuseInapplicable(values, [['lower-is-better', values.evaluator === undefined, 'applies with --evaluator only'], ['evaluator-timeout', values.evaluator === undefined, 'applies with --evaluator only']]);
    const sparsities = values.sparsities.split(',').map((v) => {
      const n = Number(v.trim());
      if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--sparsities takes numbers separated by commas, not '${values.sparsities}'`);
      return n;
    });
    const timeout = values['evaluator-timeout'] === undefined ? undefined : Number(values['evaluator-timeout']);
    const evaluator = values.evaluator ? { command: values.evaluator, lowerIsBetter: values['lower-is-better'], timeoutSeconds: timeout } : undefined;
    const randomData = isRandomData(values.calibration);
    const r = await sweepModel(model, { sparsities, iterative: values.iterative, output: values.output, evaluator }, pruneOptionsFrom(values), {
      signal: cliAbort.signal,
      onProgress: (p) => {
        const point = p.partial as SweepPoint | undefined;
        const h = point?.headline && point.headline.metric !== 'cosine' ? `${METRIC_NAMES[point.headline.metric]} ${(point.headline.value * 100).toFixed(2)}% (worst), ` : '';
        if (point) out.stderr(`sparsity ${point.sparsity}: ${h}cosine ${point.cosine.toFixed(5)}, SQNR ${point.sqnr.toFixed(1)} dB, ${point.parameters.toLocaleString('en-US')} parameters, ${point.latencyMs.toFixed(2)} ms${point.metric === undefined ? '' : `, metric ${point.metric}`}${randomData ? ` [${RANDOM_DATA_NOTE}]` : ''}\n`);
      },
    });
    if (values.json) return printJson(out, r);
    out.stdout(`${r.points.length} points in ${r.report} (models in ${r.folder}/)${r.reused ? `, ${r.reused} reused from the last run of this sweep` : ""}${r.warning ? `\n  warning: ${r.warning}` : ''}\n`);
  },

  async compare(args, out) {
    const { values, positionals } = parse(args, { data: { type: 'string' }, samples: { type: 'string' }, device: { type: 'string', default: 'auto' }, metric: { type: 'string' }, json: { type: 'boolean' }, 'input-shape': { type: 'string', multiple: true } });
    if (positionals.length !== 2) throw new UsageError(`compare takes REFERENCE and CANDIDATE, got ${positionals.length} paths`);
    const samples = values.samples === undefined ? undefined : Number(values.samples);
    if (samples !== undefined && !(Number.isInteger(samples) && samples > 0)) throw new UsageError(`--samples must be a positive integer, not '${values.samples}'`);
    if (!['auto', 'cpu', 'cuda'].includes(values.device as string)) throw new UsageError(`--device must be auto, cpu or cuda`);
    const metric = oneOfFlag('metric', values.metric, HEADLINE_METRICS);
    const r = await compareModels(positionals[0], positionals[1], { data: values.data, samples, device: values.device as DevicePreference, metric, inputShapes: inputShapesFrom(values['input-shape']) }, { signal: cliAbort.signal });
    if (values.json) return printJson(out, r);
    out.stdout(formatCompare(r) + '\n');
  },

  async sensitivity(args, out) {
    const { values, positionals } = parse(args, {
      calibration: { type: 'string' }, method: { type: 'string', default: 'local' }, mode: { type: 'string', default: 'static' }, bits: { type: 'string' },
      'block-size': { type: 'string' }, 'calibration-method': { type: 'string' }, samples: { type: 'string' }, exclude: { type: 'string', multiple: true },
      output: { type: 'string', short: 'o' }, device: { type: 'string' }, json: { type: 'boolean' }, workers: { type: 'string' }, 'input-shape': { type: 'string', multiple: true },
    });
    const model = onePositional(positionals, 'MODEL');
    if (values.workers !== undefined && !(Number.isInteger(Number(values.workers)) && Number(values.workers) >= 1 && Number(values.workers) <= 64)) throw new UsageError(`--workers must be a whole number from 1 to 64, not '${values.workers}'`);
    if (!['local', 'end-to-end'].includes(values.method as string)) throw new UsageError(`--method must be local or end-to-end, not '${values.method}'`);
    if (!['weight', 'dynamic', 'static'].includes(values.mode as string)) throw new UsageError(`--mode must be weight, dynamic or static, not '${values.mode}'`);
    oneOfFlag('calibration-method', values['calibration-method'], ['minmax', 'percentile', 'entropy', 'mse'] as const);
    oneOfFlag('bits', values.bits, ['8', '4'] as const);
    refuseInapplicable(values, [
      ['bits', values.bits === '4' && values.mode !== 'weight', `4 applies to --mode weight only; --mode ${values.mode} is 8-bit`],
      ['block-size', values.bits !== '4', 'applies to --bits 4 only'],
      ['calibration-method', values.mode !== 'static', `applies to --mode static only, not --mode ${values.mode}`],
      ['workers', values.method !== 'end-to-end', 'applies to --method end-to-end only'],
    ]);
    const n = (v: string | undefined) => (v === undefined ? undefined : Number(v));
    const r = await analyzeSensitivity(model, {
      method: values.method as SensitivityMethod, mode: values.mode as QuantizeOptions['mode'], bits: n(values.bits) as 8 | 4 | undefined,
      blockSize: n(values['block-size']), calibration: values.calibration, calibrationMethod: values['calibration-method'] as QuantizeOptions['calibrationMethod'],
      maxSamples: n(values.samples), exclude: values.exclude, output: values.output, device: values.device as DevicePreference | undefined, workers: n(values.workers),
      inputShapes: inputShapesFrom(values['input-shape']),
    }, progress(out));
    if (values.json) return printJson(out, r);
    out.stdout(formatSensitivity(r, values.output ?? `${model}.sensitivity.json`) + '\n');
  },

  async 'qat-plan'(args, out) {
    const { values, positionals } = parse(args, {
      output: { type: 'string', short: 'o' }, calibration: { type: 'string' }, mode: { type: 'string', default: 'static' }, bits: { type: 'string' },
      'per-tensor': { type: 'boolean' }, symmetric: { type: 'boolean' }, 'calibration-method': { type: 'string' }, samples: { type: 'string' },
      exclude: { type: 'string', multiple: true }, recipe: { type: 'string' }, json: { type: 'boolean' },
    });
    const model = onePositional(positionals, 'MODEL');
    if (!values.output) throw new UsageError('qat-plan needs -o PLAN.json');
    const n = (v: string | undefined) => (v === undefined ? undefined : Number(v));
    const plan = await buildQatPlan(model, values.output, {
      mode: values.mode as QuantizeOptions['mode'], bits: n(values.bits) as 8 | 4 | undefined, perChannel: values['per-tensor'] ? false : undefined,
      symmetric: values.symmetric, calibration: values.calibration, calibrationMethod: values['calibration-method'] as QuantizeOptions['calibrationMethod'],
      maxSamples: n(values.samples), exclude: values.exclude, recipe: values.recipe,
    }, progress(out));
    if (values.json) return printJson(out, plan);
    out.stdout(`wrote ${values.output}: ${Object.keys(plan.modules).length} modules to fake-quantize, ${plan.float.length} kept float; apply it with python/quantlens_qat.py\n`);
  },

  async fixture(args, out) {
    const { values, positionals } = parse(args, { output: { type: 'string', short: 'o' }, json: { type: 'boolean' } });
    const name = onePositional(positionals, 'NAME');
    if (!values.output) throw new UsageError('fixture needs -o OUT');
    const r = writeFixture(name, values.output);
    if (values.json) printJson(out, { output: r.output, sizeBytes: r.sizeBytes, fixture: name });
    else out.stderr(`wrote ${r.output} (${name}: ${r.description}, ${r.sizeBytes} bytes)\n`);
  },
};

const PLANNED: string[] = [];

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

/** The flags `prune` and `sweep` share (pruneOptionsFrom reads them). */
const PRUNE_FLAGS = {
  output: { type: 'string', short: 'o' }, method: { type: 'string', default: 'magnitude' }, scope: { type: 'string' }, importance: { type: 'string' },
  'min-density': { type: 'string' }, calibration: { type: 'string' }, samples: { type: 'string' }, reconstruct: { type: 'boolean' },
  exclude: { type: 'string', multiple: true }, device: { type: 'string' }, json: { type: 'boolean' }, 'round-to': { type: 'string' },
  'prune-norm': { type: 'boolean' }, 'no-compensate': { type: 'boolean' }, allocation: { type: 'string' }, 'input-shape': { type: 'string', multiple: true },
} as const;

/** Prune and sweep flags that do nothing under the chosen --method. */
function refusePruneInapplicable(values: Record<string, unknown>): void {
  const method = (values.method as string) ?? 'magnitude';
  const on = `not --method ${method}`;
  refuseInapplicable(values, [
    ['pattern', method !== 'nm', `applies to --method nm only, ${on}`],
    ['sparsity', method === 'nm', 'does not apply to --method nm (--pattern N:M sets it)'],
    ['scope', method !== 'magnitude', `applies to --method magnitude only, ${on}`],
    ['min-density', method !== 'magnitude', `applies to --method magnitude only, ${on}`],
    ['round-to', method !== 'structured', `applies to --method structured only, ${on}`],
    ['prune-norm', method !== 'structured', `applies to --method structured only, ${on}`],
    ['no-compensate', method !== 'structured', `applies to --method structured only, ${on}`],
    ['allocation', method !== 'structured', `applies to --method structured only, ${on}`],
  ]);
}

/** A numeric flag's value, or a usage error naming the flag. */
function numFlag(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${flag} takes a number, not '${v}'`);
  return n;
}

function oneOfFlag<T extends string>(flag: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw new UsageError(`--${flag} must be ${allowed.join(', ')}, not '${v}'`);
  return v as T;
}

function usage(message: string): never {
  throw new UsageError(message);
}

/** Typed prune options from the flags `prune` and `sweep` share. */
function pruneOptionsFrom(values: Record<string, string | boolean | string[] | undefined>): Partial<PruneOptions> {
  const str = (k: string) => values[k] as string | undefined;
  const num = (flag: string) => numFlag(flag, str(flag));
  const oneOf = <T extends string>(flag: string, allowed: readonly T[]) => oneOfFlag(flag, str(flag), allowed);
  return {
    method: oneOf('method', ['magnitude', 'nm', 'structured'] as const),
    sparsity: num('sparsity'),
    scope: oneOf('scope', ['global', 'lamp', 'layer'] as const),
    pattern: str('pattern') === undefined ? undefined : parsePattern(str('pattern')!),
    importance: oneOf('importance', ['l1', 'l2', 'activation'] as const),
    minDensity: num('min-density'),
    calibration: str('calibration'),
    maxSamples: num('samples'),
    reconstruct: values.reconstruct as boolean | undefined,
    roundTo: str('round-to') === 'auto' ? 'auto' : str('round-to') !== undefined && !Number.isFinite(Number(str('round-to'))) ? usage(`--round-to takes auto or a whole number, not '${str('round-to')}'`) : num('round-to'),
    pruneNormalized: values['prune-norm'] as boolean | undefined,
    compensate: values['no-compensate'] ? false : undefined,
    allocation: oneOf('allocation', ['uniform', 'global'] as const),
    exclude: values.exclude as string[] | undefined,
    device: oneOf('device', ['auto', 'cpu', 'cuda'] as const),
    inputShapes: inputShapesFrom(values['input-shape'] as string[] | undefined),
  };
}

/** `--input-shape x=1x3x48x320` (repeatable) → shapes by input name. */
function inputShapesFrom(list: string[] | undefined): Record<string, number[]> | undefined {
  if (!list?.length) return undefined;
  return Object.fromEntries(list.map((t) => parseInputShape(t)));
}

/** Runs the CLI; returns the exit status instead of exiting, so tests can call it in-process. */
export async function main(argv: string[], out: Out = { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) }): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    const help = cmd === 'help' && rest[0] ? commandHelp(rest[0]) : undefined;
    out.stdout((help ?? USAGE) + '\n');
    return cmd ? 0 : 2;
  }
  if (cmd === '--version' || cmd === '-V') {
    out.stdout(`quantlens ${pkg.version}\n`);
    return 0;
  }
  if (commands[cmd] && (rest.includes('--help') || rest.includes('-h'))) {
    out.stdout(`${commandHelp(cmd) ?? USAGE}\n`);
    return 0;
  }
  try {
    const handler = commands[cmd];
    if (!handler) {
      if (PLANNED.includes(cmd)) throw new QuantLensError(undefined, `'${cmd}' is not implemented yet in this version`);
      throw new UsageError(`unknown command '${cmd}'`);
    }
    await handler(rest, out);
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
    if (process.env.QUANTLENS_DEBUG && e instanceof Error && !(e instanceof QuantLensError)) out.stderr(`${e.stack}\n`);
    return 1;
  }
}
