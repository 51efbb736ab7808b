import { GrowingHistogram } from './histogram';

/** Values held for smoothing in one calibration pass, in all (4-6 bytes each): beyond it, fewer picks or two passes. */
export const HELD_VALUES = 32 * 1024 * 1024;

/**
 * Where a tensor's channels are (as smoothing divides them): axis 1 of a tensor of rank ≥ 3 (`rank`, the
 * tensor's), or its last axis (any rank).
 */
export interface ChannelLayout { axis: 1 | 'last'; channels: number; rank: number }

/**
 * The size of one channel's block in a tensor of these dims under layout `l` (element i lies in channel
 * ⌊i / inner⌋ mod channels; the last axis: inner 1), or undefined when the dims do not have the layout.
 */
export function channelInner(l: ChannelLayout, dims: readonly number[]): number | undefined {
  if (l.axis === 'last') return dims[dims.length - 1] === l.channels ? 1 : undefined;
  return dims.length >= 3 && dims[1] === l.channels ? dims.slice(2).reduce((a, b) => a * b, 1) : undefined;
}

/** Each value's channel: listed, or for strided picks the j-th value's is ⌊j·step / inner⌋ mod channels. */
export type ChannelOf = Uint16Array | Uint32Array | { step: number; inner: number; channels: number };

type Part = { values: Float32Array; weight: number; channel: ChannelOf };
/** One sample: its parts and its per-channel extremes. */
type Sample = { parts: Part[]; min: Float32Array; max: Float32Array };

/**
 * What the samples showed of one activation that smoothing may divide per channel, held until the
 * scales are known: per sample, the values (strided picks and exact tails, or every value) with their
 * channels and weights, and the channels' extremes. Smoothing then decides from the extremes, and the
 * histogram of the divided activation is binned from the values, so one pass over the data serves both.
 */
export class ChannelScaledValues {
  private readonly samples: Sample[] = [];
  readonly min: Float64Array;
  readonly max: Float64Array;

  constructor(readonly channels: number) {
    this.min = new Float64Array(channels).fill(Infinity);
    this.max = new Float64Array(channels).fill(-Infinity);
  }

  /** Starts a sample with its per-channel extremes (copied). */
  sample(min: ArrayLike<number>, max: ArrayLike<number>): void {
    for (let c = 0; c < this.channels; c++) {
      if (min[c] < this.min[c]) this.min[c] = min[c];
      if (max[c] > this.max[c]) this.max[c] = max[c];
    }
    this.samples.push({ parts: [], min: Float32Array.from(min), max: Float32Array.from(max) });
  }

  /**
   * Values of the current sample (NaN: not counted) and their channels, each value standing for `weight`.
   * Views into a larger buffer are copied (the rest of it would stay alive); whole arrays are the caller's
   * to give away.
   */
  add(values: Float32Array, weight: number, channel: ChannelOf): void {
    if (!values.length) return;
    const own = <T extends Float32Array | Uint16Array | Uint32Array>(a: T): T => (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : (a.slice() as T));
    this.samples[this.samples.length - 1].parts.push({ values: own(values), weight, channel: 'step' in channel ? channel : own(channel) });
  }

  /** Each channel's largest magnitude (smoothing's statistic). */
  absMax(): Float64Array {
    return Float64Array.from(this.min, (lo, c) => Math.max(Math.abs(lo), Math.abs(this.max[c])));
  }

  /**
   * The histogram of the activation divided by `scales` (positive, one per channel), the held values
   * released. Sample by sample with each sample's own extremes, as the divided activation's would have
   * been binned: a growing histogram's bins follow the ranges in the order they come.
   */
  histogram(bins: number, scales: Float64Array): GrowingHistogram {
    const h = new GrowingHistogram(bins);
    const inv = Float64Array.from(scales, (s) => 1 / s);
    const v = new Float32Array(Math.max(0, ...this.samples.flatMap((s) => s.parts.map((p) => p.values.length))));
    for (const s of this.samples) {
      let min = Infinity, max = -Infinity;
      for (let c = 0; c < this.channels; c++) {
        if (!(s.min[c] <= s.max[c])) continue; // a channel this sample did not reach
        min = Math.min(min, Math.fround(s.min[c] * inv[c]));
        max = Math.max(max, Math.fround(s.max[c] * inv[c]));
      }
      if (!Number.isFinite(min)) continue;
      if (!s.parts.length) h.add([], 1, { min, max }); // only the extremes (bins 0)
      for (const p of s.parts) {
        const x = p.values, ch = p.channel;
        let n = 0;
        if ('step' in ch) {
          // Value j is element j·step, in channel ⌊j·step / inner⌋ mod channels: stepped, not divided.
          const { step, inner, channels } = ch;
          const dq = Math.floor(step / inner) % channels, dr = step % inner;
          for (let j = 0, r = 0, c = 0; j < x.length; j++) {
            if (x[j] === x[j]) v[n++] = x[j] * inv[c];
            r += dr; c += dq;
            if (r >= inner) { r -= inner; c++; }
            if (c >= channels) c -= channels;
          }
        } else for (let j = 0; j < x.length; j++) if (x[j] === x[j]) v[n++] = x[j] * inv[ch[j]];
        h.add(v.subarray(0, n), p.weight, { min, max });
      }
    }
    this.samples.length = 0;
    return h;
  }
}
