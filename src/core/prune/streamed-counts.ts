/**
 * How many weights each layer loses so that exactly round(sparsity · total) go: one threshold over all
 * layers (global, no layer below `minDensity`) or the same fraction of each (layer); layers keep ≥ 1, and
 * ties at the threshold fill up layer by layer. Scores are handed over a layer at a time, twice, and only
 * histograms are kept, so the weights never need to be held at once. Scores are non-negative floats, whose
 * bit patterns sort as the values do, so the global threshold is found by radix selection: the high 16
 * bits first (pass one), then the low 16 bits within that bucket (pass two).
 */
export function streamedPruneCounts(sizes: number[], scoresOf: (layer: number) => Float32Array, sparsity: number, scope: 'global' | 'layer', minDensity: number): number[] {
  const caps = sizes.map((n) => Math.max(0, Math.min(n - 1, Math.floor(n * (1 - (scope === 'global' ? minDensity : 0)) + 1e-9))));
  if (scope === 'layer') return sizes.map((n, i) => Math.min(caps[i], Math.round(n * sparsity)));
  const total = sizes.reduce((a, b) => a + b, 0);
  const k = Math.min(Math.round(total * sparsity), caps.reduce((a, b) => a + b, 0));
  if (k === 0) return sizes.map(() => 0);
  const BINS = 1 << 16;
  const keyOf = (s: Float32Array) => new Uint32Array(s.buffer, s.byteOffset, s.length);
  // Negative zero (and any negative value) ranks as zero.
  const clean = (x: number) => (x >= 0x80000000 ? 0 : x);
  // Pass one counts the high 16 bits of every key; pass two the low 16 bits of keys in bucket `bucket`.
  const hist = (layer: number, bucket: number) => {
    const h = new Uint32Array(BINS);
    const keys = keyOf(scoresOf(layer));
    if (bucket < 0) for (let j = 0; j < keys.length; j++) h[clean(keys[j]) >>> 16]++;
    else for (let j = 0; j < keys.length; j++) { const x = clean(keys[j]); if (x >>> 16 === bucket) h[x & 0xffff]++; }
    return h;
  };
  /** The first bin at which Σ min(cap, base + cumulative count) reaches k; per-layer counts below it. */
  const select = (hists: Uint32Array[], base: number[]) => {
    const cum = base.slice();
    let reached = cum.reduce((a, c, i) => a + Math.min(caps[i], c), 0);
    for (let b = 0; b < BINS; b++) {
      const below = cum.slice();
      for (let i = 0; i < hists.length; i++) {
        const c = hists[i][b];
        if (!c) continue;
        reached += Math.min(caps[i], cum[i] + c) - Math.min(caps[i], cum[i]);
        cum[i] += c;
      }
      if (reached >= k) return { bin: b, below };
    }
    throw new Error('streamedPruneCounts: threshold not found');
  };
  const high = select(sizes.map((_, i) => hist(i, -1)), sizes.map(() => 0));
  const lows = sizes.map((_, i) => hist(i, high.bin));
  const low = select(lows, high.below);
  // Strictly below the threshold, then ties at it fill the remainder layer by layer within each cap.
  const counts = low.below.map((c, i) => Math.min(caps[i], c));
  let left = k - counts.reduce((a, b) => a + b, 0);
  for (let i = 0; i < sizes.length && left > 0; i++) {
    const add = Math.min(left, lows[i][low.bin], caps[i] - counts[i]);
    counts[i] += add;
    left -= add;
  }
  return counts;
}
