import { quantRange, QUANT_TYPES, type QuantType } from './qtypes';
import { computeQParams } from './qparams';

/** How values share a scale: one per tensor, one per slice along an axis, or one per block along an axis. */
export type Granularity =
  | { kind: 'tensor' }
  | { kind: 'channel'; axis: number }
  | { kind: 'block'; axis: number; blockSize: number };

export interface QuantizeOptions {
  qtype: QuantType;
  symmetric: boolean;
  granularity: Granularity;
  /** Clip range per group instead of the group's min/max (from a calibrator); same length as the groups. */
  ranges?: Array<{ min: number; max: number }>;
  /** Symmetric int8 only: 7-bit values (−64..63), onnxruntime's reduce_range for CPUs without VNNI. */
  reduceRange?: boolean;
  /** Symmetric only: the smallest scale each group may have (one value: every group), see biasScaleFloor. */
  minScales?: ArrayLike<number>;
}

/** A quantized tensor: one integer per element (not yet packed) and the scales/zero points per group. */
export interface QuantizedTensor {
  qtype: QuantType;
  dims: number[];
  values: Int8Array | Uint8Array;
  scales: Float32Array;
  zeroPoints: Int32Array;
  /** Shape of the scale tensor as DequantizeLinear expects it for this granularity. */
  scaleDims: number[];
  granularity: Granularity;
  /** SQNR of the dequantized values against the input, dB (measured while quantizing). */
  sqnr: number;
}

/** Maps each element index to its group (scale) index for the granularity, with the group count. */
export function groupLayout(dims: number[], g: Granularity): { groups: number; groupOf: (i: number) => number; scaleDims: number[] } {
  if (g.kind === 'tensor') return { groups: 1, groupOf: () => 0, scaleDims: [] };
  const rank = dims.length;
  const axis = g.axis < 0 ? g.axis + rank : g.axis;
  if (axis < 0 || axis >= rank) throw new Error(`axis ${g.axis} is out of range for shape [${dims}]`);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const along = dims[axis];
  if (g.kind === 'channel') return { groups: along, groupOf: (i) => Math.floor(i / inner) % along, scaleDims: [along] };
  // block: groups along `axis` every blockSize elements; the scale tensor has the shape of the input
  // with that axis divided (rounded up) by the block size, as DequantizeLinear's blocked mode expects.
  const nBlocks = Math.ceil(along / g.blockSize);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const scaleDims = dims.map((d, k) => (k === axis ? nBlocks : d));
  return {
    groups: outer * nBlocks * inner,
    groupOf: (i) => {
      const o = Math.floor(i / (along * inner));
      const a = Math.floor(i / inner) % along;
      const r = i % inner;
      return (o * nBlocks + Math.floor(a / g.blockSize)) * inner + r;
    },
    scaleDims,
  };
}

/** Calls fn(start, count, stride, group) for every run of elements sharing a scale, without a call per element. */
function forEachRun(dims: number[], g: Granularity, fn: (start: number, count: number, stride: number, group: number) => void): void {
  const n = dims.reduce((a, b) => a * b, 1);
  if (g.kind === 'tensor') return fn(0, n, 1, 0);
  const rank = dims.length;
  const axis = g.axis < 0 ? g.axis + rank : g.axis;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const along = dims[axis];
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  if (g.kind === 'channel') {
    for (let o = 0; o < outer; o++) for (let a = 0; a < along; a++) fn((o * along + a) * inner, inner, 1, a);
    return;
  }
  const nBlocks = Math.ceil(along / g.blockSize);
  // Blocks along the last axis are contiguous runs: one call per block (an embedding table's rows).
  if (inner === 1) {
    for (let o = 0; o < outer; o++) for (let b = 0; b < nBlocks; b++) fn(o * along + b * g.blockSize, Math.min(g.blockSize, along - b * g.blockSize), 1, o * nBlocks + b);
    return;
  }
  for (let o = 0; o < outer; o++) {
    for (let a = 0; a < along; a++) {
      const gb = (o * nBlocks + Math.floor(a / g.blockSize)) * inner;
      for (let r = 0; r < inner; r++) fn((o * along + a) * inner + r, 1, 1, gb + r);
    }
  }
}

const lastAxisChannels = (dims: number[], g: Granularity) => g.kind === 'channel' && (g.axis === dims.length - 1 || g.axis === -1) && dims.length > 1;

/** Quantizes float values: q = clamp(round_half_even(x / scale) + zero_point), in float32 like onnxruntime. */
export function quantizeTensor(data: Float32Array, dims: number[], opts: QuantizeOptions): QuantizedTensor {
  const { groups, scaleDims } = groupLayout(dims, opts.granularity);
  const reduced = !!opts.reduceRange && opts.qtype === 'int8' && opts.symmetric;
  const mins = new Float64Array(groups).fill(Infinity);
  const maxs = new Float64Array(groups).fill(-Infinity);
  if (opts.ranges) {
    if (opts.ranges.length !== groups) throw new Error(`expected ${groups} ranges, got ${opts.ranges.length}`);
    opts.ranges.forEach((r, k) => { mins[k] = r.min; maxs[k] = r.max; });
  } else if (lastAxisChannels(dims, opts.granularity)) {
    rowRanges(data, dims[dims.length - 1], mins, maxs);
  } else {
    forEachRun(dims, opts.granularity, (start, count, stride, k) => spanRange(data, start, count, stride, k, mins, maxs));
  }
  const scales = new Float32Array(groups);
  const zeroPoints = new Int32Array(groups);
  for (let k = 0; k < groups; k++) {
    const p = computeQParams(Number.isFinite(mins[k]) ? mins[k] : 0, Number.isFinite(maxs[k]) ? maxs[k] : 0, opts.qtype, opts.symmetric);
    if (reduced) p.scale = Math.fround((p.scale * 127) / 63);
    const floor = opts.symmetric && opts.minScales ? opts.minScales[opts.minScales.length === 1 ? 0 : k] : 0;
    scales[k] = floor > p.scale ? Math.fround(floor) : p.scale;
    zeroPoints[k] = p.zeroPoint;
  }
  const info = QUANT_TYPES[opts.qtype];
  const { qmin, qmax } = reduced ? { qmin: -64, qmax: 63 } : quantRange(opts.qtype, false);
  const values = info.signed ? new Int8Array(data.length) : new Uint8Array(data.length);
  // Sums of squared error and signal, written by the loops below (kept out of closures: V8 would put
  // captured accumulators in a heap context and the loop would run several times slower).
  const acc = new Float64Array(2);
  if (lastAxisChannels(dims, opts.granularity)) quantizeRows(data, dims[dims.length - 1], scales, zeroPoints, values, qmin, qmax, acc);
  else forEachRun(dims, opts.granularity, (start, count, stride, k) => quantizeSpan(data, values, start, count, stride, scales[k], zeroPoints[k], qmin, qmax, acc));
  const [errSq, sigSq] = acc;
  return { qtype: opts.qtype, dims, values, scales, zeroPoints, scaleDims, granularity: opts.granularity, sqnr: errSq === 0 ? Infinity : 10 * Math.log10(sigSq / errSq) };
}

/**
 * 1.5·2^52: (v + MAGIC) - MAGIC rounds a double to the nearest integer, ties to even, as onnxruntime's
 * std::nearbyint does, without a call (exact for |v| < 2^51; anything larger is clamped to the range anyway).
 */
const MAGIC = 6755399441055744;

/** [K, N] with a scale per column, walked in memory order (a column walk misses cache on every element). */
function quantizeRows(data: Float32Array, n: number, scales: Float32Array, zeroPoints: Int32Array, values: Int8Array | Uint8Array, qmin: number, qmax: number, acc: Float64Array): void {
  let errSq = 0, sigSq = 0;
  for (let row = 0; row < data.length; row += n) {
    for (let k = 0; k < n; k++) {
      const s = scales[k], z = zeroPoints[k], x = data[row + k];
      let q = (Math.fround(x / s) + MAGIC) - MAGIC + z;
      q = q < qmin ? qmin : q > qmax ? qmax : q;
      values[row + k] = q;
      const e = x - (q - z) * s;
      errSq += e * e;
      sigSq += x * x;
    }
  }
  acc[0] += errSq;
  acc[1] += sigSq;
}

/** Per-column min/max of [K, N] values, walking rows in memory order (a column walk misses cache on every element). */
function rowRanges(data: Float32Array, n: number, mins: Float64Array, maxs: Float64Array): void {
  for (let row = 0; row < data.length; row += n) {
    for (let k = 0; k < n; k++) {
      const v = data[row + k];
      if (v < mins[k]) mins[k] = v;
      if (v > maxs[k]) maxs[k] = v;
    }
  }
}

function spanRange(data: Float32Array, start: number, count: number, stride: number, k: number, mins: Float64Array, maxs: Float64Array): void {
  let mn = mins[k], mx = maxs[k];
  for (let i = start, end = start + count * stride; i < end; i += stride) {
    const v = data[i];
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  mins[k] = mn;
  maxs[k] = mx;
}

/** One run of elements sharing scale `s` and zero point `z`. */
function quantizeSpan(data: Float32Array, values: Int8Array | Uint8Array, start: number, count: number, stride: number, s: number, z: number, qmin: number, qmax: number, acc: Float64Array): void {
  let errSq = 0, sigSq = 0;
  for (let i = start, end = start + count * stride; i < end; i += stride) {
    const x = data[i];
    let q = (Math.fround(x / s) + MAGIC) - MAGIC + z;
    q = q < qmin ? qmin : q > qmax ? qmax : q;
    values[i] = q;
    const e = x - Math.fround((q - z) * s);
    errSq += e * e;
    sigSq += x * x;
  }
  acc[0] += errSq;
  acc[1] += sigSq;
}

export function dequantizeTensor(q: QuantizedTensor): Float32Array {
  const { groupOf } = groupLayout(q.dims, q.granularity);
  const out = new Float32Array(q.values.length);
  for (let i = 0; i < out.length; i++) {
    const k = groupOf(i);
    out[i] = Math.fround((q.values[i] - q.zeroPoints[k]) * q.scales[k]);
  }
  return out;
}

export interface ErrorStats {
  mse: number;
  /** Signal-to-quantization-noise ratio in dB: 10·log10(Σx² / Σ(x−x̂)²); Infinity when exact. */
  sqnr: number;
  maxAbsError: number;
  /** Share of values outside the representable range (clipped), in percent. */
  clippedPercent: number;
}

export function errorStats(original: Float32Array, approx: Float32Array, q?: QuantizedTensor): ErrorStats {
  let se = 0, sig = 0, maxErr = 0, clipped = 0;
  for (let i = 0; i < original.length; i++) {
    const e = original[i] - approx[i];
    se += e * e;
    sig += original[i] * original[i];
    if (Math.abs(e) > maxErr) maxErr = Math.abs(e);
  }
  if (q) {
    const { groupOf } = groupLayout(q.dims, q.granularity);
    for (let i = 0; i < original.length; i++) {
      // clipped: the error exceeds half a step, which rounding alone cannot cause
      if (Math.abs(original[i] - approx[i]) > q.scales[groupOf(i)] * 0.5 * (1 + 1e-6)) clipped++;
    }
  }
  const n = Math.max(1, original.length);
  return { mse: se / n, sqnr: se === 0 ? Infinity : 10 * Math.log10(sig / se), maxAbsError: maxErr, clippedPercent: (100 * clipped) / n };
}
