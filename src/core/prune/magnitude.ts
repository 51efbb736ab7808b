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

/**
 * LAMP scores (Lee et al. 2021, "Layer-adaptive sparsity for the magnitude-based pruning"): each score
 * squared over the sum of squares of the layer's scores at least as large. Within a layer the order is
 * the scores' own; across layers one threshold then gives each layer the share that least distorts its
 * output, so small, sensitive layers (depthwise, a first conv) keep more than a raw global threshold
 * leaves them. Written into `s` in place.
 */
export function lampScores(s: Float32Array): Float32Array {
  const sq = Float64Array.from(s, (v) => v * v).sort();
  // suffix[i] = Σ_{j ≥ i} sq[j]
  const suffix = new Float64Array(sq.length + 1);
  for (let i = sq.length - 1; i >= 0; i--) suffix[i] = suffix[i + 1] + sq[i];
  for (let i = 0; i < s.length; i++) {
    const v = s[i] * s[i];
    let lo = 0, hi = sq.length; // first index with sq ≥ v (ties share the larger sum)
    while (lo < hi) { const m = (lo + hi) >>> 1; if (sq[m] < v) lo = m + 1; else hi = m; }
    s[i] = suffix[lo] > 0 ? v / suffix[lo] : 0;
  }
  return s;
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
