// The in-memory definition of the counts streamedPruneCounts must reproduce: sort every score, then
// binary-search the global threshold. Tests compare the streamed selection against it.
/** Index of the first element of sorted `a` that is ≥ v (binary search). */
function lowerBound(a: Float32Array, v: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * How many weights each layer loses so that exactly round(sparsity · total) go: one threshold over all
 * layers (global, no layer below `minDensity`) or the same fraction of each (layer). Layers keep ≥ 1.
 */
export function sortedPruneCounts(scores: Float32Array[], sparsity: number, scope: 'global' | 'layer', minDensity: number): number[] {
  const sizes = scores.map((s) => s.length);
  const caps = sizes.map((n) => Math.max(0, Math.min(n - 1, Math.floor(n * (1 - (scope === 'global' ? minDensity : 0)) + 1e-9))));
  if (scope === 'layer') return sizes.map((n, i) => Math.min(caps[i], Math.round(n * sparsity)));
  const total = sizes.reduce((a, b) => a + b, 0);
  const k = Math.min(Math.round(total * sparsity), caps.reduce((a, b) => a + b, 0));
  if (k === 0) return sizes.map(() => 0);
  const sorted = scores.map((s) => Float32Array.from(s).sort());
  const below = (t: number) => sorted.map((s, i) => Math.min(caps[i], lowerBound(s, t)));
  // The smallest threshold t (a stored score) at which pruning everything below t plus ties reaches k.
  const all = new Float32Array(total);
  let off = 0;
  for (const s of sorted) { all.set(s, off); off += s.length; }
  all.sort();
  let lo = 0, hi = all.length - 1;
  const upTo = (t: number) => sorted.reduce((a, s, i) => a + Math.min(caps[i], lowerBound(s, t) + countEqual(s, t)), 0);
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (upTo(all[mid]) >= k) hi = mid;
    else lo = mid + 1;
  }
  const t = all[lo];
  const counts = below(t);
  let left = k - counts.reduce((a, b) => a + b, 0);
  // Ties at t fill the remainder, layer by layer, within each layer's cap.
  for (let i = 0; i < sorted.length && left > 0; i++) {
    const add = Math.min(left, countEqual(sorted[i], t), caps[i] - counts[i]);
    counts[i] += add;
    left -= add;
  }
  return counts;
}

function countEqual(sorted: Float32Array, v: number): number {
  let i = lowerBound(sorted, v), n = 0;
  while (i < sorted.length && sorted[i] === v) { i++; n++; }
  return n;
}
