import type { CompareReport } from '../compare';
import { openCalibration } from '../calib/data';
import { QuantLensError } from '../base/errors';
import { writeJsonAtomic } from '../fs/json';
import { summarizeModel } from '../inspect';
import type { JobContext } from '../base/jobs';
import { emptyOutputsWarning, randomDataWarning, unmovedOutputsWarning } from '../eval/metrics';
import { bypassConstantIdentities, copyConstantIdentities } from '../onnx/bypass-identity';
import { foldWeightOps } from '../onnx/fold-weight-ops';
import { restoreHalfStorage } from '../onnx/half-storage';
import { einsumAsMatMul } from '../onnx/einsum-matmul';
import { readAsLoaded } from '../onnx/as-loaded';
import { ModelEditor } from '../onnx/editor';
import { loadModel } from '../onnx/model-io';
import type { Provider } from '../runtime/session';
import { checkOutputPath, OutputStage, saveVerified, streamsOutput } from '../verified-output';
import { layerInputMeans, layerInputStats, type LayerInputStats } from './layer-inputs';
import { findPrunableLayers, PRUNABLE_OPS, writeFloatTensor, type PrunableLayer } from './layers';
import { hoistSubgraphWeights } from '../quant/subgraph-weights';
import { walkNodes } from '../onnx/walk';
import { floatWeight, weightScratch } from '../quant/weights';
import { nmViolations } from './magnitude';
import { sparsityMap, type SparsityMap } from './maps';
import { applyDataDefaults, DEFAULT_PRUNE_OPTIONS, validatePruneOptions, type PruneOptions } from './options';
import { probeShapes, pruneStructured, type ChannelGroup } from './structured/structured';
import { refitPaired } from './structured/refit-paired';
import { onnx } from '../onnx/proto';
import { pruneUnstructured, type PrunedWeight } from './unstructured';
import { writeMasks } from './masks';

export interface PrunedLayer {
  /** Module path, and the node it was found at. */
  name: string;
  node: string;
  opType: string;
  /** Share of the layer's weights that are zero (magnitude, N:M) or removed (structured). */
  sparsity: number;
  shapeBefore: number[];
  shapeAfter: number[];
  reconstruction?: string;
  /** N:M: groups holding more than N non-zeros in the written model (0 when the pattern holds). */
  nmViolations?: number;
}

/** `prune --json`: the contract's fields first, extras after. */
export interface PruneResult {
  output: string;
  sizeBefore: number;
  sizeAfter: number;
  parametersBefore: number;
  parametersAfter: number;
  /** Achieved: zeroed or removed weights ÷ weights of the prunable layers before. */
  sparsity: number;
  layers: PrunedLayer[];
  method: PruneOptions['method'];
  skipped: Array<{ node: string; reason: string }>;
  groups?: ChannelGroup[];
  /** Structured: why kept channel counts were rounded (--round-to auto), when any were. */
  rounding?: string;
  /** Structured: layers whose bias took the removed inputs' mean (bias compensation), and where the means came from. */
  compensation?: { layers: number; data: string };
  fidelity: CompareReport['outputs'];
  /** The samples fidelity was measured on (`random:4` when no calibration data was given). */
  fidelityData: string;
  latencyMs: CompareReport['latencyMs'];
  latencyStats?: CompareReport['latencyStats'];
  device: Provider;
  fallbackReason?: string;
  seconds: number;
  report: string;
  masks?: string;
  warnings: string[];
  /** Choices made for the user (defaults that depend on the data), said once. */
  notes: string[];
}

export interface PruneReport extends PruneResult {
  input: string;
  options: PruneOptions;
  /** Per layer, tiles of density and magnitude for the heatmap view. */
  maps: Record<string, SparsityMap>;
  timings: Record<string, number>;
  /** External-data models are written a layer at a time: the weights that went straight to the data file. */
  streamed?: { tensors: number; bytes: number };
  /** Verification ran each model a segment at a time (large streamed models): how many segments each. */
  verifiedInSegments?: { reference: number; candidate: number };
}

/** Prunes `input` into `output` (never touching the input), verifies it in onnxruntime, writes the report. */
export async function pruneModel(input: string, output: string, partial: Partial<PruneOptions>, ctx: JobContext = {}, extra: { masks?: string; reference?: string; latencyRuns?: number } = {}): Promise<PruneResult> {
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const o: PruneOptions = { ...DEFAULT_PRUNE_OPTIONS, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) };
  const notes: string[] = [];
  const chosen = applyDataDefaults(o, partial);
  if (chosen) notes.push(chosen);
  validatePruneOptions(o);
  checkOutputPath(input, output);
  const loaded = loadModel(input);
  const before = summarizeModel(loaded);
  const warnings: string[] = [];
  const editor = new ModelEditor(loaded.model);
  // Local functions inlined and sparse initializers made dense, as onnxruntime loads them.
  warnings.push(...readAsLoaded(editor, loaded.loc, loaded.legacyOpset));
  // Tensors the exporter shared between layers through Identity nodes: each layer gets its own copy where
  // pruning changes it for that layer (structured slices every tensor; the other methods only weights),
  // the rest read the one stored tensor (copied, RetinaNet's shared zero biases grew the pruned model by
  // 26,624 parameters).
  if (o.method !== 'structured') {
    const v = editor.view();
    bypassConstantIdentities(editor, (t) => !v.consumersOf(t).some((n) => PRUNABLE_OPS.has(n.op_type ?? '') && n.input?.[1] === t));
  }
  copyConstantIdentities(editor);
  // Unstructured and N:M: layers inside If/Loop/Scan bodies (Silero VAD keeps every conv in two If
  // branches) have their body's own weights moved to the main graph first, where pruning writes them.
  const hoisted = o.method === 'structured' ? 0 : hoistSubgraphWeights(editor, (n) => PRUNABLE_OPS.has(n.op_type ?? '') && (n.domain ?? '') === '');
  if (hoisted) warnings.push(`moved ${hoisted} weight${hoisted === 1 ? '' : 's'} that If/Loop/Scan bodies kept as their own initializers to the main graph (the bodies read them from there), to prune them`);
  // Einsum projections (x · W with a stored W) as the MatMul they are, so they prune like any MatMul.
  const einsums = einsumAsMatMul(editor);
  if (einsums) warnings.push(`wrote ${einsums} Einsum layer${einsums === 1 ? '' : 's'} as MatMul (products with a stored weight: the same values), to prune ${einsums === 1 ? 'it' : 'them'}`);
  // Weights behind Transpose/Reshape/Cast (exports without constant folding): the layer's own, stored.
  const halfOrigin = new Set<string>();
  foldWeightOps(editor, loaded.loc, halfOrigin);
  const view = editor.view();
  const { layers, skipped } = findPrunableLayers(view, loaded.loc, o.exclude, o.method === 'structured');
  if (!layers.length) {
    const inBodies = o.method === 'structured' ? [...walkNodes(view.graph)].filter((w) => w.depth > 0 && PRUNABLE_OPS.has(w.node.op_type ?? '')).length : 0;
    const why = inBodies ? `: ${inBodies} inside If/Loop/Scan bodies, which structured pruning does not reach (--method magnitude or nm prunes them)` : skipped.length ? `: ${skipped[0].node}: ${skipped[0].reason}` : '';
    throw new QuantLensError(input, `has no layer to prune (MatMul, Gemm, Conv or ConvTranspose with a stored float weight)${why}`);
  }
  const shapesBefore = new Map(layers.map((l) => [l, l.dims.slice()]));
  const data = openCalibration(o.calibration ?? 'random:1', loaded.model.graph!, { maxSamples: o.maxSamples, inputShapes: o.inputShapes });
  if (data.warning && o.calibration) warnings.push(data.warning);
  let stats: Map<PrunableLayer, LayerInputStats> | undefined;
  let provider: Provider | undefined;
  let fallbackReason: string | undefined;
  // Structured pruning's bias compensation needs the layers' input means: from the calibration data, or
  // from seeded random inputs without it.
  const compensate = o.method === 'structured' && o.compensate;
  // Structured --reconstruct refits against the float model fed side by side with the pruned one (it
  // needs the float graph kept in memory: not for models streamed to external data).
  const paired = o.method === 'structured' && o.reconstruct && !streamsOutput(loaded);
  const floatModel = paired ? onnx.ModelProto.decode(onnx.ModelProto.encode(loaded.model).finish()) : undefined;
  if (o.method === 'structured' && o.reconstruct && !paired) notes.push('--reconstruct on a model with external data refits each layer from the float model\'s inputs alone (the side-by-side refit against the pruned model needs both in memory)');
  const statsSource = o.calibration ?? 'random:8';
  if ((o.calibration && (o.importance === 'activation' || o.reconstruct)) || compensate) {
    const tc = performance.now();
    // Other seeds than the random samples the result is verified on.
    const statsData = o.calibration ? data : openCalibration(statsSource, loaded.model.graph!, { maxSamples: 8, seed: 7000, inputShapes: o.inputShapes });
    // Norms and Hessians need the activations themselves; means alone are reduced inside onnxruntime.
    const full = o.calibration && (o.importance === 'activation' || o.reconstruct);
    const r = full ? await layerInputStats(loaded, layers, statsData, o.device, o.reconstruct && !paired, ctx) : await layerInputMeans(loaded, layers, statsData, o.device, ctx);
    ({ stats, provider, fallbackReason } = r);
    timings.calibration = (performance.now() - tc) / 1000;
  }
  ctx.onProgress?.({ stage: 'prune', message: `${o.method} pruning of ${layers.length} layers` });
  const tp = performance.now();
  const layerRows: PrunedLayer[] = [];
  const maps: Record<string, SparsityMap> = {};
  let groups: ChannelGroup[] | undefined;
  let rounding: string | undefined;
  let compensation: PruneResult['compensation'];
  let misaligned: { layers: number; block: number; why: string } | undefined;
  let masksFile: string | undefined;
  // Staged beside the output; an external-data model streams its pruned weights into the staged data file.
  const stage = new OutputStage(output, streamsOutput(loaded));
  try {
    if (o.method === 'structured') {
      const shapes = await probeShapes(loaded, data, o.device, ctx);
      const r = pruneStructured(editor, loaded, layers, shapes, o, stats, stage.spill ? (t) => stage.spill!.take(t) : undefined, paired);
      if (floatModel && r.refitTargets.length) r.reconstructed.push(...await refitPaired(floatModel, editor, loaded, r.refitTargets, data, o.device, o.damp, ctx));
      groups = r.groups;
      misaligned = r.misaligned;
      if (r.compensated.size) compensation = { layers: r.compensated.size, data: statsSource };
      if (r.groups.some((g) => g.roundedTo)) rounding = r.rounding.why ?? `kept channel counts in multiples of ${r.rounding.conv}`;
      Object.assign(maps, r.maps);
      const recon = new Set(r.reconstructed);
      for (const l of layers) {
        const dims = (view.constant(l.weight)!.dims ?? []).map(Number);
        const n0 = shapesBefore.get(l)!.reduce((a, b) => a * b, 1), n1 = dims.reduce((a, b) => a * b, 1);
        if (n1 === n0) continue;
        layerRows.push({ name: l.name, node: l.node.name ?? '', opType: l.opType, sparsity: 1 - n1 / n0, shapeBefore: shapesBefore.get(l)!, shapeAfter: dims, ...(recon.has(l.name) ? { reconstruction: paired ? 'least-squares refit of the kept inputs and bias to the float layer\'s output, fed by the pruned model (calibration data)' : 'least-squares refit of the kept inputs from calibration data' } : {}) });
      }
      // Every family kept for a reason (each listed with it): the model as it was, said in a warning too.
      if (!layerRows.length && r.groups.length && r.groups.every((g) => g.skipped)) warnings.push(`structured pruning removed nothing: each of the ${r.groups.length} channel famil${r.groups.length === 1 ? 'y' : 'ies'} is kept, for the reason listed (${r.groups[0].layers[0] ?? r.groups[0].tensors[0]}: ${r.groups[0].skipped}); --method magnitude or nm prunes the weights instead`);
      if (extra.masks) masksFile = writeMasks(extra.masks, { method: o.method, model: input, kept: r.kept, slices: r.slices, shifts: r.compensated });
    } else {
      const rows = (p: PrunedWeight) => {
        const viol = o.method === 'nm' ? nmViolations(p.layer, p.values, o.pattern.n, o.pattern.m) : undefined;
        layerRows.push({ name: p.layer.name, node: p.layer.node.name ?? '', opType: p.layer.opType, sparsity: p.removed / p.values.length, shapeBefore: p.layer.dims, shapeAfter: p.layer.dims, ...(p.reconstruction ? { reconstruction: p.reconstruction } : {}), ...(viol !== undefined ? { nmViolations: viol } : {}) });
        maps[p.layer.name] = sparsityMap(p.layer, p.values, o.tile);
      };
      // A layer at a time; with external data each layer goes straight to the output's data file (the
      // weights were read into reused memory, which the next read overwrites).
      const pruned: Array<Pick<PrunedWeight, 'layer' | 'mask'>> = [];
      const read = (l: PrunableLayer) => floatWeight(view, l.weight, loaded.loc, true, weightScratch)!.data;
      try {
        skipped.push(...pruneUnstructured(read, layers, o, stats, (p) => {
          const t = view.constant(p.layer.weight)!;
          writeFloatTensor(t, p.values, undefined, !stage.spill);
          stage.spill?.take(t);
          rows(p);
          if (extra.masks) pruned.push({ layer: p.layer, mask: p.mask });
        }));
      } finally {
        weightScratch.release();
      }
      if (extra.masks) masksFile = writeMasks(extra.masks, { method: o.method, model: input, masks: pruned });
    }
    editor.dropUnusedConstants();
    // Weights the export stored float16 (widened by a Cast, folded above): float16 again where exact.
    if (!stage.spill) restoreHalfStorage(editor, halfOrigin);
    editor.syncInitializerInputs();
    timings.prune = (performance.now() - tp) / 1000;
    if (o.reconstruct && !layerRows.some((l) => l.reconstruction && !l.reconstruction.startsWith('not '))) warnings.push('--reconstruct changed nothing: it updates MatMul and Gemm layers that were pruned (or lost inputs)');
  } catch (e) {
    stage.close();
    throw e;
  }

  const v = await saveVerified(loaded.model, loaded, extra.reference ?? input, output, { data: o.calibration ?? 'random:4', samples: Math.min(8, o.maxSamples), device: o.device, what: 'pruned', latencyRuns: extra.latencyRuns, inputShapes: o.inputShapes }, ctx, input, stage);
  timings.save = v.saveSeconds;
  timings.verify = v.verifySeconds;
  const randomWarning = randomDataWarning(o.calibration);
  if (randomWarning) warnings.push(randomWarning);
  const empty = emptyOutputsWarning(v.check.outputs, o.calibration ?? 'random:4');
  if (empty) warnings.push(empty);
  const unmoved = unmovedOutputsWarning(v.check.outputs, o.calibration ?? 'random:4');
  if (unmoved) warnings.push(unmoved);
  if (misaligned) {
    const { reference, candidate } = v.check.latencyMs;
    // (Said as measured: a pruned model already much faster is not told the padding cost it its gain.)
    const head = `${misaligned.layers} convolutions now keep channel counts that onnxruntime pads to multiples of ${misaligned.block} (${misaligned.why})`;
    const ms = `${reference.toFixed(2)} ms -> ${candidate.toFixed(2)} ms here`;
    warnings.push(candidate < 0.9 * reference ? `${head}: the pruned model runs faster (${ms}), and --round-to auto, which keeps them aligned, may run faster still` : `${head}, which can cost what pruning saves (${ms}); --round-to auto keeps them aligned`);
  }
  // The edited model in memory is what was written: count its parameters there, not by reading it back.
  const after = summarizeModel(loaded);
  const prunableBefore = layers.reduce((a, l) => a + shapesBefore.get(l)!.reduce((x, y) => x * y, 1), 0);
  const gone = layerRows.reduce((a, l) => a + l.sparsity * l.shapeBefore.reduce((x, y) => x * y, 1), 0);
  // A channel share is not a weight share: a channel takes its row in the layer that writes it and its
  // column in every layer that reads it, so structured shares remove more weights than they name.
  if (o.method !== 'nm' && partial.sparsity === undefined) notes.push(`no --sparsity given: ${o.sparsity} was used`);
  if (o.method === 'structured' && prunableBefore) notes.push(`--sparsity ${o.sparsity} is the share of channels taken from each family; it removed ${((gone / prunableBefore) * 100).toFixed(1)}% of the prunable layers' weights (a channel takes its row in the layer that writes it and its column in each layer that reads it)`);
  const result: PruneResult = {
    output,
    sizeBefore: loaded.fileBytes + loaded.externalBytes,
    sizeAfter: v.sizeAfter,
    parametersBefore: before.parameters,
    parametersAfter: after.parameters,
    sparsity: prunableBefore ? gone / prunableBefore : 0,
    layers: layerRows,
    method: o.method,
    skipped,
    ...(groups ? { groups } : {}),
    ...(rounding ? { rounding } : {}),
    ...(compensation ? { compensation } : {}),
    fidelity: v.check.outputs,
    fidelityData: o.calibration ?? 'random:4',
    latencyMs: v.check.latencyMs,
    ...(v.check.latencyStats ? { latencyStats: v.check.latencyStats } : {}),
    device: provider ?? v.check.device,
    ...((fallbackReason ?? v.check.fallbackReason) ? { fallbackReason: fallbackReason ?? v.check.fallbackReason } : {}),
    seconds: (performance.now() - t0) / 1000,
    report: `${output}.report.json`,
    ...(masksFile ? { masks: masksFile } : {}),
    warnings,
    notes,
  };
  const report: PruneReport = {
    ...result, input, options: o, maps, timings,
    ...(stage.spill?.count ? { streamed: { tensors: stage.spill.count, bytes: stage.spill.bytes } } : {}),
    ...(v.check.segments ? { verifiedInSegments: v.check.segments } : {}),
  };
  writeJsonAtomic(result.report, report);
  return result;
}
