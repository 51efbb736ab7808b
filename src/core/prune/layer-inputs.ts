import type { CalibrationData } from '../calib/data';
import type { JobContext } from '../base/jobs';
import { tensorValues } from '../eval/metrics';
import type { LoadedModel } from '../onnx/model-io';
import { HessianAccumulator } from '../quant/hessian';
import { captureChannelMeans, captureTensors } from '../runtime/capture';
import type { DevicePreference, Provider } from '../runtime/session';
import { isConvLike, type PrunableLayer } from './layers';
import { attrInt } from '../onnx/attributes';

/** What one streamed calibration pass learns about each layer's input. */
export interface LayerInputStats {
  /** ‖x_c‖₂ per input channel / feature (not gathered by layerInputMeans). */
  norms?: Float64Array;
  /** Mean of x_c per input channel / feature (bias compensation when channels go). */
  means: Float64Array;
  /** H = 2/n Σ xxᵀ over input rows, for MatMul/Gemm layers when asked. */
  hessian?: Float64Array;
}

/** Whether the layer reads its input as rows of K features (MatMul, Gemm without transA). */
export const readsRows = (l: PrunableLayer) => l.opType === 'MatMul' || (l.opType === 'Gemm' && !attrInt(l.node, 'transA', 0));

/** A 1×1 convolution without groups: a matrix product over channels at every position. */
export const isPointwise = (l: PrunableLayer) => l.opType === 'Conv' && l.dims.slice(2).every((d) => d === 1) && attrInt(l.node, 'group', 1) === 1;

/** Layers whose input Hessian over input features is collected, so reconstruction can refit them. */
export const refittable = (l: PrunableLayer) => readsRows(l) || isPointwise(l);

/** Channel vectors of an NCHW activation as rows [N·H·W, C], for a pointwise conv's Hessian. */
export function channelRows(x: ArrayLike<number>, dims: number[]): Float32Array {
  const [n, c] = dims;
  const hw = dims.slice(2).reduce((a, b) => a * b, 1);
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let p = 0; p < hw; p++) out[(b * hw + p) * c + ch] = x[(b * c + ch) * hw + p];
  return out;
}

/**
 * Runs the model once over the calibration samples with every layer's input exposed and folds each
 * sample into per-channel norms (and Hessians) before the next, so nothing accumulates but the statistics.
 */
export async function layerInputStats(loaded: LoadedModel, layers: PrunableLayer[], data: CalibrationData, device: DevicePreference, hessians: boolean, ctx: JobContext = {}): Promise<{ stats: Map<PrunableLayer, LayerInputStats>; provider: Provider; fallbackReason?: string }> {
  const sq = new Map<PrunableLayer, Float64Array>(layers.map((l) => [l, new Float64Array(l.dims[l.inAxis])]));
  const sums = new Map<PrunableLayer, Float64Array>(layers.map((l) => [l, new Float64Array(l.dims[l.inAxis])]));
  const counts = new Map<PrunableLayer, number>();
  const hs = new Map<PrunableLayer, HessianAccumulator>();
  if (hessians) for (const l of layers) if (refittable(l)) hs.set(l, new HessianAccumulator(l.dims[l.inAxis]));
  const names = [...new Set(layers.map((l) => l.node.input![0]))];
  const run = await captureTensors(loaded, names, data, device, (values, _i, feeds) => {
    for (const l of layers) {
      const t = values[l.node.input![0]] ?? feeds[l.node.input![0]];
      if (!t) continue;
      const x = tensorValues(t);
      const acc = sq.get(l)!, sum = sums.get(l)!;
      const C = acc.length;
      counts.set(l, (counts.get(l) ?? 0) + x.length / C);
      if (readsRows(l)) {
        for (let i = 0; i < x.length; i++) { const v = x[i]; acc[i % C] += v * v; sum[i % C] += v; }
      } else {
        // Conv: [N, C, spatial...]; Gemm with transA: [K, M].
        const dims = t.dims.map(Number);
        const axis = isConvLike(l) ? 1 : 0;
        const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
        for (let i = 0; i < x.length; i++) { const v = x[i], c = Math.floor(i / inner) % C; acc[c] += v * v; sum[c] += v; }
      }
      const h = hs.get(l);
      if (h) h.addRows(isPointwise(l) ? channelRows(x, t.dims.map(Number)) : x);
    }
  }, ctx);
  const stats = new Map<PrunableLayer, LayerInputStats>();
  for (const l of layers) {
    const n = Math.max(1, counts.get(l) ?? 0);
    stats.set(l, { norms: sq.get(l)!.map(Math.sqrt), means: sums.get(l)!.map((v) => v / n), ...(hs.has(l) ? { hessian: hs.get(l)!.result() } : {}) });
  }
  return { stats, provider: run.provider, ...(run.fallbackReason ? { fallbackReason: run.fallbackReason } : {}) };
}

/**
 * Only the mean of each layer's input per channel (bias compensation), reduced inside onnxruntime: large
 * external-data models run a segment at a time. Falls back to the full pass when the variant is refused.
 */
export async function layerInputMeans(loaded: LoadedModel, layers: PrunableLayer[], data: CalibrationData, device: DevicePreference, ctx: JobContext = {}): Promise<{ stats: Map<PrunableLayer, LayerInputStats>; provider: Provider; fallbackReason?: string }> {
  const axisOf = (l: PrunableLayer): 0 | 1 | 'last' => (readsRows(l) ? 'last' : isConvLike(l) ? 1 : 0);
  // One reduction per input tensor and channel axis (q, k and v read the same one).
  const key = (l: PrunableLayer) => `${l.node.input![0]}|${axisOf(l)}`;
  const specs = new Map<string, { tensor: string; axis: 0 | 1 | 'last'; channels: number }>();
  for (const l of layers) specs.set(key(l), { tensor: l.node.input![0], axis: axisOf(l), channels: l.dims[l.inAxis] });
  const index = new Map([...specs.keys()].map((k, i) => [k, i]));
  const r = await captureChannelMeans(loaded, [...specs.values()], data, device, ctx);
  if (!r) return layerInputStats(loaded, layers, data, device, false, ctx);
  const stats = new Map<PrunableLayer, LayerInputStats>();
  for (const l of layers) {
    const means = r.values[index.get(key(l))!];
    if (means && means.length === l.dims[l.inAxis]) stats.set(l, { means });
  }
  return { stats, provider: r.provider, ...(r.fallbackReason ? { fallbackReason: r.fallbackReason } : {}) };
}
