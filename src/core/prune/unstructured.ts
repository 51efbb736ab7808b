import type { ModelLocation } from '../onnx/external-data';
import type { GraphView } from '../onnx/graph';
import { readLayerWeight, readsRowsLayout, type PrunableLayer } from './layers';
import type { LayerInputStats } from './layer-inputs';
import { refittable } from './layer-inputs';
import { maskByCount, nmMask, pruneCounts, weightScores } from './magnitude';
import type { PruneOptions } from './options';
import { reconstructPruned } from './reconstruct';
import { streamedPruneCounts } from './streamed-counts';

export interface PrunedWeight {
  layer: PrunableLayer;
  /** The new values (zeros where pruned) and the mask (1 = kept). */
  values: Float32Array;
  mask: Uint8Array;
  removed: number;
  /** How the survivors were updated, or why not. */
  reconstruction?: string;
}

/**
 * Magnitude (global or per layer) and N:M pruning: choose the mask from the weights' importance, zero
 * the rest, and with calibration statistics apply the OBS update to the survivors.
 */
export function pruneUnstructured(view: GraphView, loc: ModelLocation, layers: PrunableLayer[], o: PruneOptions, stats?: Map<PrunableLayer, LayerInputStats>): { pruned: PrunedWeight[]; skipped: Array<{ node: string; reason: string }> } {
  const skipped: Array<{ node: string; reason: string }> = [];
  const weights = layers.map((l) => readLayerWeight(view, l, loc));
  const scores = layers.map((l, i) => weightScores(l, weights[i], o.importance === 'activation' ? stats?.get(l)?.norms : undefined));
  const masks: Array<Uint8Array | undefined> = [];
  if (o.method === 'nm') {
    layers.forEach((l, i) => {
      const m = nmMask(l, scores[i], o.pattern.n, o.pattern.m);
      if (!m) skipped.push({ node: l.node.name || l.name, reason: `its input size ${l.dims[l.inAxis]} is not a multiple of ${o.pattern.m} (N:M groups run along the input)` });
      masks.push(m);
    });
  } else {
    const counts = pruneCounts(scores, o.sparsity, o.scope, o.minDensity);
    layers.forEach((l, i) => masks.push(maskByCount(scores[i], counts[i])));
  }
  const pruned: PrunedWeight[] = [];
  layers.forEach((l, i) => {
    const p = finishLayer(l, weights[i], masks[i], o, stats);
    if (p) pruned.push(p);
  });
  return { pruned, skipped };
}

/** Zeroes what the mask drops and, with calibration statistics, updates the survivors (OBS / least squares). */
function finishLayer(l: PrunableLayer, weights: Float32Array, mask: Uint8Array | undefined, o: PruneOptions, stats?: Map<PrunableLayer, LayerInputStats>, inPlace = false): PrunedWeight | undefined {
  if (!mask) return undefined;
  // inPlace: `weights` is scratch the caller is done with (reconstruction still needs the originals).
  let values: Float32Array = inPlace && !o.reconstruct ? weights : weights.slice();
  let removed = 0;
  for (let k = 0; k < mask.length; k++) if (!mask[k]) { values[k] = 0; removed++; }
  let reconstruction: string | undefined;
  if (o.reconstruct && removed > 0) {
    const h = stats?.get(l)?.hessian;
    if (!h || !refittable(l)) reconstruction = 'not reconstructed: reconstruction covers MatMul, Gemm and 1×1 Conv layers';
    else {
      const { K, N, toKN, fromKN } = readsRowsLayout(l);
      const r = reconstructPruned(toKN(weights), toKN(mask), K, N, h, o.damp);
      values = fromKN(r.values);
      reconstruction = r.how;
    }
  }
  return { layer: l, values, mask, removed, ...(reconstruction ? { reconstruction } : {}) };
}

/**
 * The same pruning for a model too large to hold: weights are read a layer at a time (twice more for a
 * global threshold, see streamedPruneCounts) and each pruned layer goes to `emit` before the next is read.
 */
export function pruneUnstructuredStreamed(read: (l: PrunableLayer) => Float32Array, layers: PrunableLayer[], o: PruneOptions, stats: Map<PrunableLayer, LayerInputStats> | undefined, emit: (p: PrunedWeight) => void): Array<{ node: string; reason: string }> {
  const skipped: Array<{ node: string; reason: string }> = [];
  const norms = (l: PrunableLayer) => (o.importance === 'activation' ? stats?.get(l)?.norms : undefined);
  // One scores buffer for every pass (fresh pages cost as much as the work on them).
  const scratch = new Float32Array(Math.max(0, ...layers.map((l) => l.dims.reduce((a, b) => a * b, 1))));
  const counts = o.method === 'nm' ? undefined
    : streamedPruneCounts(layers.map((l) => l.dims.reduce((a, b) => a * b, 1)), (i) => weightScores(layers[i], read(layers[i]), norms(layers[i]), scratch), o.sparsity, o.scope, o.minDensity);
  layers.forEach((l, i) => {
    const w = read(l);
    const scores = weightScores(l, w, norms(l), scratch);
    const mask = counts ? maskByCount(scores, counts[i]) : nmMask(l, scores, o.pattern.n, o.pattern.m);
    if (!mask) skipped.push({ node: l.node.name || l.name, reason: `its input size ${l.dims[l.inAxis]} is not a multiple of ${o.pattern.m} (N:M groups run along the input)` });
    const p = finishLayer(l, w, mask, o, stats, true);
    if (p) emit(p);
  });
  return skipped;
}
