import assert from 'node:assert/strict';
import { entropyRange, GrowingHistogram, mseRange, percentileRange } from '../../src/core/calib/histogram';
import { ChannelScaledValues } from '../../src/core/calib/channel-scaled';
import { quantizeAndMeasure } from '../helpers/quant';
import { FIXTURES } from '../../src/core/fixtures';

/** A seeded generator (mulberry32) so every run sees the same "activations". */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** ReLU outputs: 90 % exact zeros (deep ReLU layers are this sparse), the rest exponential with mean 1 (max ≈ 12 over 200k values). */
function reluLike(n: number, seed = 3): Float32Array {
  const r = rng(seed), out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r() < 0.9 ? 0 : -Math.log(1 - r());
  return out;
}

function gaussian(n: number, seed = 5): Float32Array {
  const r = rng(seed), out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return out;
}

describe('calibration histograms and clipping methods', () => {
  it('grows by merging bins without losing counts, min or max', () => {
    const h = new GrowingHistogram(64);
    h.add([0.1, -0.2, 0.05]);
    const w = h.width;
    h.add([7.5, -3]);
    assert.ok(h.width >= w * 32, `width ${h.width} after growing from ${w}`);
    assert.equal(h.counts.reduce((a, b) => a + b, 0), 5);
    assert.equal(h.min, -3);
    assert.equal(h.max, 7.5);
    assert.ok(7.5 < -h.lo && -3 >= h.lo);
  });

  it('bins each value where Math.floor puts it, weighted, whatever the run of repeats (four interleaved count arrays)', () => {
    const values = Float32Array.from([...reluLike(10_001), ...gaussian(10_003)]);
    const h = new GrowingHistogram(256);
    h.add(values, 2.5);
    const expect = new Float64Array(256);
    for (const v of values) expect[Math.min(255, Math.max(0, Math.floor(v / h.width) + 128))] += 2.5;
    let moved = 0;
    for (let b = 0; b < 256; b++) moved += Math.abs(h.counts[b] - expect[b]);
    // A value within a rounding error of a bin edge may land on either side of it; nothing else may move.
    assert.ok(moved <= 2 * 2.5 * 2, `${moved / 2.5} values binned differently`);
    assert.equal(h.total, values.length * 2.5);
    assert.equal(h.counts.reduce((a, b) => a + b, 0), values.length * 2.5);
    assert.equal(h.max, Math.max(...values));
    assert.equal(h.min, Math.min(...values));
  });

  it('percentile clips the requested share of the tails', () => {
    const h = new GrowingHistogram();
    h.add(gaussian(200_000));
    const r = percentileRange(h, 99);
    const clipped = h.clippedPercent(r.lo, r.hi);
    assert.ok(clipped > 1 && clipped < 2.6, `clipped ${clipped}%`); // 1 % per side, within a bin
    assert.ok(Math.abs(r.hi - 2.33) < 0.1 && Math.abs(r.lo + 2.33) < 0.1, `range ${r.lo}..${r.hi}`);
  });

  it('entropy clips ReLU outputs a little, not at the spike of zeros (< 1 % clipped, not MinMax either)', () => {
    const h = new GrowingHistogram();
    h.add(reluLike(200_000));
    const r = entropyRange(h);
    const clipped = h.clippedPercent(r.lo, r.hi);
    assert.equal(r.lo, 0);
    assert.ok(r.hi < h.max * 0.95, `threshold ${r.hi} of max ${h.max}: a copy of MinMax`);
    assert.ok(clipped < 1, `entropy clipped ${clipped}% of the values`);
  });

  it('entropy keeps the observed range when too few values fill the histogram (a pooled SE vector)', () => {
    const h = new GrowingHistogram();
    h.add(reluLike(2000));
    const r = entropyRange(h);
    assert.deepEqual(r, { lo: 0, hi: h.max });
  });

  it('MSE clipping follows the data, not the bin grid a growing histogram happened to settle on', () => {
    // A HardSwish-like output: half its values in a thin negative sliver (a few bins holding a million
    // values right at the range's low edge), the rest decaying from zero, one extreme. The grid depends on
    // the range of the first sample seen; judged by their centres, the sliver's bins flipped between
    // clipped for free and rounded as the range moved by 1%, and the choice moved with the grid.
    const rnd = rng(7);
    const v = Float32Array.from({ length: 1_000_000 }, () => (rnd() < 0.5 ? -0.012 - 0.0127 * rnd() : -0.25 * Math.log(1 - rnd())));
    v[0] = 4.76;
    v[1] = -0.0247;
    // The true error of uint8 quantization of v with the range f·[min, max].
    const trueErr = (f: number) => {
      const lo = -0.0247 * f, hi = 4.76 * f, s = (hi - lo) / 255;
      let e = 0;
      for (const x of v) { const q = Math.min(255, Math.max(0, Math.round((x - lo) / s))); e += (q * s + lo - x) ** 2; }
      return e;
    };
    const truth = new Map<number, number>();
    for (let k = 55; k <= 100; k++) truth.set(k, trueErr(k / 100));
    const best = Math.min(...truth.values());
    const excess = [4.76, 4.2, 3.9, 3.3, 2.9, 2.5].map((firstMax) => {
      const h = new GrowingHistogram();
      h.add([firstMax, -0.0247]);
      h.counts.fill(0); // keep the grid that first sample left, not its values
      h.total = 0;
      h.add(v);
      return truth.get(Math.round((mseRange(h).hi / 4.76) * 100))! / best;
    });
    console.log(`      true error ÷ the best, per grid: ${excess.map((x) => x.toFixed(3)).join(' ')}`);
    // Centre-judged bins: 1.24x the best error on the coarsest grid, 1.10x on average.
    assert.ok(Math.max(...excess) < 1.15 && excess.reduce((a, b) => a + b) / excess.length < 1.06, `true error ÷ the best, per grid: ${excess.map((x) => x.toFixed(3)).join(' ')}`);
  });

  it('MSE clipping gives a lower real quantization error than MinMax on data with an outlier', () => {
    const h = new GrowingHistogram();
    const g = gaussian(100_000);
    g[17] = 40; // one outlier: MinMax spends the whole range on it
    h.add(g);
    const r = mseRange(h);
    // uint8 affine quantization of the data itself, with each range.
    const err = (lo: number, hi: number) => {
      const s = (hi - lo) / 255;
      let e = 0;
      for (const v of g) { const q = Math.min(255, Math.max(0, Math.round((v - lo) / s))); e += (q * s + lo - v) ** 2; }
      return e / g.length;
    };
    assert.ok(r.hi < h.max, `MSE range ${r.lo}..${r.hi} is MinMax`);
    assert.ok(err(r.lo, r.hi) < 0.9 * err(h.min, h.max), `MSE ${err(r.lo, r.hi)} vs MinMax ${err(h.min, h.max)}`);
  });

  it('keeps the full range on tensors that are the answer (model outputs, Softmax inputs) whatever the method', async () => {
    const { report, fidelity } = await quantizeAndMeasure(FIXTURES.transformer.build(), { mode: 'static', calibration: 'random:16', calibrationMethod: 'entropy', staticOps: 'all' });
    const tensors: Array<{ tensor: string; clip: [number, number]; minmax: [number, number]; fullRange?: string }> = report.calibration.tensors;
    const kept = tensors.filter((t) => t.fullRange);
    assert.ok(kept.some((t) => /model output/.test(t.fullRange!)), JSON.stringify(kept.map((t) => [t.tensor, t.fullRange])));
    assert.ok(kept.some((t) => /feeds Softmax/.test(t.fullRange!)));
    for (const t of kept) assert.deepEqual(t.clip, t.minmax, t.tensor);
    assert.ok(tensors.some((t) => !t.fullRange && t.clip[1] < t.minmax[1]), 'entropy clipped nothing anywhere');
    assert.ok(fidelity.cosine > 0.99, `cosine ${fidelity.cosine}`);
  });
});

// Held values (one-pass smoothing) are binned divided by their channel's scale; a strided pick's channel
// follows from its index (element j·step lies in channel ⌊j·step / inner⌋ mod channels), stepped rather
// than divided in the loop. Checked against that formula for strides shorter and longer than a channel's
// block and than the whole channel cycle.
describe('held values binned by channel (ChannelScaledValues)', () => {
  for (const [step, inner, channels] of [[7, 1, 5], [3, 10, 4], [37, 16, 3], [101, 7, 9], [13, 13, 2], [1, 4, 3]] as const) {
    it(`strided picks (step ${step}, ${inner} elements a channel block, ${channels} channels): each value divided by its own channel's scale`, () => {
      const n = 500;
      const x = Float32Array.from({ length: n }, (_, j) => Math.sin(j * 0.7) * (1 + (j % 5)));
      x[17] = NaN; // a value the tail counts instead
      const scales = Float64Array.from({ length: channels }, (_, c) => 1 + c * 1.5);
      const held = new ChannelScaledValues(channels);
      const min = new Float32Array(channels).fill(-10), max = new Float32Array(channels).fill(10);
      held.sample(min, max);
      held.add(x, 3, { step, inner, channels });
      const got = held.histogram(64, scales);
      const want = new GrowingHistogram(64);
      const inv = Array.from(scales, (sc) => 1 / sc); // (as the class multiplies)
      const divided = Array.from(x, (v, j) => v * inv[Math.floor((j * step) / inner) % channels]).filter((v) => !Number.isNaN(v));
      const lo = Math.min(...inv.map((i) => Math.fround(-10 * i))), hi = Math.max(...inv.map((i) => Math.fround(10 * i)));
      want.add(Float32Array.from(divided), 3, { min: lo, max: hi });
      assert.deepEqual(Array.from(got.counts), Array.from(want.counts));
      assert.equal(got.total, want.total);
    });
  }
});
