import fs from 'node:fs';
import path from 'node:path';
import { openCalibration, type CalibrationData } from '../calib/data';
import { compareModels, type CompareReport } from '../compare';
import { CancelledError, QuantLensError } from '../errors';
import type { JobContext } from '../jobs';
import { ModelEditor } from '../onnx/editor';
import { loadModel, saveModel } from '../onnx/model-io';
import { modulePathOf } from '../onnx/module-path';
import type { NodeProto } from '../onnx/proto';
import { walkGraphs } from '../onnx/walk';
import { upgradeOpset9To10 } from '../onnx/opset-upgrade';
import { foldBatchNormIntoConv } from '../onnx/fold-batchnorm';
import { captureTensors } from '../runtime/capture';
import type { Provider } from '../runtime/session';
import type { OpQuantizer, QuantContext } from './context';
import { DYNAMIC_QUANTIZERS } from './dynamic/ops';
import { HessianAccumulator } from './hessian';
import { DEFAULT_QUANTIZE_OPTIONS, type NodeDecision, type QuantizeOptions } from './options';
import { loadRecipe, QuantPolicy } from './policy';
import { calibrateActivations, STATIC_QUANTIZERS, type CalibrationReport } from './static/qdq';
import { WEIGHT_QUANTIZERS } from './weight/ops';
import { floatWeightDims } from './weights';
import { writeJsonAtomic } from '../fs/json';

const REGISTRIES: Record<QuantizeOptions['mode'], Readonly<Record<string, OpQuantizer>>> = {
  weight: WEIGHT_QUANTIZERS,
  dynamic: DYNAMIC_QUANTIZERS,
  static: STATIC_QUANTIZERS,
};
const QUANTIZABLE = new Set(Object.values(REGISTRIES).flatMap((r) => Object.keys(r)));
/** Which input holds the op's weight, for module paths and reports. */
const WEIGHT_INPUT: Record<string, number> = { Gather: 0 };

/** `quantize --json`: the contract's fields first, extras after. */
export interface QuantizeResult {
  output: string;
  sizeBefore: number;
  sizeAfter: number;
  quantized: string[];
  skipped: Array<{ node: string; reason: string }>;
  device: Provider;
  seconds: number;
  report: string;
  fallbackReason?: string;
  weightBytes: { before: number; after: number };
  fidelity: CompareReport['outputs'];
  latencyMs: CompareReport['latencyMs'];
  warnings: string[];
}

export interface QuantizeReport extends QuantizeResult {
  input: string;
  options: QuantizeOptions;
  nodes: NodeDecision[];
  calibration?: CalibrationReport;
  timings: Record<string, number>;
}

function validate(o: QuantizeOptions, input: string, output: string): void {
  const bad = (m: string) => new QuantLensError(undefined, m, 'usage');
  if (o.bits !== 8 && o.bits !== 4) throw bad(`--bits must be 8 or 4, not ${o.bits}`);
  if (![16, 32, 64, 128, 256].includes(o.blockSize)) throw bad(`--block-size must be a power of two from 16 to 256, not ${o.blockSize}`);
  if (!['weight', 'dynamic', 'static'].includes(o.mode)) throw bad(`--mode must be weight, dynamic or static, not '${o.mode}'`);
  if (!(o.percentile > 50 && o.percentile <= 100)) throw bad(`--percentile must be in (50, 100], not ${o.percentile}`);
  if (o.mode === 'static' && !o.calibration) throw bad('--mode static needs --calibration DIR (or random:N for seeded random data)');
  if (o.algorithm === 'gptq' && !o.calibration) throw bad('--algorithm gptq needs --calibration DIR (or random:N)');
  if (path.resolve(input) === path.resolve(output)) throw new QuantLensError(output, 'the output would overwrite the input model; choose another path');
  const dir = path.dirname(path.resolve(output));
  if (!fs.existsSync(dir)) throw new QuantLensError(output, `folder '${dir}' does not exist`);
}

/** Quantizes `input` into `output` (never touching the input), verifies it in onnxruntime, writes the report. */
export async function quantizeModel(input: string, output: string, partial: Partial<QuantizeOptions>, ctx: JobContext = {}): Promise<QuantizeResult> {
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const lap = (k: string, since: number) => (timings[k] = (performance.now() - since) / 1000);
  const options: QuantizeOptions = { ...DEFAULT_QUANTIZE_OPTIONS, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) };
  validate(options, input, output);
  // --device cuda asks for CUDA; quantization still completes on CPU without it, and says so.
  const wantedCuda = options.device === 'cuda';
  if (wantedCuda) options.device = 'auto';
  const recipe = options.recipe ? loadRecipe(options.recipe) : undefined;
  const loaded = loadModel(input);
  const graph = loaded.model.graph!;
  const editor = new ModelEditor(loaded.model);
  const policy = new QuantPolicy(options, recipe);
  const decisions: NodeDecision[] = [];
  const planned = new Map<NodeProto, { options: QuantizeOptions; quantizer: OpQuantizer }>();
  const hessians = new Map<NodeProto, Float64Array>();
  const qctx: QuantContext = {
    editor, view: editor.view(), loc: loaded.loc, options,
    optionsFor: (n) => planned.get(n)?.options ?? options,
    decide: (d) => decisions.push(d),
    modulePath: (n) => modulePathOf(n, n.input?.[WEIGHT_INPUT[n.op_type ?? ''] ?? 1]),
    dequantized: new Map(),
    activations: new Map(),
    staticNodes: new Set(),
    hessian: (n) => {
      const h = hessians.get(n);
      if (!h) throw new Error(`no calibration Hessian for ${n.name}`);
      return h;
    },
  };

  const warnings: string[] = [];
  // Static quantization of Conv needs BatchNormalization folded in first (see fold-batchnorm.ts).
  const staticAnywhere = options.mode === 'static' || (recipe?.rules ?? []).some((r) => r.rule.mode === 'static');
  if (staticAnywhere) {
    const folded = foldBatchNormIntoConv(editor, loaded.loc);
    if (folded.length) {
      editor.dropUnusedConstants();
      warnings.push(`folded ${folded.length} BatchNormalization node${folded.length === 1 ? '' : 's'} into the Conv before ${folded.length === 1 ? 'it' : 'them'}`);
      qctx.view = editor.view();
    }
  }

  // Plan: policy (exclude / recipe), then each op quantizer's own "should I?".
  for (const node of graph.node ?? []) {
    const op = node.op_type ?? '';
    if ((node.domain ?? '') !== '' || !QUANTIZABLE.has(op)) continue;
    const skip = (reason: string) => decisions.push({ node: node.name ?? '', opType: op, modulePath: qctx.modulePath(node), skipped: reason });
    const r = policy.resolve(qctx.modulePath(node), node.name ?? '');
    if ('keep' in r) {
      if (REGISTRIES[options.mode][op]) skip(r.keep);
      continue;
    }
    const quantizer = REGISTRIES[r.options.mode][op];
    if (!quantizer) continue; // not an op this mode quantizes
    planned.set(node, { options: r.options, quantizer });
    const why = quantizer.check(node, qctx);
    if (why) { planned.delete(node); skip(why); }
  }
  for (const { graph: g, depth } of walkGraphs(graph)) {
    if (depth === 0) continue;
    for (const node of g.node ?? []) if (QUANTIZABLE.has(node.op_type ?? '')) decisions.push({ node: node.name ?? '', opType: node.op_type ?? '', modulePath: '', skipped: 'inside a subgraph (If/Loop/Scan): left float' });
  }

  // Calibration: one data set for GPTQ Hessians and activation ranges.
  const needsGptq = [...planned].filter(([n, p]) => n.op_type === 'MatMul' && p.options.mode === 'weight' && p.options.bits === 4 && p.options.algorithm === 'gptq');
  const needsStatic = [...planned].some(([, p]) => p.options.mode === 'static');
  let data: CalibrationData | undefined;
  let provider: Provider | undefined;
  let fallbackReason: string | undefined;
  if (options.calibration && (needsGptq.length || needsStatic)) {
    data = openCalibration(options.calibration, graph, { maxSamples: options.maxSamples });
    if (data.warning) warnings.push(data.warning);
  }
  if (needsGptq.length && data) {
    const t = performance.now();
    const acc = new Map<NodeProto, HessianAccumulator>();
    for (const [n] of needsGptq) acc.set(n, new HessianAccumulator(floatWeightDims(qctx.view, n.input![1], loaded.loc)![0]));
    const byInput = new Map<string, NodeProto[]>();
    for (const [n] of needsGptq) byInput.set(n.input![0], [...(byInput.get(n.input![0]) ?? []), n]);
    const run = await captureTensors(loaded, [...byInput.keys()], data, options.device, (values, _i, feeds) => {
      for (const [name, nodes] of byInput) for (const n of nodes) acc.get(n)!.add(values[name] ?? feeds[name]);
    }, ctx);
    for (const [n, a] of acc) hessians.set(n, a.result());
    provider = run.provider;
    fallbackReason = run.fallbackReason;
    lap('gptqHessians', t);
  }
  let calibration: CalibrationReport | undefined;
  if (needsStatic && data) {
    const t = performance.now();
    const staticNodes = [...planned].filter(([, p]) => p.options.mode === 'static').map(([n]) => n);
    staticNodes.forEach((n) => qctx.staticNodes.add(n));
    calibration = await calibrateActivations(loaded, qctx, staticNodes, data, options, ctx);
    provider ??= calibration.device;
    fallbackReason ??= calibration.fallbackReason;
    lap('calibration', t);
  }

  // Do it, in graph order (nodes inserted before their consumer keep the order topological).
  const tq = performance.now();
  if (needsStatic && editor.opset() === 9) {
    const r = upgradeOpset9To10(editor);
    warnings.push(`model upgraded from opset 9 to 10 so onnxruntime can fuse Q/DQ into QLinear kernels${r.length ? ` (${r.length} Slice/TopK nodes rewritten)` : ''}`);
  }
  for (const [node, p] of planned) {
    if (ctx.signal?.aborted) throw new CancelledError();
    await p.quantizer.apply(node, qctx);
  }
  editor.dropUnusedConstants();
  lap('quantize', tq);

  // Stage, verify in onnxruntime against the float model, then move into place.
  const outDir = path.dirname(path.resolve(output));
  const stage = fs.mkdtempSync(path.join(outDir, '.quantlens-'));
  try {
    const staged = path.join(stage, path.basename(output));
    const ts = performance.now();
    const saved = saveModel(loaded.model, staged, { source: loaded.loc, externalData: loaded.externalFiles.length ? 'always' : 'auto' });
    lap('save', ts);
    const tv = performance.now();
    let check: CompareReport;
    try {
      check = await compareModels(input, staged, { data: options.calibration ?? 'random:4', samples: Math.min(8, options.maxSamples), device: options.device, latencyRuns: 3 }, ctx);
    } catch (e) {
      if (e instanceof CancelledError) throw e;
      throw new QuantLensError(output, `the quantized model failed verification in onnxruntime: ${e instanceof Error ? e.message.split('\n')[0] : e}`, 'runtime');
    }
    lap('verify', tv);
    if (!options.calibration) warnings.push('fidelity measured on 4 seeded random samples; pass --calibration DIR for real data');
    const fellBack = fallbackReason ?? check.fallbackReason;
    if (wantedCuda && fellBack) warnings.push(`CUDA was requested but is unavailable (${fellBack}); ran on CPU`);
    if (wantedCuda) options.device = 'cuda';
    if (saved.dataFile) fs.renameSync(saved.dataFile, path.join(outDir, path.basename(saved.dataFile)));
    fs.renameSync(staged, path.resolve(output));
    const sizeAfter = fs.statSync(output).size + (saved.dataBytes ?? 0);
    const quantizedNodes = decisions.filter((d) => d.how);
    const result: QuantizeResult = {
      output,
      sizeBefore: loaded.fileBytes + loaded.externalBytes,
      sizeAfter,
      quantized: quantizedNodes.map((d) => d.node),
      skipped: decisions.filter((d) => d.skipped).map((d) => ({ node: d.node, reason: d.skipped! })),
      device: provider ?? check.device,
      seconds: (performance.now() - t0) / 1000,
      report: `${output}.report.json`,
      ...((fallbackReason ?? check.fallbackReason) ? { fallbackReason: fallbackReason ?? check.fallbackReason } : {}),
      weightBytes: {
        before: quantizedNodes.reduce((a, d) => a + (d.weightBytesBefore ?? 0), 0),
        after: quantizedNodes.reduce((a, d) => a + (d.weightBytesAfter ?? 0), 0),
      },
      fidelity: check.outputs,
      latencyMs: check.latencyMs,
      warnings,
    };
    const report: QuantizeReport = { ...result, input, options, nodes: decisions, ...(calibration ? { calibration } : {}), timings };
    writeJsonAtomic(result.report, report);
    return result;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}
