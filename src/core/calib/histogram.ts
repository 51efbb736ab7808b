/**
 * A histogram that covers whatever range the data shows, in one pass: bins are symmetric around 0 and
 * when a value falls outside, the bin width doubles (pairs of bins merge) until it fits. So activations
 * stream batch by batch into a fixed number of bins without knowing their range in advance.
 */
export class GrowingHistogram {
  readonly counts: Float64Array;
  width = 0;
  min = Infinity;
  max = -Infinity;
  total = 0;

  /** `bins` 0 keeps only min and max (MinMax calibration needs nothing else). */
  constructor(readonly bins = 2048) {
    if (bins % 2) throw new Error('bins must be even');
    this.counts = new Float64Array(bins);
  }

  /** Lower edge of the histogram (the upper edge is -lo). */
  get lo(): number {
    return (-this.bins / 2) * this.width;
  }

  /**
   * Adds values, each counted `weight` times (a strided sample stands for the values between its picks).
   * `extremes`: the exact min and max of what the values were sampled from, when known.
   */
  add(values: Float32Array | number[], weight = 1, extremes?: { min: number; max: number }): void {
    const { min: mn, max: mx } = extremes ?? extremesOf(values);
    if (!Number.isFinite(mn) || !Number.isFinite(mx)) return;
    if (mn < this.min) this.min = mn;
    if (mx > this.max) this.max = mx;
    this.total += values.length * weight;
    if (this.bins === 0) return;
    const need = Math.max(Math.abs(mn), Math.abs(mx));
    if (this.width === 0) this.width = need > 0 ? (need * 2) / this.bins : 1e-8;
    while (need >= (this.bins / 2) * this.width) this.grow();
    const n = this.bins, inv = 1 / this.width;
    if (values.length < 4 * n) {
      // Few values: summing four lanes of n bins would cost more than it saves.
      for (let i = 0; i < values.length; i++) this.counts[binOf(values[i], inv, n)] += weight;
      return;
    }
    const lanes = binLanes(values, inv, n);
    for (let b = 0; b < n; b++) this.counts[b] += (lanes[b] + lanes[b + n] + lanes[b + 2 * n] + lanes[b + 3 * n]) * weight;
  }

  private grow(): void {
    const n = this.bins, half = n / 2, c = this.counts;
    // Merge pairs outward from the centre so bin edges stay aligned with 0.
    const merged = new Float64Array(n);
    for (let b = 0; b < half; b++) merged[half + (b >> 1)] += c[half + b];
    for (let b = 0; b < half; b++) merged[half - 1 - (b >> 1)] += c[half - 1 - b];
    c.set(merged);
    this.width *= 2;
  }

  binCenter(b: number): number {
    return this.lo + (b + 0.5) * this.width;
  }

  /** Share of values below `lo` or above `hi`, in percent. */
  clippedPercent(lo: number, hi: number): number {
    if (!this.total) return 0;
    let out = 0;
    for (let b = 0; b < this.bins; b++) {
      const left = this.lo + b * this.width, right = left + this.width;
      if (right <= lo || left >= hi) out += this.counts[b];
      else if (left < lo) out += (this.counts[b] * (lo - left)) / this.width;
      else if (right > hi) out += (this.counts[b] * (right - hi)) / this.width;
    }
    return (100 * out) / this.total;
  }

  /** A coarse copy for reports and the calibration view: `n` bins over [min, max]. */
  summary(n = 64): { edges: [number, number]; counts: number[] } {
    const lo = Number.isFinite(this.min) ? this.min : 0, hi = Number.isFinite(this.max) ? this.max : 0;
    const out = new Array<number>(n).fill(0);
    const span = hi - lo || 1;
    for (let b = 0; b < this.bins; b++) {
      if (!this.counts[b]) continue;
      const k = Math.min(n - 1, Math.max(0, Math.floor(((this.binCenter(b) - lo) / span) * n)));
      out[k] += this.counts[b];
    }
    return { edges: [lo, hi], counts: out };
  }
}

/** Min and max in two interleaved lanes (each compare waits only on its own lane's last one). */
function extremesOf(values: Float32Array | number[]): { min: number; max: number } {
  let a = Infinity, b = Infinity, c = -Infinity, d = -Infinity, i = 0;
  for (const end = values.length & ~1; i < end; i += 2) {
    const x = values[i], y = values[i + 1];
    a = x < a ? x : a; c = x > c ? x : c;
    b = y < b ? y : b; d = y > d ? y : d;
  }
  for (; i < values.length; i++) { const x = values[i]; a = x < a ? x : a; c = x > c ? x : c; }
  return { min: Math.min(a, b), max: Math.max(c, d) };
}

/** The bin of `v` (bins of width 1/inv centred on 0); past an edge, the edge bin. */
function binOf(v: number, inv: number, bins: number): number {
  const b = (v * inv + bins / 2) | 0;
  return b < 0 ? 0 : b >= bins ? bins - 1 : b;
}

const laneBuffers = new Map<number, Uint32Array>();

/**
 * Integer counts of `values` in `bins` bins of width 1/inv centred on 0, in four interleaved count arrays
 * (returned end to end, in a buffer the next call reuses): activations repeat a bin back to back (ReLU's
 * zeros), and one array would make each increment wait for the last; this runs about 2.5x faster than a
 * single Math.floor loop. Values past an edge land in the edge bin; the caller has grown the bins to hold them.
 */
function binLanes(values: Float32Array | number[], inv: number, bins: number): Uint32Array {
  // One zeroed buffer per bin count, reused: a fresh 32 KB array per call made about 8 MB of garbage a
  // sample on PaddleOCR det 320x640 (two calls for each of its 122 tensors).
  let u = laneBuffers.get(bins);
  if (u) u.fill(0);
  else laneBuffers.set(bins, (u = new Uint32Array(bins * 4)));
  const at = (v: number) => binOf(v, inv, bins);
  let i = 0;
  for (const end = values.length & ~3; i < end; i += 4) {
    u[at(values[i])]++;
    u[at(values[i + 1]) + bins]++;
    u[at(values[i + 2]) + 2 * bins]++;
    u[at(values[i + 3]) + 3 * bins]++;
  }
  for (; i < values.length; i++) u[at(values[i])]++;
  return u;
}

export interface ClipRange {
  lo: number;
  hi: number;
}

/** Clip at the given percentile on each side (e.g. 99.99 keeps the central 99.99 % ± tails). */
export function percentileRange(h: GrowingHistogram, percentile: number): ClipRange {
  const tail = ((100 - percentile) / 100) * h.total;
  let acc = 0, lo = h.min, hi = h.max;
  for (let b = 0; b < h.bins; b++) {
    acc += h.counts[b];
    if (acc > tail) { lo = Math.max(h.min, h.lo + b * h.width); break; }
  }
  acc = 0;
  for (let b = h.bins - 1; b >= 0; b--) {
    acc += h.counts[b];
    if (acc > tail) { hi = Math.min(h.max, h.lo + (b + 1) * h.width); break; }
  }
  return { lo: Math.min(lo, 0), hi: Math.max(hi, 0) };
}

/** |x| histogram folded from the symmetric one (bins of width h.width from 0 up). */
function folded(h: GrowingHistogram): Float64Array {
  const half = h.bins / 2;
  const f = new Float64Array(half);
  for (let b = 0; b < half; b++) f[b] = h.counts[half + b] + h.counts[half - 1 - b];
  return f;
}

/** Values per quantization level below which a histogram is too sparse for KL calibration. */
export const ENTROPY_MIN_PER_LEVEL = 64;

/**
 * Entropy calibration (KL divergence, as TensorRT does): the |x| threshold whose 128-level quantized
 * distribution diverges least from the observed one; the data's own min/max bound the result.
 */
export function entropyRange(h: GrowingHistogram, levels = 128): ClipRange {
  const p0 = folded(h);
  // The spike of exact zeros (ReLU outputs, padding) would dominate the divergence and drag the
  // threshold down; level it with its neighbour, as NVIDIA's pytorch-quantization does.
  if (p0.length > 1) p0[0] = Math.min(p0[0], p0[1]);
  let last = p0.length;
  while (last > 0 && p0[last - 1] === 0) last--;
  // Too few values (an SE block's pooled vector, a tiny batch) leave most bins empty, and the divergence
  // then rewards thresholds inside the noise: keep the observed range instead.
  if (last <= levels || h.total < levels * ENTROPY_MIN_PER_LEVEL) return { lo: Math.min(h.min, 0), hi: Math.max(h.max, 0) };
  let best = last, bestKl = Infinity;
  const step = Math.max(1, Math.floor((last - levels) / 96)); // at most ~96 candidate thresholds
  // P and Q of each candidate in two arrays reused, not two fresh ones each (400 random histograms, the
  // same thresholds: 278 -> 240 ms, scratch); the loops and logarithms are the rest.
  const p = new Float64Array(last), q = new Float64Array(last);
  for (let i = levels; i <= last; i += step) {
    let outliers = 0;
    for (let k = i; k < last; k++) outliers += p0[k];
    p.set(p0.subarray(0, i));
    p[i - 1] += outliers;
    // Q: the slice *without* the folded outliers, merged into `levels` bins and spread back over the
    // non-empty source bins. P carries the outliers in its last bin, so clipping too much costs KL.
    const per = i / levels;
    for (let j = 0; j < levels; j++) {
      const s = Math.floor(j * per), e = j === levels - 1 ? i : Math.floor((j + 1) * per);
      let sum = 0, nonzero = 0;
      for (let k = s; k < e; k++) { sum += p0[k]; if (p0[k] > 0) nonzero++; }
      const v = nonzero ? sum / nonzero : 0;
      for (let k = s; k < e; k++) q[k] = p0[k] > 0 ? v : 0;
    }
    const kl = klDivergence(p, q, i);
    if (kl < bestKl) { bestKl = kl; best = i; }
  }
  const t = best * h.width;
  return { lo: Math.min(0, Math.max(h.min, -t)), hi: Math.max(0, Math.min(h.max, t)) };
}

/** KL(P‖Q) over the first n bins of each. */
function klDivergence(p: Float64Array, q: Float64Array, n: number): number {
  let ps = 0, qs = 0;
  for (let k = 0; k < n; k++) { ps += p[k]; qs += q[k]; }
  if (!ps || !qs) return Infinity;
  let kl = 0;
  for (let k = 0; k < n; k++) {
    if (p[k] === 0) continue;
    const pk = p[k] / ps, qk = q[k] / qs;
    kl += qk > 0 ? pk * Math.log(pk / qk) : pk * 30; // an empty Q bin where P has mass: heavy penalty
  }
  return kl;
}

/**
 * MSE-optimal clipping: the range whose expected rounding + clipping error over the histogram is least.
 * Each bin's values are taken as spread evenly over it, so a bin the range's edge cuts counts partly as
 * rounded (step²/12 each) and partly as clipped (their mean squared distance to the edge). Judged by its
 * centre, a bin of a million near-zero values flipped from clipped at no cost to rounded as the range
 * grew by 1%, and the choice followed the bin grid, not the data (PaddleOCR rec's scaled HardSwish outputs).
 */
export function mseRange(h: GrowingHistogram, levels = 255): ClipRange {
  const lo0 = Math.min(h.min, 0), hi0 = Math.max(h.max, 0);
  const n = h.bins, w = h.width;
  // Prefix sums of counts, count·centre and count·centre² (index b: bins before b): the bins wholly past
  // an edge e add Σ count·((centre − e)² + width²/12), in constant time per candidate range.
  const c0 = new Float64Array(n + 1), c1 = new Float64Array(n + 1), c2 = new Float64Array(n + 1);
  for (let b = 0; b < n; b++) {
    const m = h.counts[b], c = h.binCenter(b);
    c0[b + 1] = c0[b] + m; c1[b + 1] = c1[b] + m * c; c2[b + 1] = c2[b] + m * c * c;
  }
  const past = (from: number, to: number, e: number) => (c2[to] - c2[from]) - 2 * e * (c1[to] - c1[from]) + (e * e + (w * w) / 12) * (c0[to] - c0[from]);
  // Mean of (x − e)² for x uniform on [a, b], all on one side of e.
  const meanSq = (a: number, b: number, e: number) => ((a - e) ** 2 + (a - e) * (b - e) + (b - e) ** 2) / 3;
  const binOfEdge = (x: number) => Math.min(n - 1, Math.max(0, Math.floor((x - h.lo) / w)));
  let best: ClipRange = { lo: lo0, hi: hi0 };
  let bestErr = Infinity;
  for (let k = 1; k <= 100; k++) {
    const f = k / 100;
    const lo = lo0 * f, hi = hi0 * f;
    const rounding = ((hi - lo) / levels) ** 2 / 12;
    // The bins the edges fall in are split by hand; those wholly outside come from the sums.
    const bl = binOfEdge(lo), bh = Math.max(bl, binOfEdge(hi));
    let err = past(0, bl, lo) + past(bh + 1, n, hi), inside = c0[bh + 1] - c0[bl];
    for (const b of bl === bh ? [bl] : [bl, bh]) {
      const m = h.counts[b];
      if (!m) continue;
      const left = h.lo + b * w, right = left + w;
      if (left < lo) { const end = Math.min(right, lo), part = (m * (end - left)) / w; err += part * meanSq(left, end, lo); inside -= part; }
      if (right > hi) { const start = Math.max(left, hi), part = (m * (right - start)) / w; err += part * meanSq(start, right, hi); inside -= part; }
    }
    if (inside > 0) err += inside * rounding;
    if (err < bestErr) { bestErr = err; best = { lo, hi }; }
  }
  return best;
}
