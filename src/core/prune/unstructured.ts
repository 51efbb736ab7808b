import type { ModelLocation } from '../onnx/external-data';
import type { GraphView } from '../onnx/graph';
import { readLayerWeight, readsRowsLayout, type PrunableLayer } from './layers';
import type { LayerInputStats } from './layer-inputs';
import { refittable } from './layer-inputs';
import { maskByCount, nmMask, pruneCounts, weightScores } from './magnitude';
import type { PruneOptions } from './options';
import { reconstructPruned } from './reconstruct';

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
    const mask = masks[i];
    if (!mask) return;
    let values: Float32Array = weights[i].slice();
    let removed = 0;
    for (let k = 0; k < mask.length; k++) if (!mask[k]) { values[k] = 0; removed++; }
    let reconstruction: string | undefined;
    if (o.reconstruct && removed > 0) {
      const h = stats?.get(l)?.hessian;
      if (!h || !refittable(l)) reconstruction = 'not reconstructed: reconstruction covers MatMul, Gemm and 1×1 Conv layers';
      else {
        const { K, N, toKN, fromKN } = readsRowsLayout(l);
        const r = reconstructPruned(toKN(weights[i]), toKN(mask), K, N, h, o.damp);
        values = fromKN(r.values);
        reconstruction = r.how;
      }
    }
    pruned.push({ layer: l, values, mask, removed, ...(reconstruction ? { reconstruction } : {}) });
  });
  return { pruned, skipped };
}
