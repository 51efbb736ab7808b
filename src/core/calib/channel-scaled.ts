import { GrowingHistogram } from './histogram';
import type { ChannelOf } from '../runtime/capture-sampled';

/** Values held for smoothing in one calibration pass, in all (4-6 bytes each): beyond it, fewer picks or two passes. */
export const HELD_VALUES = 32 * 1024 * 1024;

/**
 * What the samples showed of one activation that smoothing may divide per channel, held until the
 * scales are known: the values (strided picks and exact tails, or every value) with their channels and
 * weights, and each channel's extremes. Smoothing then decides from the extremes, and the histogram of
 * the divided activation is binned from the values, so one pass over the data serves both.
 */
export class ChannelScaledValues {
  private readonly parts: Array<{ values: Float32Array; weight: number; channel: ChannelOf }> = [];
  readonly min: Float64Array;
  readonly max: Float64Array;
  held = 0;

  constructor(readonly channels: number) {
    this.min = new Float64Array(channels).fill(Infinity);
    this.max = new Float64Array(channels).fill(-Infinity);
  }

  /**
   * Values (NaN: not counted) and their channels, each value standing for `weight`. Views into a larger
   * buffer are copied (the rest of it would stay alive); whole arrays are the caller's to give away.
   */
  add(values: Float32Array, weight: number, channel: ChannelOf): void {
    if (!values.length) return;
    const own = <T extends Float32Array | Uint16Array | Uint32Array>(a: T): T => (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : (a.slice() as T));
    this.parts.push({ values: own(values), weight, channel: 'step' in channel ? channel : own(channel) });
    this.held += values.length;
  }

  /** Folds in one sample's per-channel extremes. */
  extremes(min: ArrayLike<number>, max: ArrayLike<number>): void {
    for (let c = 0; c < this.channels; c++) {
      if (min[c] < this.min[c]) this.min[c] = min[c];
      if (max[c] > this.max[c]) this.max[c] = max[c];
    }
  }

  /** Each channel's largest magnitude (smoothing's statistic). */
  absMax(): Float64Array {
    return Float64Array.from(this.min, (lo, c) => Math.max(Math.abs(lo), Math.abs(this.max[c])));
  }

  /** The histogram of the activation divided by `scales` (positive, one per channel); the held values are released. */
  histogram(bins: number, scales: Float64Array): GrowingHistogram {
    let min = Infinity, max = -Infinity;
    for (let c = 0; c < this.channels; c++) {
      if (!(this.min[c] <= this.max[c])) continue; // a channel no sample reached
      min = Math.min(min, this.min[c] / scales[c]);
      max = Math.max(max, this.max[c] / scales[c]);
    }
    const h = new GrowingHistogram(bins);
    const inv = Float64Array.from(scales, (s) => 1 / s);
    // Divided values gathered per weight (the picks of every sample usually share one) and binned at once:
    // a call per part paid the binning's set-up per sample.
    const byWeight = new Map<number, typeof this.parts>();
    for (const p of this.parts) (byWeight.get(p.weight) ?? byWeight.set(p.weight, []).get(p.weight)!).push(p);
    for (const [weight, parts] of byWeight) {
      const v = new Float32Array(parts.reduce((a, p) => a + p.values.length, 0));
      let n = 0;
      for (const p of parts) {
        const x = p.values, ch = p.channel;
        if ('step' in ch) {
          const { step, inner, channels } = ch;
          for (let j = 0, i = 0; j < x.length; j++, i += step) if (x[j] === x[j]) v[n++] = x[j] * inv[Math.floor(i / inner) % channels];
        } else for (let j = 0; j < x.length; j++) if (x[j] === x[j]) v[n++] = x[j] * inv[ch[j]];
      }
      h.add(v.subarray(0, n), weight, { min, max });
    }
    // Only the extremes (no value was held: bins 0, or every sample was empty).
    if (!this.parts.length && Number.isFinite(min)) h.add([], 1, { min, max });
    this.parts.length = 0;
    return h;
  }
}
