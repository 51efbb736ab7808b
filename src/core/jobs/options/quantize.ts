import { DEFAULT_QUANTIZE_OPTIONS, type QuantizeOptions } from '../../quant/options';
import type { JobRequests } from '../requests';
import { commonOptions } from './common';
import type { CommandSpec, Declared, View } from './schema';

type Q = JobRequests['quantize'];
const c = commonOptions<Q>();

export const MODE_CHOICES = {
  weight: 'int8 or int4 weights, float activations (DequantizeLinear+MatMul, MatMulNBits)',
  dynamic: 'int8 weights, activations quantized at run time (MatMulInteger, DynamicQuantizeMatMul)',
  static: 'int8 weights and activations with calibrated ranges (QDQ, fused by onnxruntime)',
};
export const CALIBRATION_METHOD_CHOICES = {
  minmax: 'the observed range',
  percentile: 'clip at --percentile of the histogram',
  entropy: 'the range whose int8 histogram keeps the most information (KL)',
  mse: 'the range with the least quantization error',
};
export const BITS_CHOICES = { 8: 'int8', 4: 'int4 (MatMulNBits, --mode weight)' };

/** Mode-specific flags are not checked under a recipe: its rules can give modules other modes and bits. */
const staticOnly = (what: string) => (v: View) => !v.recipe && v.mode !== 'static' && `applies to --mode static only${what}, not --mode ${String(v.mode)}`;
const measured = (v: View, given: ReadonlySet<string>) => !given.has('budget') && !v.progressive;

type Scheme = { options: Partial<QuantizeOptions> };
/** The quantization scheme's options, declared once for quantize, sensitivity and qat-plan. */
export const scheme = {
  mode: (help: string, choices: Record<string, string> = MODE_CHOICES): Declared<Scheme> => ({ flag: 'mode', kind: 'choice', choices, target: 'options.mode', help }),
  bits: (): Declared<Scheme> => ({
    flag: 'bits', kind: 'choice', choices: BITS_CHOICES, numeric: true, target: 'options.bits', help: 'weight bits',
    applies: (v) => v.bits === 4 && !v.recipe && v.mode !== 'weight' && `4 applies to --mode weight only (MatMulNBits); --mode ${String(v.mode)} is 8-bit`,
  }),
  blockSize: (): Declared<Scheme> => ({
    flag: 'block-size', kind: 'choice', choices: { 16: '', 32: '', 64: '', 128: '', 256: '' }, numeric: true, target: 'options.blockSize', metavar: 'N',
    help: 'int4 block length along K', applies: (v) => v.bits !== 4 && !v.recipe && 'applies to --bits 4 only (MatMulNBits blocks)',
  }),
  calibrationMethod: (help = 'how activation ranges are chosen'): Declared<Scheme> => ({
    flag: 'calibration-method', kind: 'choice', choices: CALIBRATION_METHOD_CHOICES, target: 'options.calibrationMethod', help, applies: staticOnly(' (other modes calibrate no activation ranges)'),
  }),
  recipe: (help: string): Declared<Scheme> => ({ flag: 'recipe', kind: 'text', target: 'options.recipe', metavar: 'FILE', help }),
};

export const QUANTIZE: CommandSpec = {
  command: 'quantize',
  job: 'quantize',
  positionals: [{ name: 'MODEL', target: 'model' }],
  required: [{ flag: 'output', message: 'quantize needs -o OUT' }],
  summary: ['quantize weights (weight), weights and run-time activations (dynamic) or both with calibrated ranges (static);', 'the output is verified in onnxruntime against the float model'],
  defaults: { options: DEFAULT_QUANTIZE_OPTIONS },
  options: [
    c.output('output', 'OUT', 'the quantized model (never the input)'),
    scheme.mode('what is quantized'),
    scheme.bits(),
    scheme.blockSize(),
    {
      flag: 'algorithm', kind: 'choice', choices: { rtn: 'round to nearest', gptq: 'error-compensated rounding from calibration data (GPTQ)' }, target: 'options.algorithm',
      help: 'how int4 weights are rounded', applies: (v) => v.algorithm === 'gptq' && !v.recipe && !(v.mode === 'weight' && v.bits === 4) && 'gptq applies to --mode weight --bits 4 only',
    },
    { flag: 'act-order', kind: 'flag', target: 'options.gptqActOrder', help: 'GPTQ: columns in order of decreasing Hessian diagonal', applies: (v) => v.algorithm !== 'gptq' && 'applies to --algorithm gptq only' },
    { flag: 'per-channel', kind: 'flag', sets: true, target: 'options.perChannel', conflicts: ['per-tensor'], help: 'one weight scale per output channel (the default)' },
    { flag: 'per-tensor', kind: 'flag', sets: false, target: 'options.perChannel', conflicts: ['per-channel'], help: 'one weight scale per tensor' },
    { flag: 'symmetric', kind: 'flag', target: 'options.symmetric', help: 'symmetric ranges everywhere (zero point 0)' },
    c.calibration('options.calibration'),
    { flag: 'eval-data', kind: 'text', target: 'options.evalData', metavar: 'DIR', help: 'a pipeline (MODEL is a folder): held-apart images and prompts its generation is judged on' },
    scheme.calibrationMethod(),
    {
      flag: 'percentile', kind: 'number', range: { min: 50, max: 100, minOpen: true }, target: 'options.percentile', metavar: 'P', help: 'percentile kept',
      applies: (v) => v['calibration-method'] !== 'percentile' && 'applies to --calibration-method percentile only',
    },
    {
      flag: 'histogram-values', kind: 'number', range: { min: 0, whole: true }, target: 'options.histogramValues', metavar: 'N',
      help: 'histogram methods: bin a strided pick of about N values per tensor per sample, extremes exact (0: every value)',
      applies: (v) => staticOnly('')(v) || ((v['calibration-method'] ?? 'mse') === 'minmax' && 'applies to the histogram methods (percentile, entropy, mse)'),
    },
    c.samples('options.maxSamples', 'use at most N calibration samples'),
    {
      flag: 'static-ops', kind: 'choice', target: 'options.staticOps', applies: staticOnly(''), help: 'which ops get Q/DQ',
      choices: { auto: 'time compute and residual beside float, keep the fastest that holds fidelity', compute: 'weight layers, pooling, data movement, Sigmoid and LeakyRelu, Muls by a Sigmoid (SiLU, gates)', residual: 'also Adds of two activations', all: 'every Add and Mul' },
    },
    {
      flag: 'objective', kind: 'choice', target: 'options.objective', help: 'what to favour (static: where Q/DQ go; weight: how the weights are written; dynamic: whether convs go dynamic)',
      choices: { latency: 'no slower than float (static and dynamic: exit 1 when asked for and not met)', size: 'the smallest model (weight: int8 in memory too; dynamic: every conv)', accuracy: 'the most faithful model' },
    },
    {
      flag: 'weight-format', kind: 'choice', target: 'options.weightFormat', help: 'how int8 weights are written (--mode weight)',
      applies: (v) => !v.recipe && v.mode !== 'weight' && `applies to --mode weight only, not --mode ${String(v.mode)}`,
      choices: {
        auto: 'time the forms beside float and keep the fastest faithful one (under --objective size only those with int8 in memory; under accuracy, not nbits)',
        dequantize: 'DequantizeLinear before each layer: int8 in memory, dequantized every run',
        nbits: 'MatMul weights as MatMulNBits 8-bit with int8 compute (accuracy_level 4), embedding tables GatherBlockQuantized, the others dequantized',
        expand: 'int8 in the file, expanded to float once when onnxruntime loads it (float speed and memory)',
        'nbits+expand': 'MatMulNBits and GatherBlockQuantized as nbits, the others expanded at load',
      },
    },
    { flag: 'no-smooth', kind: 'flag', sets: 'off', target: 'options.smoothing', applies: staticOnly(''), help: 'no SmoothQuant-style smoothing of activation outliers' },
    {
      flag: 'smooth-pass', kind: 'flag', sets: 'separate', target: 'options.smoothing', applies: staticOnly(''),
      help: 'histogram methods: measure smoothing in a pass of its own before calibrating (the smoothed activations\' tails come out exactly, at the cost of one more pass over the data)',
    },
    {
      flag: 'reduce-range', kind: 'choice', target: 'options.reduceRange', help: '7-bit weights for integer kernels',
      choices: { auto: 'where this CPU\'s int8 kernels saturate (no VNNI)', on: 'always', off: 'never' },
      applies: (v) => !v.recipe && v.mode === 'weight' && 'applies to --mode static and dynamic (integer kernels), not --mode weight',
    },
    c.exclude('options.exclude'),
    scheme.recipe('per-module rules (YAML or JSON): modes, bits, exclusions by module path'),
    c.device('options.device'),
    c.inputShape('options.inputShapes'),
    { flag: 'budget', kind: 'number', range: { min: 0, max: 1, maxOpen: true }, target: 'options.budget', metavar: 'DROP', help: 'mixed precision: keep the fewest sensitive layers float within this drop (1 − metric)' },
    { flag: 'budget-metric', kind: 'choice', choices: { cosine: 'output cosine', top1: 'top-1 agreement', task: 'the --evaluator\'s metric' }, target: 'options.budgetMetric', help: 'what the budget measures', applies: (v, g) => measured(v, g) && 'applies with --budget or --progressive only' },
    { flag: 'progressive', kind: 'flag', target: 'options.progressive', help: 'quantize the least sensitive layers first, step by step, keeping the curve' },
    { flag: 'steps', kind: 'number', range: { min: 1, whole: true }, target: 'options.progressiveSteps', metavar: 'N', help: 'progressive steps', applies: (v) => !v.progressive && 'applies with --progressive only' },
    {
      flag: 'evaluator', kind: 'text', target: 'options.evaluator', metavar: "'python eval.py --model {model}'", help: 'your metric for --budget/--progressive: a command printing a number',
      applies: (v, g) => measured(v, g) && 'applies with --budget or --progressive only (it scores mixed-precision variants)',
    },
    { flag: 'lower-is-better', kind: 'flag', target: 'options.evaluatorLowerIsBetter', help: 'the evaluator\'s number is an error, not a score', applies: (v) => v.evaluator === undefined && 'applies with --evaluator only' },
    { flag: 'evaluator-timeout', kind: 'number', range: { min: 0, minOpen: true }, target: 'options.evaluatorTimeoutSeconds', metavar: 'S', help: 'seconds per evaluator run', applies: (v) => v.evaluator === undefined && 'applies with --evaluator only' },
    c.json(),
  ] satisfies Array<Declared<Q>>,
};
