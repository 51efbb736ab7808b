import { QuantLensError } from '../../base/errors';
import { DEFAULT_PRUNE_OPTIONS, parsePattern, type PruneOptions } from '../../prune/options';
import type { JobRequests } from '../requests';
import { commonOptions } from './common';
import type { CommandSpec, Declared, View } from './schema';

type Shared = { options: Partial<PruneOptions> };
const c = commonOptions<Shared>();

export const PRUNE_METHOD_CHOICES = {
  magnitude: 'zeroes the smallest weights: sparse, same shapes',
  nm: 'keeps N of every M weights (2:4 sparse kernels)',
  structured: 'removes channels and heads: smaller and faster',
};

const only = (method: PruneOptions['method']) => (v: View) => v.method !== method && `applies to --method ${method} only, not --method ${String(v.method)}`;

function parseRoundTo(text: string): number | 'auto' {
  const n = Number(text);
  if (text === 'auto') return 'auto';
  if (!(Number.isInteger(n) && n >= 1 && n <= 1024)) throw new QuantLensError(undefined, `--round-to takes auto or a whole number from 1 to 1024, not '${text}'`, 'usage');
  return n;
}

/** The flags prune and sweep share, with their targets in the request's prune options. */
function shared(): Array<Declared<Shared>> {
  return [
    {
      flag: 'scope', kind: 'choice', target: 'options.scope', applies: only('magnitude'), help: 'magnitude: where the threshold is drawn',
      choices: { lamp: 'one threshold over layer-normalised (LAMP) scores', global: 'one threshold over raw magnitudes', layer: 'the same share in every layer' },
    },
    {
      flag: 'importance', kind: 'choice', target: 'options.importance', help: 'how weights or channels are ranked',
      choices: { l1: 'weight magnitude (L1)', l2: 'weight magnitude (L2)', activation: 'magnitude weighted by calibration activations' },
    },
    { flag: 'min-density', kind: 'number', range: { min: 0, max: 1 }, target: 'options.minDensity', metavar: 'F', help: 'no layer keeps less than this share of its weights', applies: only('magnitude') },
    c.calibration('options.calibration', 'calibration samples for --importance activation and --reconstruct: a folder or random:N'),
    c.samples('options.maxSamples', 'use at most N calibration samples'),
    { flag: 'reconstruct', kind: 'flag', target: 'options.reconstruct', help: 'training-free recovery from calibration inputs (OBS update, least-squares refit)' },
    { flag: 'round-to', kind: 'text', parse: parseRoundTo, valid: (v) => v === 'auto' || (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 1024), target: 'options.roundTo', metavar: 'auto|N', help: 'kept channel counts are multiples of N (auto: the CPU\'s conv block)', applies: only('structured') },
    { flag: 'prune-norm', kind: 'flag', target: 'options.pruneNormalized', help: 'also shrink hidden sizes under LayerNormalization (approximate)', applies: only('structured') },
    { flag: 'no-compensate', kind: 'flag', sets: false, target: 'options.compensate', help: 'do not fold removed channels\' mean into the next bias', applies: only('structured') },
    {
      flag: 'allocation', kind: 'choice', target: 'options.allocation', applies: only('structured'), help: 'where channels are taken',
      choices: { uniform: 'the same share from every family', global: 'the least important wherever they are' },
    },
    c.exclude('options.exclude'),
    c.device('options.device'),
    c.inputShape('options.inputShapes'),
    c.json(),
  ];
}

type P = JobRequests['prune'];
export const PRUNE: CommandSpec = {
  command: 'prune',
  job: 'prune',
  positionals: [{ name: 'MODEL', target: 'model' }],
  required: [{ flag: 'output', message: 'prune needs -o OUT' }],
  summary: ['zero weights (magnitude, N:M) or remove channels and heads (structured); verified against the float model'],
  defaults: { options: DEFAULT_PRUNE_OPTIONS },
  options: [
    commonOptions<P>().output('output', 'OUT', 'the pruned model (never the input)'),
    { flag: 'method', kind: 'choice', choices: PRUNE_METHOD_CHOICES, target: 'options.method', help: 'what is removed' },
    {
      flag: 'sparsity', kind: 'number', range: { min: 0, max: 1, maxOpen: true }, target: 'options.sparsity', metavar: 'F', help: 'share of weights (magnitude) or of each channel family (structured) removed',
      applies: (v) => v.method === 'nm' && 'does not apply to --method nm (--pattern N:M sets it)',
    },
    {
      flag: 'pattern', kind: 'text', parse: parsePattern, format: (v) => [`${(v as { n: number }).n}:${(v as { m: number }).m}`], valid: (v) => { const p = v as { n?: number; m?: number }; return Number.isInteger(p?.n) && Number.isInteger(p?.m) && p.n! > 0 && p.n! < p.m!; },
      target: 'options.pattern', metavar: 'N:M', help: 'N:M: keep N of every M weights along the input', applies: only('nm'),
    },
    ...shared(),
    { flag: 'masks', kind: 'text', target: 'masks', metavar: 'FILE', help: 'write what was kept, for fine-tuning with python/quantlens_prune.py' },
  ] satisfies Array<Declared<P>>,
};

type S = JobRequests['sweep'];
const s = commonOptions<S>();
function parseSparsities(text: string): number[] {
  return text.split(',').map((v) => {
    const n = Number(v.trim());
    if (v.trim() === '' || !Number.isFinite(n)) throw new QuantLensError(undefined, `--sparsities takes numbers separated by commas, not '${text}'`, 'usage');
    return n;
  });
}

export const SWEEP: CommandSpec = {
  command: 'sweep',
  job: 'sweep',
  positionals: [{ name: 'MODEL', target: 'model' }],
  required: [{ flag: 'sparsities', message: 'sweep needs --sparsities, e.g. 0.1,0.3,0.5' }],
  summary: ['prune at each sparsity and measure size, parameters, latency, fidelity; points print as they finish;', 'a rerun resumes; models kept beside REPORT'],
  defaults: { options: DEFAULT_PRUNE_OPTIONS },
  options: [
    {
      flag: 'sparsities', kind: 'text', parse: parseSparsities, format: (v) => [(v as number[]).join(',')], valid: (v) => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && x >= 0 && x < 1),
      target: 'sweep.sparsities', metavar: '0.1,0.3,0.5', help: 'the sparsities to try, each in [0, 1)',
    },
    { flag: 'method', kind: 'choice', choices: { magnitude: PRUNE_METHOD_CHOICES.magnitude, structured: PRUNE_METHOD_CHOICES.structured }, target: 'options.method', help: 'what is removed' },
    { flag: 'iterative', kind: 'flag', target: 'sweep.iterative', help: 'each point prunes the previous point\'s model further' },
    s.output('sweep.output', 'REPORT.json', 'the report (default MODEL.sweep.json); point models go beside it'),
    { ...s.shard('sweep.shard', 'points'), applies: (v) => v.iterative === true && 'cannot split an --iterative sweep: each point prunes the one before' },
    s.part('sweep.part'),
    ...shared(),
    { flag: 'evaluator', kind: 'text', target: 'sweep.evaluator.command', metavar: "'python eval.py --model {model}'", help: 'your metric for each point: a command printing a number' },
    { flag: 'lower-is-better', kind: 'flag', target: 'sweep.evaluator.lowerIsBetter', help: 'the evaluator\'s number is an error, not a score', applies: (v) => v.evaluator === undefined && 'applies with --evaluator only' },
    { flag: 'evaluator-timeout', kind: 'number', range: { min: 0, minOpen: true }, target: 'sweep.evaluator.timeoutSeconds', metavar: 'S', help: 'seconds per evaluator run', applies: (v) => v.evaluator === undefined && 'applies with --evaluator only' },
  ] satisfies Array<Declared<S>>,
};
