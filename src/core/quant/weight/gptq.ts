import { computeQParams } from '../qparams';
import { roundHalfEven } from '../rounding';
import { clamp4, kBlocksOf, type BlockQuantized } from './matmul-nbits';

export interface GptqOptions {
  blockSize: number;
  symmetric: boolean;
  /** Damping added to the Hessian diagonal, as a fraction of its mean. */
  damp: number;
  /** Process input channels by decreasing Hessian diagonal (block scales then fixed up front). */
  actOrder: boolean;
}

/** Lower Cholesky factor of a symmetric positive definite n×n matrix (row-major); undefined if not PD. */
export function cholesky(a: Float64Array, n: number): Float64Array | undefined {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      if (i === j) {
        if (!(s > 0)) return undefined;
        l[i * n + i] = Math.sqrt(s);
      } else {
        l[i * n + j] = s / l[j * n + j];
      }
    }
  }
  return l;
}

/** Inverse of a lower-triangular matrix. */
function invertLower(l: Float64Array, n: number): Float64Array {
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    inv[i * n + i] = 1 / l[i * n + i];
    for (let j = 0; j < i; j++) {
      let s = 0;
      for (let k = j; k < i; k++) s += l[i * n + k] * inv[k * n + j];
      inv[i * n + j] = -s / l[i * n + i];
    }
  }
  return inv;
}

/** Upper Cholesky factor U of H⁻¹ (H⁻¹ = Uᵀ U), the form GPTQ's column updates read. */
export function inverseCholeskyUpper(h: Float64Array, n: number): Float64Array | undefined {
  const l = cholesky(h, n);
  if (!l) return undefined;
  const li = invertLower(l, n);
  const hinv = new Float64Array(n * n); // H⁻¹ = L⁻ᵀ L⁻¹
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < n; k++) s += li[k * n + i] * li[k * n + j];
      hinv[i * n + j] = s;
      hinv[j * n + i] = s;
    }
  }
  const l2 = cholesky(hinv, n);
  if (!l2) return undefined;
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) u[j * n + i] = l2[i * n + j];
  return u;
}

/**
 * GPTQ (Frantar et al. 2022) for W[K, N] with input Hessian H = 2XᵀX [K, K]: input channels are
 * quantized one at a time and the rounding error of each is spread over the channels not yet quantized,
 * weighted by the inverse Hessian, so the layer's output error XW − XŴ is minimised rather than the
 * weight error. Output: the same block layout as round-to-nearest, for MatMulNBits.
 */
export function gptqQuantize(weights: Float32Array, K: number, N: number, hessian: Float64Array, opts: GptqOptions): BlockQuantized {
  const bs = opts.blockSize;
  const kb = kBlocksOf(K, bs);
  const w = Float64Array.from(weights);
  const h = Float64Array.from(hessian);
  // Inputs that never fire carry no information: fix them so H stays invertible, and zero their weights.
  for (let k = 0; k < K; k++) {
    if (h[k * K + k] === 0) {
      h[k * K + k] = 1;
      for (let n = 0; n < N; n++) w[k * N + n] = 0;
    }
  }
  let meanDiag = 0;
  for (let k = 0; k < K; k++) meanDiag += h[k * K + k] / K;
  const order = Array.from({ length: K }, (_, k) => k);
  if (opts.actOrder) order.sort((a, b) => h[b * K + b] - h[a * K + a]);
  // H permuted into processing order.
  const hp = new Float64Array(K * K);
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) hp[i * K + j] = h[order[i] * K + order[j]];
  let u: Float64Array | undefined;
  for (let damp = opts.damp; !u && damp < 10; damp *= 10) {
    const hd = Float64Array.from(hp);
    for (let k = 0; k < K; k++) hd[k * K + k] += damp * meanDiag;
    u = inverseCholeskyUpper(hd, K);
  }
  if (!u) throw new Error('GPTQ: the Hessian is not positive definite even with damping');

  const scales = new Float32Array(N * kb);
  const zps = new Uint8Array(N * kb).fill(8);
  const q = new Uint8Array(N * kb * bs);
  const blockParams = (b: number) => {
    for (let n = 0; n < N; n++) {
      let min = Infinity, max = -Infinity;
      for (let k = b * bs; k < Math.min(K, (b + 1) * bs); k++) {
        const v = w[k * N + n];
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const p = computeQParams(min, max, 'uint4', opts.symmetric);
      scales[n * kb + b] = p.scale;
      zps[n * kb + b] = p.zeroPoint;
    }
  };
  const ready = new Uint8Array(kb);
  // With act-order, channels of one block are visited out of order: fix all block ranges up front.
  if (opts.actOrder) for (let b = 0; b < kb; b++) { blockParams(b); ready[b] = 1; }
  const err = new Float64Array(N);
  for (let i = 0; i < K; i++) {
    const k = order[i];
    const b = Math.floor(k / bs);
    if (!ready[b]) { blockParams(b); ready[b] = 1; }
    const d = u[i * K + i];
    for (let n = 0; n < N; n++) {
      const s = scales[n * kb + b];
      const z = zps[n * kb + b];
      const qi = clamp4(roundHalfEven(Math.fround(w[k * N + n] / s)) + z);
      q[(n * kb + b) * bs + (k % bs)] = qi;
      err[n] = (w[k * N + n] - (qi - z) * s) / d;
    }
    for (let j = i + 1; j < K; j++) {
      const f = u[i * K + j];
      if (f === 0) continue;
      const row = order[j] * N;
      for (let n = 0; n < N; n++) w[row + n] -= err[n] * f;
    }
  }
  // Padding past K in the last block dequantizes to 0.
  for (let n = 0; n < N; n++) for (let k = K; k < kb * bs; k++) q[(n * kb + kb - 1) * bs + (k % bs)] = zps[n * kb + kb - 1];
  return { K, N, bits: 4, blockSize: bs, q, scales, zeroPoints: opts.symmetric ? undefined : zps };
}
