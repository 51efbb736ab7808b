import { openCalibration, type CalibrationData } from '../calib/data';
import { CancelledError, QuantLensError } from '../base/errors';
import type { JobContext } from '../base/jobs';
import { ModelEditor } from '../onnx/editor';
import { foldAffineIntoConv, foldShiftsIntoConv } from '../onnx/fold-affine';
import { foldBatchNormIntoConv } from '../onnx/fold-batchnorm';
import { batchNormAsConv, writtenFrom } from '../onnx/batchnorm-as-conv';
import { spatialMeanAsPool } from '../onnx/spatial-mean-as-pool';
import { dropNoopPads, padIntoConv } from '../onnx/pad-into-conv';
import type { LoadedModel } from '../onnx/model-io';
import { modulePathOf, weightSource } from '../onnx/module-path';
import { upgradeBlocker, upgradeToOpset10, upgradeToOpset11 } from '../onnx/opset-upgrade';
import { fuseHardActivations } from '../onnx/fuse-hard-activations';
import { activationEinsumsAsMatMul, einsumAsMatMul } from '../onnx/einsum-matmul';
import { hasFloat16, widenFloat16 } from '../onnx/widen-float16';
import { onnx, type ModelProto, type NodeProto } from '../onnx/proto';
import type { TensorSpill } from '../onnx/tensor-spill';
import { capturedValues, walkGraphs } from '../onnx/walk';
import type { GraphView } from '../onnx/graph';
import { captureTensors } from '../runtime/capture';
import type { Provider } from '../runtime/session';
import type { ActivationQuant, OpQuantizer, QuantContext } from './context';
import { DYNAMIC_QUANTIZERS } from './dynamic/ops';
import { HessianAccumulator } from './hessian';
import { resolvedWeightFormat, type NodeDecision, type QuantizeOptions, type WeightFormat } from './options';
import type { QuantPolicy, Recipe } from './policy';
import { STATIC_QUANTIZERS } from './static/qdq';
import { bypassConstantIdentities } from '../onnx/bypass-identity';
import { foldWeightOps } from '../onnx/fold-weight-ops';
import { squeezeBatchedWeights } from '../onnx/squeeze-batched-weight';
import { readAsLoaded } from '../onnx/as-loaded';
import { calibrateActivations, calibrateWithSmoothing, calibrationTensors, type CalibrationReport, type MeasuredRanges } from './static/calibrate';
import { calibrator } from '../calib/calibrators';
import { affectedLayouts, applySmoothing, planSmoothing, smoothActivations, smoothAndMeasure, type SmoothingDecision } from './static/smooth';
import { gemmNBitsBlocker, WEIGHT_QUANTIZERS } from './weight/ops';
import { attrInt } from '../onnx/attributes';
import { halfStoredWeight } from './half-stored-weight';
import { restoreHalfStorage } from '../onnx/half-storage';
import { floatWeightDims, weightScratch } from './weights';
import { hoistSubgraphWeights } from './subgraph-weights';
import type { InlinedBranch } from '../onnx/inline-branches';
import { inlineTakenBranches, layerIfs, samplesAt } from './static/taken-branches';
import { moveDequantizeBelowCapturedOps } from './static/captured-dq';
import { LAYER_OPS } from '../onnx/layer-ops';

export const REGISTRIES: Record<QuantizeOptions['mode'], Readonly<Record<string, OpQuantizer>>> = {
  weight: WEIGHT_QUANTIZERS,
  dynamic: DYNAMIC_QUANTIZERS,
  static: STATIC_QUANTIZERS,
};
const QUANTIZABLE = new Set(Object.values(REGISTRIES).flatMap((r) => Object.keys(r)));
/** Layers with weights that only some modes quantize (LSTM, fused Attention and embeddings): the others list them as skipped, not silently float. */
const ONE_MODE_LAYERS = new Set(['LSTM', 'GRU', 'RNN', 'com.microsoft::Attention', 'com.microsoft::EmbedLayerNormalization']);
/** A node's key in the registries: its op type, qualified by its domain outside the ONNX one (`com.microsoft::Attention`). */
export const opKey = (node: NodeProto) => (node.domain && node.domain !== 'ai.onnx' ? `${node.domain}::${node.op_type ?? ''}` : node.op_type ?? '');
/**
 * Static mode's default ('compute') leaves these float: in real exports most of them are pieces of
 * decomposed activations and norms (HardSwish, LayerNorm statistics, attention scaling), where one
 * per-tensor 8-bit scale costs accuracy and onnxruntime fuses nothing.
 */
export const ELEMENTWISE = new Set(['Add', 'Mul']);
/**
 * HardSigmoid has an int8 form (see STATIC_QUANTIZERS) but only --static-ops all quantizes it: int8
 * HardSwish gates cost PaddleOCR rec real lines (64 calibration lines, 7-bit weights, every conv
 * quantized: 33 of 48 exact with them int8, 44 with them float; the float model 40).
 */
const ALL_ONLY = new Set(['HardSigmoid']);
/** Activation functions with integer kernels (see STATIC_QUANTIZERS): quantized in every placement, except on data-sized tensors. */
const INT8_ACTIVATIONS = new Set(['Sigmoid', 'LeakyRelu']);

/** Whether both of a binary node's operands are activations (neither is a constant). */
const twoActivations = (node: NodeProto, view: GraphView) => (node.input ?? []).filter((i) => i && !view.constant(i)).length === 2;

/** A residual Add: two activations (no constant operand), as in ResNet blocks; int8 chains pass through it. */
export const isResidualAdd = (node: NodeProto, view: GraphView) => node.op_type === 'Add' && twoActivations(node, view);

/**
 * A gate: the product of an activation and a Sigmoid of one (SiLU's x · Sigmoid(x), a squeeze-excite
 * scale, a GLU), which onnxruntime runs as QLinearMul beside QLinearSigmoid. Quantized in every
 * placement, like the activation functions: left float, each was a float island between integer convs
 * (torchvision EfficientNet-B0, the CLI's model, two interleaved runs: 0.95x and 0.99x float with its 65
 * SiLU gates float, 0.82x and 0.66x with them int8; scratch).
 */
export const isSigmoidGate = (node: NodeProto, view: GraphView) => node.op_type === 'Mul' && (node.domain ?? '') === '' && twoActivations(node, view)
  && (node.input ?? []).some((i) => { const p = view.producer.get(i); return p?.op_type === 'Sigmoid' && (p.domain ?? '') === ''; });

/** Why a static elementwise node stays float under `staticOps` ('auto' plans as 'compute' unless the placement search asks for 'residual'). */
export function elementwiseStaysFloat(node: NodeProto, view: GraphView, staticOps: QuantizeOptions['staticOps']): string | undefined {
  const allOnly = ALL_ONLY.has(node.op_type ?? '');
  const activation = allOnly || INT8_ACTIVATIONS.has(node.op_type ?? '');
  if (!activation && !ELEMENTWISE.has(node.op_type ?? '')) return undefined;
  if ((node.input ?? []).some((i) => dataSized(view).has(i))) return 'static: after TopK/NMS/NonZero its size depends on the data (detection post-processing stays float)';
  if (activation && (view.graph.output ?? []).some((o) => o.name === node.output?.[0])) return 'static: it makes a model output (a probability map, a score): an integer kernel there would only round the answer to 8 bits';
  if (allOnly && staticOps !== 'all') return 'static: a HardSigmoid stays float unless --static-ops all (int8 HardSwish gates cost PaddleOCR rec 11 of 48 exact lines)';
  if (activation || staticOps === 'all' || isSigmoidGate(node, view)) return undefined;
  if (staticOps === 'residual' && isResidualAdd(node, view)) return undefined;
  return `static: ${staticOps === 'residual' ? 'elementwise ops other than residual Adds' : 'elementwise ops'} stay float (--static-ops ${staticOps}; PaddleOCR rec, 64 calibration lines: 22 of 48 lines exact with every Add/Mul quantized, 44 without)`;
}
/** What a node reads: its inputs and the outer values its subgraphs capture. */
const readsOf = (n: NodeProto) => [...(n.input ?? []), ...capturedValues(n)];

/**
 * The values downstream of `seeds` and of every node `starts` marks, following each node that reads one
 * unless `stops` marks it; once per view and kind (each kind keeps its own cache).
 */
function downstream(cache: WeakMap<GraphView, Set<string>>, view: GraphView, seeds: () => string[], starts: (n: NodeProto) => boolean, stops: (n: NodeProto) => boolean = () => false): Set<string> {
  const cached = cache.get(view);
  if (cached) return cached;
  const out = new Set(seeds());
  for (const n of view.topologicalOrder().order) {
    if (stops(n)) continue;
    if (starts(n) || readsOf(n).some((i) => out.has(i))) for (const o of n.output ?? []) if (o) out.add(o);
  }
  cache.set(view, out);
  return out;
}

/** Ops whose output size depends on the values they read (TopK only with a computed k). */
const DATA_SIZED = new Set(['NonZero', 'NonMaxSuppression', 'Compress', 'Unique', 'Loop', 'TopK']);
const dataSizedCache = new WeakMap<GraphView, Set<string>>();

/**
 * Tensors whose size depends on the data: everything downstream of NMS, NonZero, Compress, a Loop or a
 * TopK with a computed k (a detector's box decoding). Integer elementwise kernels on them gain nothing and
 * onnxruntime's multi-threaded QLinearAdd crashed the process on torchvision's RetinaNet post-processing.
 */
function dataSized(view: GraphView): Set<string> {
  return downstream(dataSizedCache, view, () => [], (n) => {
    const op = n.op_type ?? '';
    return (n.domain ?? '') === '' && DATA_SIZED.has(op) && !(op === 'TopK' && (!n.input?.[1] || view.constant(n.input[1])));
  });
}

/** Ops whose output depends only on the shape of what they read. */
const SHAPE_ONLY = new Set(['Shape', 'Size']);
const dataDerivedCache = new WeakMap<GraphView, Set<string>>();

/**
 * Whether `node` reads a value computed from the model's inputs (not only from their shapes and from
 * constants). torchvision Swin-T builds its shifted-window masks and relative-position indices from
 * shapes (ConstantOfShape, Expand, ScatterND, Gather): onnxruntime folds them at load in the float model,
 * but with Q/DQ on them it ran them every run (45 ScatterND, 36 Gather and their Q/DQ pairs).
 */
function readsData(node: NodeProto, view: GraphView): boolean {
  const weights = () => new Set((view.graph.initializer ?? []).map((t) => t.name ?? ''));
  const derived = downstream(dataDerivedCache, view, () => { const w = weights(); return (view.graph.input ?? []).map((v) => v.name ?? '').filter((n) => n && !w.has(n)); },
    () => false, (n) => (n.domain ?? '') === '' && SHAPE_ONLY.has(n.op_type ?? ''));
  return readsOf(node).some((i) => derived.has(i));
}

/** Which input holds the op's weight, for module paths and reports. */
const WEIGHT_INPUT: Record<string, number> = { Gather: 0 };

/** The module a node belongs to; with the graph, a weight behind a Transpose/Reshape names it too. */
export function modulePathOfNode(n: NodeProto, view?: GraphView): string {
  const w = n.input?.[WEIGHT_INPUT[n.op_type ?? ''] ?? 1];
  return modulePathOf(n, w && view ? weightSource(view, w) : w);
}

/**
 * Everything quantization needs that does not depend on which nodes end up quantized: the model after
 * its pre-passes, the plan per node (by name), calibrated activation ranges and GPTQ Hessians. Built
 * once; `applyQuantization` then makes any number of quantized variants from it (the whole plan, one
 * layer, all but one layer), which sensitivity analysis and mixed precision rely on.
 */
export interface PreparedQuantization {
  loaded: LoadedModel;
  options: QuantizeOptions;
  plan: Map<string, QuantizeOptions>;
  skipped: NodeDecision[];
  activations: Map<string, ActivationQuant>;
  hessians: Map<string, Float64Array>;
  calibration?: CalibrationReport;
  /** Static mode: per activation, whether smoothing was applied and what it was estimated to gain. */
  smoothing?: SmoothingDecision[];
  data?: CalibrationData;
  warnings: string[];
  provider?: Provider;
  fallbackReason?: string;
  timings: Record<string, number>;
  /** Weights stored float16 in the file and widened by a Cast there (folded to float32, see foldWeightOps): a layer left float stores them float16 again. */
  halfOrigin?: ReadonlySet<string>;
  /** Static: If branches inlined for calibration, to put back when the model is written (restoreTakenBranches). */
  inlinedBranches?: InlinedBranch[];
  /** When some calibration samples take an If's other branch: the indices of those the inlined model computes right (see samplesAt). */
  branchSamples?: number[];
}

function context(editor: ModelEditor, loaded: LoadedModel, options: QuantizeOptions, optionsFor: (n: NodeProto) => QuantizeOptions,
  decide: (d: NodeDecision) => void, activations: Map<string, ActivationQuant>, hessians: Map<string, Float64Array>): QuantContext {
  const view = editor.view();
  return {
    editor, view, loc: loaded.loc, options, optionsFor, decide, modulePath: (n) => modulePathOfNode(n, view),
    dequantized: new Map(), integerWeights: new Map(), activations, qdqOutputs: new Map(), staticNodes: new Set(), amplified: new Set(), weightFormat: resolvedWeightFormat(options),
    hessian: (n) => {
      const h = hessians.get(n.name ?? '');
      if (!h) throw new Error(`no calibration Hessian for ${n.name}`);
      return h;
    },
  };
}

/** The quantization modes a run uses: the options' own and any a recipe rule sets. */
export function modesUsed(options: QuantizeOptions, recipe?: Recipe): ReadonlySet<QuantizeOptions['mode']> {
  return new Set([options.mode, ...(recipe?.rules ?? []).flatMap((r) => (r.rule.mode ? [r.rule.mode] : []))]);
}

export async function prepareQuantization(loaded: LoadedModel, options: QuantizeOptions, policy: QuantPolicy, modes: ReadonlySet<QuantizeOptions['mode']>, ctx: JobContext = {}): Promise<PreparedQuantization> {
  const timings: Record<string, number> = {};
  const warnings: string[] = [];
  const graph = loaded.model.graph!;
  const editor = new ModelEditor(loaded.model);
  // Local functions inlined and sparse initializers made dense, as onnxruntime loads them.
  warnings.push(...readAsLoaded(editor, loaded.loc, loaded.legacyOpset));
  // Plans and variants refer to nodes by name: give unnamed nodes one (in subgraphs too).
  for (const { graph: g } of walkGraphs(graph)) (g.node ?? []).forEach((n, i) => { if (!n.name) n.name = editor.unique(`${n.op_type}_${i}`); });
  // Weight and dynamic mode reach layers inside If/Loop/Scan bodies: their own weights move to the main graph first.
  const layerOps = new Set([...(modes.has('weight') ? Object.keys(WEIGHT_QUANTIZERS) : []), ...(modes.has('dynamic') ? Object.keys(DYNAMIC_QUANTIZERS) : [])]);
  const hoisted = layerOps.size ? hoistSubgraphWeights(editor, (n) => layerOps.has(opKey(n))) : 0;
  if (hoisted) warnings.push(`moved ${hoisted} weight${hoisted === 1 ? '' : 's'} that If/Loop/Scan bodies kept as their own initializers to the main graph (the bodies read them from there), so ${modes.has('weight') ? 'weight' : 'dynamic'} mode quantizes them`);
  const halfOrigin = new Set<string>();
  // Exact rewrites of the main graph; run again over a branch inlined below.
  const simplify = (stage: 'weights' | 'layers'): string[] => {
    const out: string[] = [];
    if (stage === 'weights') {
      // Weights and biases that torch.onnx hands out through Identity nodes become plain constant reads.
      bypassConstantIdentities(editor);
      // Einsum projections (x · W with a stored W) become MatMul, which the integer kernels take.
      const einsums = einsumAsMatMul(editor);
      if (einsums) out.push(`wrote ${einsums} Einsum layer${einsums === 1 ? '' : 's'} as MatMul (products with a stored weight: the same values, and only MatMul has integer kernels)`);
      // Static: attention's products of two activations too (QLinearMatMul, where an Einsum stays float).
      const products = modes.has('static') ? activationEinsumsAsMatMul(editor) : 0;
      if (products) out.push(`wrote ${products} Einsum product${products === 1 ? '' : 's'} of two activations as MatMul (attention's scores and mix: the same values, and static INT8 runs MatMul as an integer kernel)`);
      // Weights behind Transpose/Reshape/Cast (exports without constant folding) become stored weights too.
      const folded = foldWeightOps(editor, loaded.loc, halfOrigin);
      if (folded) out.push(`folded ${folded} Transpose/Reshape/Cast node${folded === 1 ? '' : 's'} between stored weights and their layers (onnxruntime folds them at load too)`);
      const squeezed = squeezeBatchedWeights(editor);
      if (squeezed) out.push(`read ${squeezed} MatMul weight${squeezed === 1 ? '' : 's'} of shape [1, …, K, N] as [K, N], the product expanded back (integer kernels take 2-D weights)`);
      return out;
    }
    // Exact rewrites of decomposed HardSwish/HardSigmoid: fewer float ops, fewer float islands between int8 kernels.
    const hard = fuseHardActivations(editor, loaded.loc);
    if (hard.hardSwish + hard.hardSigmoid) out.push(`rewrote ${[hard.hardSwish ? `${hard.hardSwish} decomposed HardSwish (Add/Clip/Mul/Div → HardSigmoid and Mul)` : '', hard.hardSigmoid ? `${hard.hardSigmoid} decomposed HardSigmoid (Add/Clip/Div → HardSigmoid)` : ''].filter(Boolean).join(' and ')}: the same function in fewer ops`);
    if (modes.has('static')) {
      // Static Conv quantization needs BatchNormalization folded in first (see fold-batchnorm.ts).
      const folded = foldBatchNormIntoConv(editor, loaded.loc);
      if (folded.length) {
        editor.dropUnusedConstants();
        out.push(`folded ${folded.length} BatchNormalization node${folded.length === 1 ? '' : 's'} into the Conv before ${folded.length === 1 ? 'it' : 'them'}`);
      }
      // Constant scales/shifts after a Conv: folded exactly, so no Q/DQ lands between them.
      const affine = foldAffineIntoConv(editor, loaded.loc);
      if (affine) {
        editor.dropUnusedConstants();
        out.push(`folded ${affine} constant Mul/Add node${affine === 1 ? '' : 's'} into the Conv before ${affine === 1 ? 'it' : 'them'}`);
      }
      // A Pad of nothing (torch's AvgPool2d with count_include_pad): gone.
      const noop = dropNoopPads(editor, loaded.loc);
      if (noop.length) out.push(`dropped ${noop.length} Pad node${noop.length === 1 ? '' : 's'} that pad nothing (every amount 0)`);
      // A zero Pad before a Conv (tf2onnx's 'SAME' stride-2 convs): the conv's own padding.
      const pads = padIntoConv(editor, loaded.loc);
      if (pads.length) out.push(`folded ${pads.length} zero Pad node${pads.length === 1 ? '' : 's'} into the Conv after ${pads.length === 1 ? 'it' : 'them'} (its own padding, as onnxruntime's float optimizer does)`);
      // A mean over the spatial axes (a global pool written as ReduceMean): GlobalAveragePool, which runs int8.
      const pools = spatialMeanAsPool(editor, loaded.loc);
      if (pools.length) out.push(`wrote ${pools.length} ReduceMean node${pools.length === 1 ? '' : 's'} over every spatial axis as GlobalAveragePool (the same mean; onnxruntime runs it as an integer kernel)`);
      // The norms no Conv absorbed (after a Concat or an Add): a depthwise 1x1 Conv, which runs int8.
      const asConv = batchNormAsConv(editor, loaded.loc);
      if (asConv.length) {
        editor.dropUnusedConstants();
        out.push(`wrote ${asConv.length} BatchNormalization node${asConv.length === 1 ? '' : 's'} no Conv before ${asConv.length === 1 ? 'it' : 'them'} could absorb as ${asConv.length === 1 ? 'a depthwise 1x1 Conv' : 'depthwise 1x1 Convs'} (the same affine; onnxruntime runs ${asConv.length === 1 ? 'it' : 'them'} as integer kernels)`);
      }
    }
    return out;
  };
  warnings.push(...simplify('weights'));
  // Static and dynamic INT8 kernels take float32: a float16 model computes in float32 between them and
  // keeps its float16 inputs and outputs (weight-only mode keeps float16 and uses float16 scales).
  if ((options.mode === 'static' || options.mode === 'dynamic') && hasFloat16(graph)) {
    const w = widenFloat16(editor, loaded.loc);
    warnings.push(`float16 model: computed in float32 between the int8 kernels (${w.tensors} tensors widened), its ${w.edges} float16 inputs/outputs kept behind Casts`);
  }
  warnings.push(...simplify('layers'));
  // QuantizeLinear, ConvInteger and the QLinear kernels onnxruntime fuses Q/DQ into start at opset 10
  // (dynamic MatMuls take a contrib op at any opset: only convs make dynamic mode upgrade). Static mode
  // goes to 11: onnxruntime's own bias quantization of a float layer between Q/DQ writes a Round (11).
  const dynamicConvs = modes.has('dynamic') && [...walkGraphs(graph)].some(({ graph: g }) => (g.node ?? []).some((n) => n.op_type === 'Conv' && (n.domain ?? '') === ''));
  const from = editor.opset();
  const target = modes.has('static') ? 11 : 10;
  if ((modes.has('static') || dynamicConvs) && from < target) {
    const blocker = upgradeBlocker(editor);
    if (blocker && modes.has('static')) throw new QuantLensError(loaded.loc.file, `static INT8 needs opset 11 (QuantizeLinear, the QLinear kernels, and Round for onnxruntime's bias quantization), and ${blocker}: re-export at opset 11 or later, or use --mode weight`);
    if (!blocker) {
      const r = [...upgradeToOpset10(editor), ...(target === 11 ? upgradeToOpset11(editor) : [])];
      warnings.push(`model upgraded from opset ${from} to ${target}${target === 10 ? ', the first with QuantizeLinear, ConvInteger and the QLinear kernels' : ' for static INT8'}${r.length ? ` (${r.length} nodes rewritten in their opset-${target} form)` : ''}`);
    }
  }
  // Static: the branch of an If that most calibration samples take comes into the main graph, where
  // calibration can see its values, and the data keeps those samples (put back by restoreTakenBranches
  // when the model is written).
  let data: CalibrationData | undefined;
  let inlinedBranches: InlinedBranch[] = [];
  let branchSamples: number[] | undefined;
  // (Layers with a weight make a branch worth inlining; a Gather there is mostly shape arithmetic.)
  const staticLayer = (n: NodeProto) => LAYER_OPS.has(opKey(n));
  if (modes.has('static') && options.calibration && layerIfs(graph, staticLayer).length) {
    data = openCalibration(options.calibration, graph, { maxSamples: options.maxSamples, inputShapes: options.inputShapes });
    const r = await inlineTakenBranches(editor, loaded, data, options.device, staticLayer, ctx);
    inlinedBranches = r.inlined;
    warnings.push(...r.warnings);
    if (r.samples) {
      branchSamples = r.samples;
      data = samplesAt(data, r.samples);
    }
    if (inlinedBranches.length) warnings.push(...[...simplify('weights'), ...simplify('layers')].map((w) => `${w} (in the inlined branch${inlinedBranches.length === 1 ? '' : 'es'})`));
  }
  const plan = new Map<string, QuantizeOptions>();
  const skipped: NodeDecision[] = [];
  const activations = new Map<string, ActivationQuant>();
  const hessians = new Map<string, Float64Array>();
  const qctx = context(editor, loaded, options, (n) => plan.get(n.name ?? '') ?? options, () => undefined, activations, hessians);

  // A node's decision to leave it float, and the policy's word on it (recipe, --exclude).
  const skipper = (node: NodeProto) => (reason: string) => skipped.push({ node: node.name ?? '', opType: node.op_type ?? '', modulePath: modulePathOfNode(node, qctx.view), skipped: reason });
  const resolve = (node: NodeProto) => policy.resolve(modulePathOfNode(node, qctx.view), node.name ?? '');
  // Plan: policy (exclude / recipe), then each op quantizer's own "should I?".
  const planned: NodeProto[] = [];
  // The Identities an inlined branch hands its outputs through stand for the If's outputs: left as they are.
  const branchOutputs = new Set(inlinedBranches.flatMap((b) => b.identities));
  for (const node of graph.node ?? []) {
    const op = opKey(node);
    if (!QUANTIZABLE.has(op) || branchOutputs.has(node.name ?? '')) continue;
    const skip = skipper(node), r = resolve(node);
    if ('keep' in r) {
      if (REGISTRIES[options.mode][op]) skip(r.keep);
      continue;
    }
    const quantizer = REGISTRIES[r.options.mode][op];
    // Static only: weight and dynamic mode still store such a layer's weights int8 (a position table
    // gathered by Range(Shape(x)) is a file size too).
    if (quantizer && r.options.mode === 'static' && !readsData(node, qctx.view)) {
      skip('static: it computes from shapes and constants only: onnxruntime folds that when it loads the model, and Q/DQ there would make it compute it every run');
      continue;
    }
    const floatElementwise = r.options.mode === 'static' ? elementwiseStaysFloat(node, qctx.view, r.options.staticOps) : undefined;
    if (floatElementwise) {
      skip(floatElementwise);
      continue;
    }
    if (!quantizer) {
      // Not an op this mode quantizes; a layer with weights that another mode takes is listed, with where to go.
      const elsewhere = ONE_MODE_LAYERS.has(op) ? (Object.keys(REGISTRIES) as Array<QuantizeOptions['mode']>).filter((m) => REGISTRIES[m][op]) : [];
      if (elsewhere.length) skip(`${r.options.mode} mode leaves ${node.op_type} float (${elsewhere.map((m) => `--mode ${m}`).join(' or ')} quantizes it)`);
      continue;
    }
    plan.set(node.name!, r.options);
    const why = quantizer.check(node, qctx);
    if (why) { plan.delete(node.name!); skip(why); } else planned.push(node);
  }
  // Layers inside If/Loop/Scan bodies: weight mode's (their weights are constants), except the 4-bit MatMuls
  // of top-level If branches, which the branch pass takes (quantizeBranchMatMuls: GPTQ runs each branch),
  // and dynamic mode's (it quantizes the activations where they are, inside the body). Static mode would
  // need their ranges, which onnxruntime does not hand out from inside a body.
  const ifBranches = new Set((graph.node ?? []).filter((n) => n.op_type === 'If').flatMap((n) => (n.attribute ?? []).map((a) => a.g).filter(Boolean)));
  let gptqInBodies = 0;
  for (const { graph: g, depth } of walkGraphs(graph)) {
    if (depth === 0) continue;
    for (const node of g.node ?? []) {
      const op = opKey(node);
      if (!QUANTIZABLE.has(op)) continue;
      const skip = skipper(node), r = resolve(node);
      if ('keep' in r) {
        // (A top-level If branch's MatMul kept float is the branch pass's to report, in weight mode.)
        const branchPass = options.mode === 'weight' && op === 'MatMul' && ifBranches.has(g);
        if ((WEIGHT_QUANTIZERS[op] || REGISTRIES[options.mode][op]) && !branchPass) skip(r.keep);
        continue;
      }
      // Listed: the layers with weights (ops without any, as in the main graph, are not).
      if (!WEIGHT_QUANTIZERS[op]) continue;
      if (r.options.mode === 'static') {
        skip('inside a subgraph (a Loop/Scan body, or the If branch fewer calibration samples take): static mode needs calibrated ranges there, which onnxruntime does not hand out (--mode weight or dynamic quantizes it)');
        continue;
      }
      const quantizer = REGISTRIES[r.options.mode][op];
      if (!quantizer) continue;
      if (r.options.mode === 'weight' && op === 'MatMul' && r.options.bits === 4 && ifBranches.has(g)) continue;
      // GPTQ's Hessians come from a layer's inputs, which a body cannot hand out: round to nearest there.
      const o = r.options.mode === 'weight' && op === 'MatMul' && r.options.bits === 4 && r.options.algorithm === 'gptq' ? (gptqInBodies++, { ...r.options, algorithm: 'rtn' as const }) : r.options;
      plan.set(node.name!, o);
      const why = quantizer.check(node, qctx);
      if (why) { plan.delete(node.name!); skip(why); }
    }
  }
  if (gptqInBodies) warnings.push(`${gptqInBodies} MatMul${gptqInBodies === 1 ? '' : 's'} inside Loop/Scan bodies or nested If branches: rounded to nearest (GPTQ needs their inputs, which onnxruntime cannot hand out from there)`);

  // Calibration: one data set for GPTQ Hessians and activation ranges.
  // (A MatMul whose weight is its first input is stored int8: no Hessian to take.)
  // (A Gemm becomes MatMulNBits where it can, see gemmNBitsBlocker; its weight read as [K, N].)
  const nbitsGemm = (n: NodeProto) => n.op_type === 'Gemm' && !gemmNBitsBlocker(n, qctx.view, loaded.loc);
  const gptq = planned.filter((n) => (n.op_type === 'MatMul' || nbitsGemm(n)) && plan.get(n.name!)!.mode === 'weight' && plan.get(n.name!)!.bits === 4 && plan.get(n.name!)!.algorithm === 'gptq' && floatWeightDims(qctx.view, n.input![1], loaded.loc, true));
  const transposed = (n: NodeProto) => n.op_type === 'Gemm' && attrInt(n, 'transB', 0) === 1;
  const hessianKey = (n: NodeProto) => `${n.input![1]}${transposed(n) ? '|T' : ''}`;
  const statics = planned.filter((n) => plan.get(n.name!)!.mode === 'static');
  let provider: Provider | undefined;
  let fallbackReason: string | undefined;
  if (options.calibration && (gptq.length || statics.length)) {
    data ??= openCalibration(options.calibration, graph, { maxSamples: options.maxSamples, inputShapes: options.inputShapes });
    if (data.warning) warnings.push(data.warning);
  }
  if (gptq.length && data) {
    const t = performance.now();
    // One Hessian per weight: a weight several MatMuls read (shared layers) is written once, rounded for
    // the inputs of all of them (as weights inside branches are, see branches.ts).
    const acc = new Map<string, HessianAccumulator>(gptq.map((n) => [hessianKey(n), new HessianAccumulator(floatWeightDims(qctx.view, n.input![1], loaded.loc, true)![transposed(n) ? 1 : 0])]));
    const byInput = new Map<string, NodeProto[]>();
    for (const n of gptq) byInput.set(n.input![0], [...(byInput.get(n.input![0]) ?? []), n]);
    const run = await captureTensors(loaded, [...byInput.keys()], data, options.device, (values, _i, feeds) => {
      for (const [name, nodes] of byInput) for (const n of nodes) acc.get(hessianKey(n))!.add(values[name] ?? feeds[name]);
    }, ctx);
    const results = new Map([...acc].map(([w, a]) => [w, a.result()]));
    for (const n of gptq) hessians.set(n.name!, results.get(hessianKey(n))!);
    provider = run.provider;
    fallbackReason = run.fallbackReason;
    timings.gptqHessians = (performance.now() - t) / 1000;
  }
  let calibration: CalibrationReport | undefined;
  let smoothing: SmoothingDecision[] | undefined;
  if (statics.length && data) {
    const t = performance.now();
    statics.forEach((n) => qctx.staticNodes.add(n));
    let measured: MeasuredRanges | undefined;
    if (options.smoothing !== 'off') {
      const planned = planSmoothing(editor, loaded, statics, options.objective === 'latency');
      const settle = (decisions: SmoothingDecision[]) => {
        smoothing = decisions;
        if (decisions.some((d) => !d.skipped)) editor.dropUnusedConstants();
        qctx.view = editor.view(); // smoothing added constants: the plan's view must see them
      };
      if (planned.items.length && calibrator(options.calibrationMethod, options).bins === 0) {
        // MinMax: smoothing's per-channel maxima and every range come from one pass (see smoothAndMeasure).
        const one = await smoothAndMeasure(editor, loaded, planned, calibrationTensors(statics, qctx), data, options.device, ctx);
        measured = one?.measured;
        if (one) settle(one.decisions);
      } else if (planned.items.length && options.smoothing !== 'separate') {
        // Histogram methods: smoothing decides inside the calibration pass (see calibrateWithSmoothing).
        calibration = await calibrateWithSmoothing(loaded, qctx, statics, data, options, ctx, {
          affected: affectedLayouts(planned), items: planned.specs.map((sp) => sp.tensor),
          apply: (absmax) => { const r = applySmoothing(editor, loaded, planned, absmax); settle(r.decisions); return r.scales; },
        });
      }
      if (!smoothing) settle(planned.items.length ? await smoothActivations(editor, loaded, planned, data, options.device, ctx) : planned.decisions);
      // (Decided inside the histogram pass, smoothing has no time of its own: calibration's is both.)
      if (!calibration) timings.smoothing = (performance.now() - t) / 1000;
    }
    calibration ??= await calibrateActivations(loaded, qctx, statics, data, options, ctx, measured);
    provider ??= calibration.device;
    fallbackReason ??= calibration.fallbackReason;
    timings.calibration = (performance.now() - t) / 1000;
  }
  return { loaded, options, plan, skipped, activations, hessians, calibration, smoothing, data, warnings, provider, fallbackReason, timings, halfOrigin, ...(inlinedBranches.length ? { inlinedBranches } : {}), ...(branchSamples ? { branchSamples } : {}) };
}

export interface ApplyOptions {
  inPlace?: boolean;
  signal?: AbortSignal;
  spill?: TensorSpill;
  boundaries?: boolean;
  weightFormat?: WeightFormat;
  /** Embedding tables as GatherBlockQuantized in any form (an unmeasured --weight-format auto). */
  gatherBlocks?: boolean;
  /**
   * Planned static layers `select` leaves float for speed (their output feeds float ops, so onnxruntime
   * would not fuse them): their weights are stored float16 and widened when onnxruntime loads the model
   * (see half-stored-weight.ts), so the file shrinks and the float kernel runs as before.
   */
  halfStored?: ReadonlySet<string>;
}

/**
 * Builds a quantized model from the prepared plan, quantizing the planned nodes `select` accepts.
 * `inPlace` edits the prepared model itself (one final build); otherwise a copy is edited.
 */
export async function applyQuantization(prep: PreparedQuantization, select: (node: string) => boolean = () => true, opts: ApplyOptions = {}): Promise<{ model: ModelProto; decisions: NodeDecision[]; dequantizedWeights: Map<string, string> }> {
  const model = opts.inPlace ? prep.loaded.model : onnx.ModelProto.decode(onnx.ModelProto.encode(prep.loaded.model).finish());
  // Streaming (the final, in-place build of an external-data model): quantized tensors go to the output file as made.
  const editor = new ModelEditor(model, opts.inPlace ? opts.spill : undefined);
  const decisions: NodeDecision[] = [];
  // Decisions name the op a node was written from (a norm written as a conv is listed as the norm).
  const writtenAs = new Map((model.graph!.node ?? []).filter((n) => writtenFrom(n) !== n.op_type).map((n) => [n.name ?? '', writtenFrom(n)]));
  const qctx = context(editor, prep.loaded, prep.options, (n) => prep.plan.get(n.name ?? '') ?? prep.options, (d) => decisions.push(writtenAs.has(d.node) ? { ...d, opType: writtenAs.get(d.node)! } : d), new Map(prep.activations), prep.hessians);
  // Layers in If/Loop/Scan bodies too (weight and dynamic mode): a weight's dequantization goes before the
  // main-graph node holding the body, an activation's quantization stays in the body beside its reader.
  const chosen = [...walkGraphs(model.graph!)].flatMap(({ graph }) => graph.node ?? []).filter((n) => prep.plan.has(n.name ?? '') && select(n.name!));
  for (const n of chosen) if (prep.plan.get(n.name!)!.mode === 'static') qctx.staticNodes.add(n);
  qctx.quantizeOutputs = opts.boundaries;
  qctx.weightFormat = opts.weightFormat ?? resolvedWeightFormat(prep.options);
  qctx.gatherBlocks = opts.gatherBlocks;
  // In graph order: nodes inserted before their consumer keep the order topological.
  for (const node of chosen) {
    if (opts.signal?.aborted) throw new CancelledError();
    const o = prep.plan.get(node.name!)!;
    // A variant's plan may give a node a mode whose quantizer does not take it: ask again.
    const q = REGISTRIES[o.mode][opKey(node)];
    if (!q || q.check(node, qctx)) continue;
    await q.apply(node, qctx);
  }
  // (onnxruntime aborts on a DequantizeLinear before a Transpose that a body reads: see captured-dq.ts.)
  if (qctx.staticNodes.size) moveDequantizeBelowCapturedOps(editor);
  const halves = new Map<string, string>();
  const view = opts.halfStored?.size ? editor.view() : undefined;
  for (const node of [...(model.graph!.node ?? [])]) {
    if (!view || !opts.halfStored?.has(node.name ?? '') || select(node.name!)) continue;
    // Float, so the shift before it can join its bias (see foldShiftsIntoConv): one float pass fewer.
    foldShiftsIntoConv(editor, view, prep.loaded.loc, node, (n) => qctx.staticNodes.has(n));
    const d = halfStoredWeight(qctx, node, 1, halves, 'float kernel, kept for speed (its output feeds float ops)');
    if (d) decisions.push(d);
  }
  weightScratch.release();
  editor.dropUnusedConstants();
  // What the export stored float16 and a layer still reads float: float16 again, as it was (exact).
  if (prep.halfOrigin?.size) restoreHalfStorage(editor, prep.halfOrigin);
  // Float weights → their int8 copies' DequantizeLinear outputs (an inlined branch's other branch reads those: restoreTakenBranches).
  const dequantizedWeights = new Map([...qctx.dequantized].map(([key, d]) => [key.split('|')[0], d.output]));
  return { model, decisions, dequantizedWeights };
}
