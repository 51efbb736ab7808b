import type { CalibrationData } from '../../calib/data';
import type { JobContext } from '../../base/jobs';
import type { ModelEditor } from '../../onnx/editor';
import type { LoadedModel } from '../../onnx/model-io';
import { ScratchBuffer } from '../../onnx/external-data';
import { modulePathOf } from '../../onnx/module-path';
import { cpuChannelBlock } from '../../runtime/cpu-block';
import type { TensorProto } from '../../onnx/proto';
import { captureTensors } from '../../runtime/capture';
import type { DevicePreference } from '../../runtime/session';
import { isConvLike, kernelSize, matrixIndex, readLayerWeight, readsRowsLayout, writeFloatTensor, type PrunableLayer } from '../layers';
import { sparsityMap, type SparsityMap } from '../maps';
import { refittable, type LayerInputStats } from '../layer-inputs';
import type { PruneOptions } from '../options';
import { refitKeptInputs } from '../reconstruct';
import { applyRemovals } from './apply';
import { applyShift, biasShift } from './compensate';
import { freezeShapeEntries } from './shape-deps';
import { ChannelGraph } from './channel-graph';
import type { ChannelSet } from './relations';
import type { RefitTarget } from './refit-paired';

/** One family of coupled channel sets (e.g. the hidden units of one MLP, the heads of one attention). */
export interface ChannelGroup {
  /** The layers whose weights the family's sets slice, by module path. */
  layers: string[];
  /** The tensors its sets span (abbreviated in reports). */
  tensors: string[];
  /** Sets before and removed: channels, or heads (a set then spans several channels of a layer). */
  sets: number;
  removed: number;
  /** Channels of each set in the first source layer (1 for plain channels, the head size for heads). */
  width: number;
  /** The multiple the kept count was rounded to (--round-to), when it was. */
  roundedTo?: number;
  skipped?: string;
}

/**
 * --allocation global: as many weights go as uniform shares would remove (`cost`: the weights each set
 * takes with it), but from the least important sets anywhere, importance being relative to the mean of
 * its own family (layers differ in scale; Torch-Pruning's global pruning normalises the same way). Every
 * family keeps at least one set.
 */
function allocateGlobally(families: Map<string, ChannelSet[]>, importance: Map<number, number>, cost: Map<number, number>, sparsity: number): Map<string, number> {
  const scored: Array<{ key: string; score: number; cost: number }> = [];
  let budget = 0;
  for (const [key, fam] of families) {
    if (fam.length < 2 || fam.some((s) => s.pinned)) continue;
    const mean = fam.reduce((a, s) => a + (importance.get(s.id) ?? 0), 0) / fam.length;
    const each = fam.reduce((a, s) => a + (cost.get(s.id) ?? 0), 0) / fam.length;
    budget += Math.min(fam.length - 1, Math.floor(fam.length * sparsity + 1e-9)) * each;
    for (const s of fam) scored.push({ key, score: mean > 0 ? (importance.get(s.id) ?? 0) / mean : 0, cost: cost.get(s.id) ?? 0 });
  }
  scored.sort((a, b) => a.score - b.score);
  const take = new Map<string, number>();
  for (const s of scored) {
    if (budget <= 0) break;
    const n = take.get(s.key) ?? 0;
    if (n >= families.get(s.key)!.length - 1) continue;
    take.set(s.key, n + 1);
    budget -= s.cost;
  }
  return take;
}

/** What --round-to means here: a multiple for convolution channels and one for the rest, and why. */
export interface Rounding { conv: number; other: number; why?: string }

export function resolveRounding(roundTo: number | 'auto'): Rounding {
  if (roundTo !== 'auto') return { conv: roundTo, other: roundTo };
  const { block, why } = cpuChannelBlock();
  return { conv: block, other: 1, why: `convolution channels kept in multiples of ${block}: ${why}` };
}

/** Shapes of every value, from one real run of the model (onnxruntime's own shape logic, dynamic dims included). */
export async function probeShapes(loaded: LoadedModel, data: CalibrationData, device: DevicePreference, ctx: JobContext): Promise<Map<string, number[]>> {
  const names = [...new Set((loaded.model.graph!.node ?? []).flatMap((n) => n.output ?? []).filter(Boolean))];
  const shapes = new Map<string, number[]>();
  const one: CalibrationData = { ...data, count: 1, samples: function* () { for (const s of data.samples()) { yield s; return; } } };
  // One sample: every value of it can be held, so a large external-data model runs a segment at a time.
  await captureTensors(loaded, names, one, device, (values, _i, feeds) => {
    for (const [k, v] of Object.entries({ ...feeds, ...values })) shapes.set(k, v.dims.map(Number));
  }, ctx, loaded.model, { holdAll: true });
  return shapes;
}

/** ‖slice‖ of a weight along `axis` for each index: L1, or L2. */
function sliceNorms(w: Float32Array, dims: number[], axis: number, l2: boolean): Float64Array {
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const size = dims[axis];
  const out = new Float64Array(size);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < size; c++) {
      const base = (o * size + c) * inner;
      let s = 0;
      for (let r = 0; r < inner; r++) { const v = w[base + r]; s += l2 ? v * v : Math.abs(v); }
      out[c] += s;
    }
  }
  return l2 ? out.map(Math.sqrt) : out;
}

export interface StructuredResult {
  groups: ChannelGroup[];
  /** Per layer that lost slices: its original weight with the removed rows/columns zeroed, as tile maps. */
  maps: Record<string, SparsityMap>;
  /** Kept output / input channel indices per layer (module path), for the fine-tuning handoff. */
  kept: Map<PrunableLayer, { outputs?: number[]; inputs?: number[] }>;
  /** Everything else that lost channels, as the graph named it before slicing (the handoff maps it too). */
  slices: StructuredSlices;
  rounding: Rounding;
  /** Exact shares left this many convolutions with channel counts onnxruntime pads to `block` here. */
  misaligned?: { layers: number; block: number; why: string };
  reconstructed: string[];
  /** Layers whose bias took the removed inputs' mean contribution (bias compensation), with that shift per original output. */
  compensated: Map<PrunableLayer, Float64Array>;
  /** `paired`: the layers that lost inputs and are left for refitPaired (no compensation applied to them). */
  refitTargets: RefitTarget[];
}

export interface StructuredSlices {
  /** Per-channel stored values (biases, norm scales, embedding tables), by the value name their reader read. */
  params: Array<{ name: string; dims: number[]; axis: number; kept: number[] }>;
  /** Normalisations whose statistics now run over the kept channels; `axis` counts from the end (-1 = last). */
  norms: Array<{ node: string; module: string; axis: number; kept: number[] }>;
  /** Model inputs read through a Gather of their kept channels. */
  inputs: Array<{ name: string; axis: number; kept: number[] }>;
}

/**
 * Structured pruning: analyse channel coupling, rank each family's sets by importance, remove the lowest
 * `sparsity` share of each (at least one set stays), optionally refit the layers that lost inputs, then
 * slice every weight, parameter and shape that the removed sets touch.
 */
export function pruneStructured(editor: ModelEditor, loaded: LoadedModel, layers: PrunableLayer[], shapes: Map<string, number[]>, o: PruneOptions, stats?: Map<PrunableLayer, LayerInputStats>, emit?: (weight: TensorProto) => void, paired = false): StructuredResult {
  const view = editor.view();
  const graph = new ChannelGraph(view, shapes, layers, o.pruneNormalized);
  graph.analyze();
  const sets = graph.sets();
  // Weights are read when needed, one at a time into reused memory, and never all held (large models):
  // each use below is done with its copy before the next read.
  const scratch = new ScratchBuffer();
  const weightOf = (l: PrunableLayer) => readLayerWeight(view, l, loaded.loc, scratch);
  const l2 = o.importance === 'l2';
  const outNorms = new Map<PrunableLayer, Float64Array>();
  const inNorms = new Map<PrunableLayer, Float64Array>();
  const norm = (m: Map<PrunableLayer, Float64Array>, l: PrunableLayer, axis: number) => m.get(l) ?? m.set(l, sliceNorms(weightOf(l), l.dims, axis, l2 || o.importance === 'activation')).get(l)!;
  // Per set: what its removal costs (sum over the weight slices it takes), seen from each relation.
  const importance = new Map<number, number>();
  const cost = new Map<number, number>();
  const add = (root: number, v: number) => importance.set(root, (importance.get(root) ?? 0) + v);
  const layerNames = new Map<number, Set<string>>();
  const convRoots = new Set<number>();
  const touch = (root: number, l: PrunableLayer) => {
    (layerNames.get(root) ?? layerNames.set(root, new Set()).get(root)!).add(l.name);
    if (isConvLike(l)) convRoots.add(root);
  };
  const rounding = resolveRounding(o.roundTo);
  for (const r of graph.relations) {
    if (r.kind !== 'source' && r.kind !== 'absorb' && r.kind !== 'depthwise') continue;
    const size = graph.trackOf(r.tensor)!.size;
    const absorb = r.kind === 'absorb';
    const n = norm(absorb ? inNorms : outNorms, r.layer, absorb ? r.layer.inAxis : r.layer.outAxis);
    const acts = absorb && o.importance === 'activation' ? stats?.get(r.layer)?.norms : undefined;
    // Weights one element takes with it: a row of the writer, a column (times the kernel) of the reader.
    const weights = absorb ? r.layer.outputs * kernelSize(r.layer) : r.layer.fanIn;
    for (let i = 0; i < size; i++) {
      const root = graph.elementRoot(r.tensor, i);
      touch(root, r.layer);
      cost.set(root, (cost.get(root) ?? 0) + weights);
      // Activation importance: how loud the channel is where the next layer reads it, times that layer's weights.
      if (o.importance === 'activation') { if (acts) add(root, acts[i] * n[i]); }
      else add(root, n[i]);
    }
  }
  // Families: sets over the same tensors are ranked against each other.
  const families = new Map<string, ChannelSet[]>();
  for (const s of sets) (families.get(s.family) ?? families.set(s.family, []).get(s.family)!).push(s);
  const groups: ChannelGroup[] = [];
  const removed = new Map<string, Set<number>>();
  const globalShare = o.allocation === 'global' ? allocateGlobally(families, importance, cost, o.sparsity) : undefined;
  for (const [key, fam] of families) {
    const tensors = [...new Set(fam[0].members.map(([t]) => t))];
    const names = [...(layerNames.get(fam[0].id) ?? [])];
    const perTensor = new Map<string, number>();
    for (const [t] of fam[0].members) perTensor.set(t, (perTensor.get(t) ?? 0) + 1);
    const width = Math.max(...perTensor.values());
    const g: ChannelGroup = { layers: names, tensors, sets: fam.length, removed: 0, width };
    groups.push(g);
    const pinned = fam.find((s) => s.pinned);
    if (pinned) { g.skipped = pinned.pinned; continue; }
    if (fam.length < 2) { g.skipped = 'a single channel: too small to prune'; continue; }
    let k = globalShare ? globalShare.get(key) ?? 0 : Math.min(fam.length - 1, Math.floor(fam.length * o.sparsity + 1e-9));
    // --round-to: keep a multiple of N channels (vector widths, NCHWc blocks), never fewer than N.
    const roundTo = convRoots.has(fam[0].id) ? rounding.conv : rounding.other;
    if (roundTo > 1 && width === 1 && k > 0) {
      const keep = Math.max(roundTo, Math.round((fam.length - k) / roundTo) * roundTo);
      k = Math.max(0, fam.length - Math.min(fam.length, keep));
      g.roundedTo = roundTo;
    }
    if (k === 0) continue;
    const ranked = [...fam].sort((a, b) => (importance.get(a.id) ?? 0) - (importance.get(b.id) ?? 0));
    for (const s of ranked.slice(0, k)) for (const [t, i] of s.members) (removed.get(t) ?? removed.set(t, new Set()).get(t)!).add(i);
    g.removed = k;
  }
  const kept = new Map<PrunableLayer, { outputs?: number[]; inputs?: number[] }>();
  const keptOf = (t: string) => Array.from({ length: graph.trackOf(t)!.size }, (_, i) => i).filter((i) => !removed.get(t)?.has(i));
  for (const r of graph.relations) {
    if (!removed.get(r.tensor)?.size) continue;
    if (r.kind === 'source' || r.kind === 'depthwise') (kept.get(r.layer) ?? kept.set(r.layer, {}).get(r.layer)!).outputs = keptOf(r.tensor);
    if (r.kind === 'absorb') (kept.get(r.layer) ?? kept.set(r.layer, {}).get(r.layer)!).inputs = keptOf(r.tensor);
  }
  const slices: StructuredSlices = { params: [], norms: [], inputs: [] };
  const seenNorms = new Set<string>();
  for (const r of graph.relations) {
    if (!removed.get(r.tensor)?.size) continue;
    if (r.kind === 'param') {
      const name = r.node.input![r.input];
      if (!slices.params.some((p) => p.name === name)) slices.params.push({ name, dims: (view.stored(name)!.dims ?? []).map(Number), axis: r.axis, kept: keptOf(r.tensor) });
    } else if (r.kind === 'norm') {
      // A decomposed norm reduces twice (mean, then variance): one entry per module.
      const module = modulePathOf(r.node);
      if (seenNorms.has(module)) continue;
      seenNorms.add(module);
      slices.norms.push({ node: r.node.name || r.node.output![0], module, axis: graph.trackOf(r.tensor)!.axis - shapes.get(r.tensor)!.length, kept: keptOf(r.tensor) });
    } else if (r.kind === 'input') slices.inputs.push({ name: r.tensor, axis: r.axis, kept: keptOf(r.tensor) });
  }
  // Exact shares: convolutions whose kept channels onnxruntime will pad to its block (they were aligned).
  let misaligned: StructuredResult['misaligned'];
  if (rounding.conv === 1) {
    const { block, why } = cpuChannelBlock();
    const n = [...kept].filter(([l, k]) => isConvLike(l) && k.outputs && l.outputs % block === 0 && k.outputs.length % block !== 0).length;
    if (n && block > 1) misaligned = { layers: n, block, why };
  }
  // Heatmaps show where the removed rows and columns were, on the weights as they were (before any refit).
  // Bias compensation reads the same weights: the removed inputs' mean contribution moves into the bias
  // of each layer that lost inputs (a refit below replaces it with what the refit leaves of the mean).
  const maps: Record<string, SparsityMap> = {};
  const shifts = new Map<PrunableLayer, Float64Array>();
  for (const [l, k] of kept) {
    const original = weightOf(l);
    const keepOut = k.outputs ? new Set(k.outputs) : undefined, keepIn = k.inputs ? new Set(k.inputs) : undefined;
    const means = o.compensate ? stats?.get(l)?.means : undefined;
    if (keepIn && means) shifts.set(l, biasShift(l, original, new Set(Array.from({ length: l.dims[l.inAxis] }, (_, i) => i).filter((i) => !keepIn.has(i))), means));
    const w = original.slice();
    const at = matrixIndex(l);
    // Fan-in index f covers input channel ⌊f / kernel⌋ (Conv) or f itself (MatMul/Gemm).
    const kernel = kernelSize(l);
    for (let o = 0; o < l.outputs; o++) {
      for (let f = 0; f < l.fanIn; f++) {
        const c = Math.floor(f / kernel);
        if ((keepOut && !keepOut.has(o)) || (keepIn && !keepIn.has(c))) w[at(o, f)] = 0;
      }
    }
    maps[l.name] = sparsityMap(l, w, o.tile);
  }
  // Reconstruction: layers that lost inputs refit their kept rows to the float output (least squares):
  // here from float inputs alone, or (paired) afterwards against the pruned model's own inputs, when
  // compensation is left to that fit's intercept.
  const reconstructed: string[] = [];
  const refitTargets: RefitTarget[] = [];
  if (o.reconstruct && paired) {
    for (const r of graph.relations) {
      if (r.kind !== 'absorb' || !removed.get(r.tensor)?.size || !refittable(r.layer) || refitTargets.some((t) => t.layer === r.layer)) continue;
      refitTargets.push({ layer: r.layer, ...(kept.get(r.layer)?.outputs ? { keptOutputs: kept.get(r.layer)!.outputs } : {}) });
      shifts.delete(r.layer);
    }
  } else if (o.reconstruct) {
    for (const r of graph.relations) {
      if (r.kind !== 'absorb') continue;
      const drop = removed.get(r.tensor);
      const h = stats?.get(r.layer)?.hessian;
      if (!drop?.size || !h || !refittable(r.layer)) continue;
      const { K, N, toKN, fromKN } = readsRowsLayout(r.layer);
      const w = toKN(weightOf(r.layer));
      const kept = Array.from({ length: K }, (_, i) => i).filter((i) => !drop.has(i));
      const fit = refitKeptInputs(w, K, N, h, kept, o.damp);
      const full = new Float32Array(K * N);
      kept.forEach((k, a) => full.set(fit.subarray(a * N, (a + 1) * N), k * N));
      // The refit has no intercept: what it leaves of the mean output goes into the bias.
      const means = o.compensate ? stats?.get(r.layer)?.means : undefined;
      if (means) {
        const shift = new Float64Array(N);
        for (let c = 0; c < K; c++) for (let n = 0; n < N; n++) shift[n] += means[c] * (w[c * N + n] - full[c * N + n]);
        shifts.set(r.layer, shift);
      }
      writeFloatTensor(view.constant(r.layer.weight)!, fromKN(full), r.layer.dims);
      reconstructed.push(r.layer.name);
    }
  }
  const sizes = new Map([...removed.keys()].map((t) => [t, graph.trackOf(t)!.size]));
  freezeShapeEntries(editor, view, shapes, graph.relations, (t) => (removed.get(t)?.size ? graph.trackOf(t)?.axis : undefined));
  applyRemovals(editor, view, loaded.loc, graph.relations, removed, sizes, emit);
  scratch.release();
  const compensated = new Map<PrunableLayer, Float64Array>();
  if (shifts.size) {
    const after = editor.view();
    for (const [l, shift] of shifts) if (applyShift(editor, after, loaded.loc, l, shift, kept.get(l)?.outputs)) compensated.set(l, shift);
  }
  // Shapes recorded for changed values are stale now: onnxruntime infers them again.
  const changed = new Set(removed.keys());
  const gr = loaded.model.graph!;
  gr.value_info = (gr.value_info ?? []).filter((v) => !changed.has(v.name ?? ''));
  return { groups, kept, slices, rounding, ...(misaligned ? { misaligned } : {}), reconstructed, compensated, maps, refitTargets };
}
