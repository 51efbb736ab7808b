import { HEADLINE_METRICS } from '../../eval/metrics';
import { DEFAULT_QUANTIZE_OPTIONS } from '../../quant/options';
import { SPLIT_SAMPLES } from '../../sensitivity/split';
import { FIXTURE_NAMES } from '../../fixtures';
import type { JobKind, JobRequests } from '../requests';
import { commonOptions } from './common';
import { MODE_CHOICES, QUANTIZE, scheme } from './quantize';
import { PRUNE, SWEEP } from './prune';
import { checkRequest, type CommandSpec, type Declared, type OptionSpec } from './schema';

const INSPECT: CommandSpec = {
  command: 'inspect', job: 'inspect', quiet: true, positionals: [{ name: 'MODEL', target: 'model' }],
  summary: ['describe a model: opset, operators, parameters, inputs/outputs, size'],
  options: [commonOptions<JobRequests['inspect']>().json()],
};

const r = commonOptions<JobRequests['run']>();
const RUN: CommandSpec = {
  command: 'run', job: 'run', quiet: true, positionals: [{ name: 'MODEL', target: 'model' }],
  summary: ['run the model in onnxruntime on seeded random inputs (or the first sample of --data); says which sizes its', 'dynamic dimensions ran with, and whether an ONNX test case\'s expected outputs came out'],
  options: [
    { flag: 'data', kind: 'text', target: 'data', metavar: 'DIR', help: 'run on the first sample of this data (as --calibration reads it) instead of random inputs; an ONNX test case (test_data_set_N/ with output_K.pb) is checked against its expected outputs' },
    r.device('device', 'auto'),
    { flag: 'runs', kind: 'number', range: { min: 1, whole: true }, target: 'runs', default: 3, metavar: 'N', help: 'timed runs (the median is reported)' },
    r.inputShape('inputShapes'),
    r.json(),
  ] satisfies Array<Declared<JobRequests['run']>>,
};

const FIXTURE: CommandSpec = {
  command: 'fixture', job: 'fixture', quiet: true, positionals: [{ name: 'NAME', target: 'name' }],
  required: [{ flag: 'output', message: 'fixture needs -o OUT' }],
  summary: [`write a built-in sample model: ${FIXTURE_NAMES.join(' | ')}`],
  options: [commonOptions<JobRequests['fixture']>().output('output', 'OUT', 'where the model goes'), commonOptions<JobRequests['fixture']>().json()],
};

const cc = commonOptions<JobRequests['compare']>();
const COMPARE: CommandSpec = {
  command: 'compare', job: 'compare', quiet: true, positionals: [{ name: 'REFERENCE', target: 'reference' }, { name: 'CANDIDATE', target: 'candidate' }],
  summary: ['run two models on the same samples and measure how far the candidate is from the reference, and both latencies'],
  options: [
    { flag: 'data', kind: 'text', target: 'options.data', metavar: 'DIR|random:N', help: 'the samples (default: seeded random ones, marked)' },
    cc.samples('options.samples'),
    cc.device('options.device', 'auto'),
    { flag: 'metric', kind: 'choice', target: 'options.metric', help: 'the headline metric (default: the worst relevant one)', choices: Object.fromEntries(HEADLINE_METRICS.map((m) => [m, ''])) },
    cc.inputShape('options.inputShapes'),
    cc.json(),
  ] satisfies Array<Declared<JobRequests['compare']>>,
};

const sc = commonOptions<JobRequests['sensitivity']>();
const SENSITIVITY: CommandSpec = {
  command: 'sensitivity', job: 'sensitivity', positionals: [{ name: 'MODEL', target: 'model' }],
  summary: ['per-layer sensitivity, written to MODEL.sensitivity.json; end-to-end runs variants in N worker threads'],
  defaults: { options: { ...DEFAULT_QUANTIZE_OPTIONS, mode: 'static', method: 'local', splitSamples: SPLIT_SAMPLES } },
  options: [
    sc.calibration('options.calibration'),
    { flag: 'method', kind: 'choice', target: 'options.method', help: 'where the noise is measured', choices: { local: 'at each layer\'s own outputs (one pass)', 'end-to-end': 'at the model\'s outputs, one variant per layer' } },
    scheme.mode('the scheme each layer is quantized with'),
    scheme.bits(),
    scheme.blockSize(),
    scheme.calibrationMethod(),
    sc.samples('options.maxSamples', 'use at most N calibration samples'),
    sc.exclude('options.exclude'),
    { flag: 'workers', kind: 'number', range: { min: 1, max: 64, whole: true }, target: 'options.workers', metavar: 'N', help: 'worker threads (default: cores, at most 4)', applies: (v) => v.method !== 'end-to-end' && 'applies to --method end-to-end only' },
    { flag: 'split-samples', kind: 'number', range: { min: 0, whole: true }, target: 'options.splitSamples', metavar: 'N', help: 'samples each layer\'s weights-vs-activations split is measured on (0: every one; the sensitivity uses them all)', applies: (v) => (v.method === 'end-to-end' || (v.mode ?? 'static') !== 'static') && 'applies to --method local in static mode only' },
    { flag: 'whole-maps', kind: 'flag', sets: false, target: 'options.windows', help: 'run each conv layer\'s copies on the whole feature map, not on a centred window of it beside a float copy (slower)', applies: (v) => v.method === 'end-to-end' && 'applies to --method local only' },
    sc.output('options.output', 'FILE', 'the report (default MODEL.sensitivity.json)'),
    sc.shard('options.shard', 'layers'),
    sc.part('options.part'),
    { flag: 'costs', kind: 'text', target: 'options.costs', metavar: 'REPORT', help: 'an earlier report of this model: its per-layer seconds balance the shards', applies: (v) => v.shard === undefined && 'applies with --shard only' },
    sc.device('options.device'),
    sc.inputShape('options.inputShapes'),
    sc.json(),
  ] satisfies Array<Declared<JobRequests['sensitivity']>>,
};

const qc = commonOptions<JobRequests['qat-plan']>();
const QAT_PLAN: CommandSpec = {
  command: 'qat-plan', job: 'qat-plan', positionals: [{ name: 'MODEL', target: 'model' }],
  required: [{ flag: 'output', message: 'qat-plan needs -o PLAN.json' }],
  summary: ['per-module fake-quant plan for training in PyTorch (python/quantlens_qat.py)'],
  defaults: { options: { ...DEFAULT_QUANTIZE_OPTIONS, mode: 'static' } },
  options: [
    qc.output('output', 'PLAN.json', 'the plan'),
    qc.calibration('options.calibration', 'samples for the initial activation ranges: a folder or random:N'),
    scheme.mode('the scheme trained for', { static: MODE_CHOICES.static, weight: MODE_CHOICES.weight }),
    scheme.bits(),
    { flag: 'per-tensor', kind: 'flag', sets: false, target: 'options.perChannel', help: 'one weight scale per tensor' },
    { flag: 'symmetric', kind: 'flag', target: 'options.symmetric', help: 'symmetric ranges everywhere' },
    scheme.calibrationMethod('how initial activation ranges are chosen'),
    qc.samples('options.maxSamples', 'use at most N calibration samples'),
    qc.exclude('options.exclude'),
    scheme.recipe('per-module rules (YAML or JSON)'),
    qc.json(),
  ] satisfies Array<Declared<JobRequests['qat-plan']>>,
};

const mc = commonOptions<JobRequests['merge']>();
const MERGE: CommandSpec = {
  command: 'merge', job: 'merge', quiet: true, positionals: [{ name: 'PARTS', target: 'parts', variadic: true }],
  summary: ['combine the part files of a job run with --shard I/N into the report one run writes; refuses parts', 'of different models or options, and says which shards are missing'],
  options: [mc.output('output', 'REPORT', 'the report (default: where a single run would write it)'), mc.json()] satisfies Array<Declared<JobRequests['merge']>>,
};

/** Every CLI command's options, in the order help lists them. */
export const COMMANDS: CommandSpec[] = [INSPECT, RUN, FIXTURE, QUANTIZE, COMPARE, SENSITIVITY, QAT_PLAN, PRUNE, SWEEP, MERGE];

export function commandSpec(command: string): CommandSpec | undefined {
  return COMMANDS.find((s) => s.command === command);
}

/** The options of one job's choice option (the editor's pickers): value → what it does. */
export function choicesOf(command: string, flag: string): Record<string, string> {
  const o = commandSpec(command)?.options.find((x) => x.flag === flag);
  if (!o?.choices) throw new Error(`${command} has no choice option --${flag}`);
  return o.choices;
}

/** Checks an engine request against its job's options (jobs without options pass). */
export function checkJobRequest(kind: JobKind, request: object): void {
  const spec = COMMANDS.find((s) => s.job === kind);
  if (spec) checkRequest(spec, request as Record<string, unknown>);
}

export type { OptionSpec };
