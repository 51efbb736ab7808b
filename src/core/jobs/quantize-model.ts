import type { CompareReport } from '../compare';
import { CancelledError, errorLine, QuantLensError } from '../base/errors';
import { emptyOutputsWarning, randomDataWarning, unmovedOutputsWarning } from '../eval/metrics';
import type { JobContext } from '../base/jobs';
import { loadModel, type LoadedModel } from '../onnx/model-io';
import type { Provider } from '../runtime/session';
import { int8Saturates } from '../runtime/cpu-block';
import { DEFAULT_QUANTIZE_OPTIONS, reducesRange, WEIGHT_FORMATS, type NodeDecision, type QuantizeOptions, type WeightFormat } from '../quant/options';
import { loadRecipe, QuantPolicy } from '../quant/policy';
import { PASS_THROUGH } from '../quant/static/qdq';
import type { CalibrationReport } from '../quant/static/calibrate';
import { applyQuantization, modesUsed, opKey, prepareQuantization, REGISTRIES, type PreparedQuantization } from '../quant/prepare';
import type { NodeProto } from '../onnx/proto';
import { refuseQuantized } from '../quant/already-quantized';
import { VariantScorer } from '../quant/variant-scorer';
import { fitBudget, progressive, type BudgetResult, type ProgressiveStep } from './mixed-precision';
import { layersOf, measureLayers } from '../sensitivity/analyze';
import { hasBranchMatMuls, quantizeBranchMatMuls } from '../quant/weight/branches';
import { AT_8_BITS } from '../quant/weight/ops';
import { restoreTakenBranches, samplesAt } from '../quant/static/taken-branches';
import { openCalibration } from '../calib/data';
import { ModelEditor } from '../onnx/editor';
import { slowerWarning, type OpTimeProfile } from '../eval/op-time';
import { profileOpTypes } from '../runtime/profile';
import { writeJsonAtomic } from '../fs/json';
import { checkOutputPath, OutputStage, saveVerified, streamsOutput } from '../verified-output';
import { choosePlacement, chosenPlan, floatForSpeed, placementPlan, type PlacementChoice } from './placement';
import { chooseDynamicConvs, dynamicConvPlan, floatConvShare, type DynamicConvChoice } from './dynamic-convs';
import { chooseWeightFormat, type WeightFormatChoice } from './weight-format';
import { QUANTIZE } from './options/quantize';
import { checkValues } from './options/schema';

/** `quantize --json`: the contract's fields first, extras after. */
export interface QuantizeResult {
  output: string;
  sizeBefore: number;
  sizeAfter: number;
  quantized: string[];
  /** Layers kept float for speed whose weights are stored float16 (static mode; not counted as quantized). */
  float16Weights?: string[];
  skipped: Array<{ node: string; reason: string }>;
  device: Provider;
  seconds: number;
  report: string;
  fallbackReason?: string;
  weightBytes: { before: number; after: number };
  fidelity: CompareReport['outputs'];
  /** The samples fidelity was measured on (`random:4` when no calibration data was given). */
  fidelityData: string;
  latencyMs: CompareReport['latencyMs'];
  latencyStats?: CompareReport['latencyStats'];
  warnings: string[];
  /** --static-ops auto under --objective latency: each placement's time beside float and its fidelity, and the one written. */
  placement?: PlacementChoice;
  /** --mode weight --weight-format auto: each form's time beside float and its fidelity, and the one written. */
  weightFormat?: WeightFormatChoice;
  /** --mode dynamic under --objective latency: the model timed with its convs dynamic and float, and the one written. */
  dynamicConvs?: DynamicConvChoice;
  /** Calibration images: how many, and how they were prepared (mean/std, channel order, from which file). */
  images?: string;
}

export interface QuantizeReport extends QuantizeResult {
  input: string;
  options: QuantizeOptions;
  nodes: NodeDecision[];
  calibration?: CalibrationReport;
  smoothing?: PreparedQuantization['smoothing'];
  mixedPrecision?: BudgetResult;
  progressive?: ProgressiveStep[];
  timings: Record<string, number>;
  /** External-data models are written tensor by tensor: how many new tensors went straight to the data file. */
  streamed?: { tensors: number; bytes: number };
  /** Where the time goes: kernel time per operator type of the float and the quantized model (onnxruntime's profiler). */
  profile?: { reference: OpTimeProfile; candidate: OpTimeProfile };
  /** Verification ran each model a segment at a time (large streamed models): how many segments each. */
  verifiedInSegments?: { reference: number; candidate: number };
}

function validate(o: QuantizeOptions, input: string, output: string): void {
  const bad = (m: string) => new QuantLensError(undefined, m, 'usage');
  // Each value against its declaration (the CLI's and the engine's); then what needs what.
  checkValues(QUANTIZE, { options: o });
  if (o.mode === 'static' && !o.calibration) throw bad('--mode static needs --calibration DIR (or random:N for seeded random data)');
  if (o.algorithm === 'gptq' && !o.calibration) throw bad('--algorithm gptq needs --calibration DIR (or random:N)');
  if ((o.budget !== undefined || o.progressive) && !o.calibration) throw bad('--budget and --progressive measure the model: they need --calibration DIR (or random:N)');
  checkOutputPath(input, output);
}

/** The one-line error for a run that quantized nothing: why the candidates were skipped, or which ops the mode takes. */
function nothingQuantized(input: string, o: QuantizeOptions, skipped: NodeDecision[], nodes: NodeProto[]): QuantLensError {
  if (skipped.length) {
    const why = new Map<string, number>();
    for (const s of skipped) why.set(s.skipped!, (why.get(s.skipped!) ?? 0) + 1);
    const [reason, n] = [...why].sort((a, b) => b[1] - a[1])[0];
    return new QuantLensError(input, `nothing was quantized in ${o.mode} mode: ${skipped.length} node${skipped.length === 1 ? '' : 's'} skipped (${n}: ${reason})`);
  }
  // Pass-through ops only follow their input's scale: they are not what a mode is for.
  const takes = Object.keys(REGISTRIES[o.mode]).filter((op) => !PASS_THROUGH.has(op));
  const others = [...new Set(nodes.map(opKey))].filter((op) => Object.entries(REGISTRIES).some(([m, r]) => m !== o.mode && r[op]));
  return new QuantLensError(input, `nothing was quantized in ${o.mode} mode: it quantizes ${takes.join(', ')}, and the model has none it can take${others.length ? ` (it has ${others.join(', ')}: try ${Object.keys(REGISTRIES).filter((m) => m !== o.mode && others.some((op) => REGISTRIES[m as QuantizeOptions['mode']][op])).map((m) => `--mode ${m}`).join(' or ')})` : ''}`);
}

/** Largest model whose weight formats --weight-format auto builds and times side by side. */
const WEIGHT_FORMAT_SEARCH_BYTES = 512 * 2 ** 20;

/**
 * --mode weight, --weight-format auto: the forms the objective allows, measured beside
 * float (see weight-format.ts). Not for recipes, budgets or progressive runs (their layers mix modes),
 * streamed or large models (too large to build four times) or Optimum's merged decoders (their If
 * branches are written apart): those get 'dequantize' with GatherBlockQuantized embedding tables, as
 * does a search that fails, with a warning.
 */
async function measuredWeightFormat(input: string, loaded: LoadedModel, o: QuantizeOptions, prep: PreparedQuantization, recipe: boolean, warnings: string[], ctx: JobContext): Promise<WeightFormatChoice | undefined> {
  if (o.mode !== 'weight' || o.weightFormat !== 'auto' || recipe || o.budget !== undefined || o.progressive || !prep.plan.size) return undefined;
  if (streamsOutput(loaded) || hasBranchMatMuls(loaded.model.graph!)) return undefined;
  // Each form is built and loaded beside the float model at once: past a few hundred MB that is more
  // memory and time than the choice is worth.
  if (loaded.fileBytes + loaded.externalBytes > WEIGHT_FORMAT_SEARCH_BYTES) {
    warnings.push(`weight format not measured (the model is over ${WEIGHT_FORMAT_SEARCH_BYTES / 2 ** 20} MiB): wrote DequantizeLinear weights and GatherBlockQuantized embedding tables; --weight-format nbits or expand chooses another`);
    return undefined;
  }
  // size: the forms that keep int8 in memory (a DequantizeLinear before a Gather expands the whole table
  // every run, GatherBlockQuantized does not). accuracy: not MatMulNBits' int8 compute, which quantizes
  // activations per block.
  const formats: WeightFormat[] = o.objective === 'size' ? ['dequantize', 'nbits'] : o.objective === 'accuracy' ? ['dequantize', 'expand'] : [...WEIGHT_FORMATS];
  const data = openCalibration(o.calibration ?? 'random:4', loaded.model.graph!, { maxSamples: Math.min(8, o.maxSamples), inputShapes: o.inputShapes });
  try {
    return await chooseWeightFormat(input, prep, data, formats, ctx);
  } catch (e) {
    if (e instanceof CancelledError) throw e;
    warnings.push(`weight format search failed (${errorLine(e)}); wrote --weight-format dequantize`);
    return undefined;
  }
}

/** What runs a conv net's convs as integer kernels when dynamic INT8 cannot (onnxruntime's ConvInteger has no fast path: see dynamic-convs.ts). */
const STATIC_FOR_CONVS = '--mode static (calibrated) runs convs as integer kernels instead (QLinearConv)';

/** Quantizes `input` into `output` (never touching the input), verifies it in onnxruntime, writes the report. */
export async function quantizeModel(input: string, output: string, partial: Partial<QuantizeOptions>, ctx: JobContext = {}): Promise<QuantizeResult> {
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const lap = (k: string, since: number) => (timings[k] = (performance.now() - since) / 1000);
  const options: QuantizeOptions = { ...DEFAULT_QUANTIZE_OPTIONS, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) };
  validate(options, input, output);
  // --device cuda asks for CUDA; quantization still completes on CPU without it, and says so.
  const wantedCuda = options.device === 'cuda';
  const run: QuantizeOptions = wantedCuda ? { ...options, device: 'auto' } : options;
  const recipe = options.recipe ? loadRecipe(options.recipe) : undefined;
  const loaded = loadModel(input);
  refuseQuantized(input, loaded.model);
  // --objective latency with --static-ops auto: calibrate the residual Adds too, then measure the placements.
  const search = options.mode === 'static' && options.staticOps === 'auto' && options.objective === 'latency' && !recipe && options.budget === undefined && !options.progressive && !streamsOutput(loaded);
  const planned: QuantizeOptions = search ? { ...run, staticOps: 'residual' } : run;
  const policy = new QuantPolicy(planned, recipe);
  const prep = await prepareQuantization(loaded, planned, policy, modesUsed(options, recipe), ctx);
  Object.assign(timings, prep.timings);
  const { warnings, calibration } = prep;
  const provider = prep.provider;
  const fallbackReason = prep.fallbackReason;
  // Mixed precision / progressive: rank layers (local sensitivity), then measure real variants.
  let select: (n: string) => boolean = () => true;
  let mixedPrecision: BudgetResult | undefined;
  let progressiveCurve: ProgressiveStep[] | undefined;
  const keptForBudget: NodeDecision[] = [];
  if (options.budget !== undefined || options.progressive) {
    const tm = performance.now();
    const data = prep.data ?? openCalibration(options.calibration!, loaded.model.graph!, { maxSamples: options.maxSamples, inputShapes: options.inputShapes });
    const layers = layersOf(prep);
    const { results } = await measureLayers(prep, layers, data, 'local', ctx);
    const scorer = options.evaluator
      ? await VariantScorer.withEvaluator(prep, { command: options.evaluator, lowerIsBetter: options.evaluatorLowerIsBetter, timeoutSeconds: options.evaluatorTimeoutSeconds })
      : await VariantScorer.create(prep, data, options.budgetMetric);
    let quantizedLayers = results;
    if (options.progressive) {
      const p = await progressive(scorer, results, options.progressiveSteps, options.budget, ctx);
      progressiveCurve = p.curve;
      quantizedLayers = p.quantized;
    } else {
      mixedPrecision = await fitBudget(scorer, results, options.budget!, ctx);
      const kept = new Set(mixedPrecision.keptFloat);
      quantizedLayers = results.filter((l) => !kept.has(l.name));
      if (mixedPrecision.keptFloat.length === results.length) {
        const best = mixedPrecision.evaluations.filter((e) => e.keptFloat < results.length).sort((a, b) => a.drop - b.drop)[0];
        warnings.push(`the budget ${options.budget} cannot be met with any layer quantized, so every layer stays float${best ? `; best found: drop ${best.drop.toFixed(4)} with ${best.keptFloat} of ${results.length} layers float` : ''}`);
      }
    }
    const chosen = new Set(quantizedLayers.flatMap((l) => l.nodes));
    const rank = new Map([...results].sort((a, b) => b.nsr - a.nsr).map((l, i) => [l.name, i + 1]));
    for (const l of results) {
      if (chosen.has(l.nodes[0])) continue;
      for (const n of l.nodes) keptForBudget.push({ node: n, opType: l.opType, modulePath: l.name, skipped: `kept float ${options.progressive ? 'by progressive quantization' : `to stay within the budget ${options.budget}`} (sensitivity rank ${rank.get(l.name)} of ${results.length})` });
    }
    select = (n) => chosen.has(n);
    lap('mixedPrecision', tm);
  }
  let placement: PlacementChoice | undefined;
  const placementSkipped: NodeDecision[] = [];
  let halfStored: Set<string> | undefined;
  const tl = performance.now();
  if (search && prep.plan.size) {
    const all = openCalibration(options.calibration!, loaded.model.graph!, { maxSamples: Math.min(16, options.maxSamples), inputShapes: options.inputShapes });
    // (The variants have an If branch inlined: only the samples that take it.)
    const data = prep.branchSamples ? samplesAt(all, prep.branchSamples) : all;
    try {
      placement = await choosePlacement(input, prep, data, ctx);
    } catch (e) {
      if (e instanceof CancelledError) throw e;
      // A variant onnxruntime refuses (or any failure of the search) must not cost the user the result.
      warnings.push(`placement search failed (${errorLine(e)}); wrote --static-ops compute`);
    }
  }
  if (search && prep.plan.size && !placement) {
    const plan = placementPlan(prep, 'compute', 'all');
    select = plan.select;
    placementSkipped.push(...plan.skipped);
  } else if (placement) {
    const plan = chosenPlan(prep, placement);
    select = plan.select;
    halfStored = floatForSpeed(plan.skipped);
    placementSkipped.push(...plan.skipped);
    lap('placement', tl);
    const chosen = placement.candidates.find((c) => c.placement === placement!.chosen && c.boundaries === placement!.boundaries && !!c.heavyOnly === !!placement!.heavyOnly)!;
    if (partial.objective === 'latency' && chosen.latencyMs >= placement.floatMs) {
      throw new QuantLensError(input, `static INT8 is not faster than float on this CPU under any placement that keeps its fidelity (${placement.why}): nothing written; --objective size writes the smaller model anyway`);
    }
    if (chosen.latencyMs > placement.floatMs * 1.02) warnings.push(`static INT8 is not faster than float on this CPU under any placement that keeps its fidelity (${placement.why}); written with the unfused layers float, ${chosen.nodes} nodes quantized; --objective size quantizes every layer (smaller, slower)`);
  }
  // Dynamic INT8 under --objective latency: time its convs as ConvInteger against leaving them float.
  let dynamicConvs: DynamicConvChoice | undefined;
  if (options.mode === 'dynamic' && options.objective === 'latency' && !recipe && options.budget === undefined && !options.progressive && !streamsOutput(loaded) && prep.plan.size) {
    const td = performance.now();
    const data = openCalibration(options.calibration ?? 'random:4', loaded.model.graph!, { maxSamples: Math.min(8, options.maxSamples), inputShapes: options.inputShapes });
    try {
      dynamicConvs = await chooseDynamicConvs(input, prep, data, partial.objective === 'latency', ctx);
    } catch (e) {
      if (e instanceof CancelledError) throw e;
      warnings.push(`timing dynamic convs against float ones failed (${errorLine(e)}); wrote every conv dynamic`);
    }
    if (dynamicConvs) {
      const plan = dynamicConvPlan(prep, dynamicConvs);
      select = plan.select;
      placementSkipped.push(...plan.skipped);
      lap('dynamicConvs', td);
      const chosen = dynamicConvs.candidates.find((c) => c.convs === dynamicConvs!.chosen)!;
      if (partial.objective === 'latency' && chosen.latencyMs >= dynamicConvs.floatMs) {
        throw new QuantLensError(input, `dynamic INT8 is not faster than float on this CPU (${dynamicConvs.why}): nothing written; ${STATIC_FOR_CONVS}; --objective size writes the smaller model anyway`);
      }
      // Convs left dynamic because nothing else was to be had (a conv net has no other layer dynamic mode
      // quantizes): say what would be faster.
      if (chosen.latencyMs >= dynamicConvs.floatMs && dynamicConvs.chosen !== 'none') warnings.push(`dynamic INT8 of this model's convs is not faster than float on this CPU (${dynamicConvs.why}); ${STATIC_FOR_CONVS}`);
      // Convs kept float for speed that hold most of the weights: the model is barely smaller, say so.
      const share = floatConvShare(prep, plan);
      if (share >= 0.5) warnings.push(`dynamic INT8 kept ${plan.skipped.length} convs float for speed, ${(share * 100).toFixed(0)}% of the weights it would quantize (onnxruntime's ConvInteger is not faster than its Conv on this CPU: ${dynamicConvs.why}); ${STATIC_FOR_CONVS}; --objective size quantizes them anyway`);
    }
  }
  const weightFormat = await measuredWeightFormat(input, loaded, options, prep, !!recipe, warnings, ctx);
  // 'auto' left unmeasured (large, streamed, recipes...) writes 'dequantize', except embedding tables: a
  // DequantizeLinear before a Gather expands the whole table on every run (an LLM's vocabulary for each
  // token), GatherBlockQuantized keeps it int8 and dequantizes the rows gathered.
  const unmeasuredAuto = options.weightFormat === 'auto' && !weightFormat;
  if (weightFormat) lap('weightFormat', tl);
  const tq = performance.now();
  // Stage, verify in onnxruntime against the float model, then move into place.
  const stage = new OutputStage(output, streamsOutput(loaded));
  let applied: NodeDecision[];
  let dequantizedWeights: Map<string, string>;
  try {
    ({ decisions: applied, dequantizedWeights } = await applyQuantization(prep, select, { inPlace: true, signal: ctx.signal, boundaries: placement?.boundaries, weightFormat: weightFormat?.chosen, gatherBlocks: unmeasuredAuto, halfStored, ...(stage.spill ? { spill: stage.spill } : {}) }));
    // Optimum's merged decoder: the MatMuls in its If branches, each shared weight quantized once.
    if (options.mode === 'weight' && hasBranchMatMuls(loaded.model.graph!)) {
      const data = options.calibration ? prep.data ?? openCalibration(options.calibration, loaded.model.graph!, { maxSamples: options.maxSamples, inputShapes: options.inputShapes }) : undefined;
      const editor = new ModelEditor(loaded.model, stage.spill);
      const b = await quantizeBranchMatMuls(editor, loaded, options, policy, data, ctx);
      applied.push(...b.decisions);
      warnings.push(...b.warnings);
      editor.dropUnusedConstants();
    }
    // Static: the If branches inlined for calibration go back into their Ifs, with their Q/DQ.
    if (prep.inlinedBranches) warnings.push(...restoreTakenBranches(new ModelEditor(loaded.model, stage.spill), prep.inlinedBranches, dequantizedWeights));
    // A model with nothing quantized is not a result (unless a budget chose to keep every layer float).
    if (!applied.some((d) => d.how && !d.float16Storage) && !keptForBudget.length) throw nothingQuantized(input, options, prep.skipped, loaded.model.graph!.node ?? []);
  } catch (e) {
    stage.close();
    throw e;
  }
  // 4 bits asked for and layers written at 8 (a conv net has no MatMul for MatMulNBits): said, not only in
  // each node's row of the report.
  const at8 = new Map<string, number>();
  for (const d of applied) if (d.how?.includes(AT_8_BITS)) at8.set(d.opType, (at8.get(d.opType) ?? 0) + 1);
  if (at8.size) warnings.push(`--bits 4 applies to MatMul and Gemm weights (MatMulNBits): ${[...at8].map(([op, n]) => `${n} ${op}`).join(', ')} written at 8 bits`);
  // A layer kept float for speed with its weight stored float16 has a decision of its own.
  const stored = new Set(applied.filter((d) => d.how).map((d) => d.node));
  const decisions = [...applied, ...keptForBudget, ...prep.skipped, ...placementSkipped.filter((s) => !stored.has(s.node))];
  const streamed = stage.spill ? { tensors: stage.spill.count, bytes: stage.spill.bytes } : undefined;
  lap('quantize', tq);
  const v = await saveVerified(loaded.model, loaded, input, output, { data: options.calibration ?? 'random:4', samples: Math.min(8, options.maxSamples), device: run.device, what: 'quantized', inputShapes: options.inputShapes }, ctx, input, stage);
  timings.save = v.saveSeconds;
  timings.verify = v.verifySeconds;
  const check = v.check;
  // Where the time goes, float vs quantized, per operator type as onnxruntime ran them (models verified
  // whole only: a segmented one is too large to profile twice more).
  let profile: QuantizeReport['profile'];
  if (!check.segments) {
    const tp = performance.now();
    const [feeds] = openCalibration(options.calibration ?? 'random:1', loaded.model.graph!, { maxSamples: 1, inputShapes: options.inputShapes }).samples();
    profile = { reference: await profileOpTypes(input, feeds), candidate: await profileOpTypes(output, feeds) };
    timings.profile = (performance.now() - tp) / 1000;
  }
  const slower = slowerWarning('quantized', check.latencyMs, profile);
  if (slower) warnings.push(slower);
  if (options.mode !== 'weight' && options.reduceRange === 'auto' && reducesRange(options)) warnings.push(`weights of integer kernels quantized to 7 bits: ${int8Saturates().why} (--reduce-range off for a target with VNNI)`);
  const randomWarning = randomDataWarning(options.calibration);
  if (randomWarning) warnings.push(randomWarning);
  const empty = emptyOutputsWarning(check.outputs, options.calibration ?? 'random:4');
  if (empty) warnings.push(empty);
  const unmoved = unmovedOutputsWarning(check.outputs, options.calibration ?? 'random:4');
  if (unmoved) warnings.push(unmoved);
  const fellBack = fallbackReason ?? check.fallbackReason;
  if (wantedCuda && fellBack) warnings.push(`CUDA was requested but is unavailable (${fellBack}); ran on CPU`);
  const sizeAfter = v.sizeAfter;
  const quantizedNodes = decisions.filter((d) => d.how && !d.float16Storage);
  const storedHalf = decisions.filter((d) => d.float16Storage);
  const result: QuantizeResult = {
    output,
    sizeBefore: loaded.fileBytes + loaded.externalBytes,
    sizeAfter,
    quantized: quantizedNodes.map((d) => d.node),
    ...(storedHalf.length ? { float16Weights: storedHalf.map((d) => d.node) } : {}),
    skipped: decisions.filter((d) => d.skipped).map((d) => ({ node: d.node, reason: d.skipped! })),
    device: provider ?? check.device,
    seconds: (performance.now() - t0) / 1000,
    report: `${output}.report.json`,
    ...((fallbackReason ?? check.fallbackReason) ? { fallbackReason: fallbackReason ?? check.fallbackReason } : {}),
    weightBytes: {
      before: [...quantizedNodes, ...storedHalf].reduce((a, d) => a + (d.weightBytesBefore ?? 0), 0),
      after: [...quantizedNodes, ...storedHalf].reduce((a, d) => a + (d.weightBytesAfter ?? 0), 0),
    },
    fidelity: check.outputs,
    fidelityData: options.calibration ?? 'random:4',
    latencyMs: check.latencyMs,
    ...(check.latencyStats ? { latencyStats: check.latencyStats } : {}),
    warnings,
    ...(placement ? { placement } : {}),
    ...(weightFormat ? { weightFormat } : {}),
    ...(dynamicConvs ? { dynamicConvs } : {}),
    ...(prep.data?.preprocessing ? { images: prep.data.preprocessing } : {}),
  };
  const report: QuantizeReport = {
    ...result, input, options, nodes: decisions, ...(calibration ? { calibration } : {}), ...(prep.smoothing ? { smoothing: prep.smoothing } : {}),
    ...(mixedPrecision ? { mixedPrecision } : {}), ...(progressiveCurve ? { progressive: progressiveCurve } : {}), timings,
    ...(streamed ? { streamed } : {}),
    ...(check.segments ? { verifiedInSegments: check.segments } : {}),
    ...(profile ? { profile } : {}),
  };
  writeJsonAtomic(result.report, report);
  return result;
}
