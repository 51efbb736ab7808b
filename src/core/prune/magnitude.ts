import { layerIndex, type PrunableLayer } from './layers';

/**
 * Importance of each weight: |w| (L1 and L2 rank single weights alike), or with input activation norms
 * |w| · ‖x_in‖₂ (Wanda, Sun et al. 2023), so a small weight on a loud input is not the first to go.
 */
export function weightScores(l: PrunableLayer, w: Float32Array, inputNorms?: Float64Array, into?: Float32Array): Float32Array {
  // `into`: memory to reuse (streamed pruning scores every layer more than once; fresh pages cost time).
  const s = into && into.length >= w.length ? into.subarray(0, w.length) : new Float32Array(w.length);
  if (!inputNorms) {
    for (let i = 0; i < w.length; i++) s[i] = Math.abs(w[i]);
    return s;
  }
  const { outer, inSize, inner } = layerIndex(l);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < inSize; c++) {
      const base = (o * inSize + c) * inner;
      const g = inputNorms[c];
      for (let r = 0; r < inner; r++) s[base + r] = Math.abs(w[base + r]) * g;
    }
  }
  return s;
}

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
export function pruneCounts(scores: Float32Array[], sparsity: number, scope: 'global' | 'layer', minDensity: number): number[] {
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

/**
 * The k-th smallest (0-based) of non-negative scores, as sorting would give, in two counting passes over
 * the float bit patterns (which order as the values do) instead of an n·log n sort of a copy.
 */
export function kthSmallest(scores: Float32Array, k: number): number {
  const keys = new Uint32Array(scores.buffer, scores.byteOffset, scores.length);
  const clean = (x: number) => (x >= 0x80000000 ? 0 : x); // negative zero ranks as zero
  const hi = new Uint32Array(1 << 16);
  for (let i = 0; i < keys.length; i++) hi[clean(keys[i]) >>> 16]++;
  let b = 0, seen = 0;
  while (seen + hi[b] <= k) seen += hi[b++];
  const lo = new Uint32Array(1 << 16);
  for (let i = 0; i < keys.length; i++) { const x = clean(keys[i]); if (x >>> 16 === b) lo[x & 0xffff]++; }
  let l = 0;
  while (seen + lo[l] <= k) seen += lo[l++];
  return new Float32Array(new Uint32Array([((b << 16) | l) >>> 0]).buffer)[0];
}

/** Mask (1 = kept) removing exactly `count` weights of lowest score; ties broken by position. */
export function maskByCount(scores: Float32Array, count: number): Uint8Array {
  const mask = new Uint8Array(scores.length).fill(1);
  if (count <= 0) return mask;
  const t = kthSmallest(scores, count - 1);
  let left = count;
  for (let i = 0; i < scores.length && left > 0; i++) if (scores[i] < t) { mask[i] = 0; left--; }
  for (let i = 0; i < scores.length && left > 0; i++) if (scores[i] === t) { mask[i] = 0; left--; }
  return mask;
}

/**
 * N:M mask: in every group of M consecutive weights along the input dimension (for each output and
 * kernel position) the N of highest score stay. Undefined when the input size is not a multiple of M.
 */
export function nmMask(l: PrunableLayer, scores: Float32Array, n: number, m: number): Uint8Array | undefined {
  const { outer, inSize, inner } = layerIndex(l);
  if (inSize % m !== 0) return undefined;
  const mask = new Uint8Array(scores.length).fill(1);
  const idx = new Array<number>(m);
  for (let o = 0; o < outer; o++) {
    for (let r = 0; r < inner; r++) {
      for (let g = 0; g < inSize; g += m) {
        for (let j = 0; j < m; j++) idx[j] = (o * inSize + g + j) * inner + r;
        idx.sort((a, b) => scores[a] - scores[b] || a - b);
        for (let j = 0; j < m - n; j++) mask[idx[j]] = 0;
      }
    }
  }
  return mask;
}

/** Groups along the input dimension with more than N non-zero weights (0 when the pattern holds). */
export function nmViolations(l: PrunableLayer, w: Float32Array, n: number, m: number): number {
  const { outer, inSize, inner } = layerIndex(l);
  let bad = 0;
  for (let o = 0; o < outer; o++) {
    for (let r = 0; r < inner; r++) {
      for (let g = 0; g + m <= inSize; g += m) {
        let nz = 0;
        for (let j = 0; j < m; j++) if (w[(o * inSize + g + j) * inner + r] !== 0) nz++;
        if (nz > n) bad++;
      }
    }
  }
  return bad;
}
