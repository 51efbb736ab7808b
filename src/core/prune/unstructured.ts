import { readsRowsLayout, type PrunableLayer } from './layers';
import type { LayerInputStats } from './layer-inputs';
import { refittable } from './layer-inputs';
import { lampScores, maskByCount, nmMask, weightScores } from './magnitude';
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

/** Zeroes what the mask drops and, with calibration statistics, updates the survivors (OBS / least squares). */
function finishLayer(l: PrunableLayer, weights: Float32Array, mask: Uint8Array | undefined, o: PruneOptions, stats?: Map<PrunableLayer, LayerInputStats>): PrunedWeight | undefined {
  if (!mask) return undefined;
  // Zeroed where `weights` are (the caller is done with them); reconstruction still needs the originals.
  let values: Float32Array = o.reconstruct ? weights.slice() : weights;
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
 * Magnitude (global or per layer) and N:M pruning: choose the mask from the weights' importance, zero the
 * rest, and with calibration statistics update the survivors (OBS / least squares). Weights are read a
 * layer at a time (twice more for a global threshold, see streamedPruneCounts), and each pruned layer goes
 * to `emit` before the next is read, so a model too large to hold prunes in bounded memory. `read` may
 * return memory the next read reuses, and the pruned values may be that memory: `emit` uses them at once.
 */
export function pruneUnstructured(read: (l: PrunableLayer) => Float32Array, layers: PrunableLayer[], o: PruneOptions, stats: Map<PrunableLayer, LayerInputStats> | undefined, emit: (p: PrunedWeight) => void): Array<{ node: string; reason: string }> {
  const skipped: Array<{ node: string; reason: string }> = [];
  const norms = (l: PrunableLayer) => (o.importance === 'activation' ? stats?.get(l)?.norms : undefined);
  const sizes = layers.map((l) => l.dims.reduce((a, b) => a * b, 1));
  // One scores buffer for every pass (fresh pages cost as much as the work on them).
  const scratch = new Float32Array(sizes.reduce((a, b) => Math.max(a, b), 0));
  const counts = o.method === 'nm' ? undefined
    : streamedPruneCounts(sizes, (i) => {
      const s = weightScores(layers[i], read(layers[i]), norms(layers[i]), scratch);
      return o.scope === 'lamp' ? lampScores(s) : s;
    }, o.sparsity, o.scope === 'layer' ? 'layer' : 'global', o.minDensity);
  layers.forEach((l, i) => {
    const w = read(l);
    const scores = weightScores(l, w, norms(l), scratch);
    const mask = counts ? maskByCount(scores, counts[i]) : nmMask(l, scores, o.pattern.n, o.pattern.m);
    if (!mask) skipped.push({ node: l.node.name || l.name, reason: `its input size ${l.dims[l.inAxis]} is not a multiple of ${o.pattern.m} (N:M groups run along the input)` });
    const p = finishLayer(l, w, mask, o, stats);
    if (p) emit(p);
  });
  return skipped;
}
