import { cholesky, inverseCholeskyUpper } from '../quant/weight/gptq';

/**
 * Training-free recovery of a pruned layer (the OBS update SparseGPT uses, Frantar & Alistarh 2023),
 * for W[K, N] with input Hessian H = 2XᵀX [K, K] and a fixed mask: input rows are visited in order,
 * each removed weight is zeroed and its loss w/[H⁻¹]ᵢᵢ is spread over the rows not yet visited, so
 * XW − XŴ stays small rather than the weights themselves.
 */
export function obsPrune(weights: Float32Array, mask: Uint8Array, K: number, N: number, hessian: Float64Array, damp: number): Float32Array {
  const w = Float64Array.from(weights);
  const h = Float64Array.from(hessian);
  for (let k = 0; k < K; k++) {
    if (h[k * K + k] === 0) h[k * K + k] = 1; // a silent input: nothing to spread, keep H invertible
  }
  let meanDiag = 0;
  for (let k = 0; k < K; k++) meanDiag += h[k * K + k] / K;
  let u: Float64Array | undefined;
  for (let d = damp; !u && d < 10; d *= 10) {
    const hd = Float64Array.from(h);
    for (let k = 0; k < K; k++) hd[k * K + k] += d * meanDiag;
    u = inverseCholeskyUpper(hd, K);
  }
  if (!u) throw new Error('the input Hessian is not positive definite even with damping');
  const err = new Float64Array(N);
  for (let i = 0; i < K; i++) {
    const d = u[i * K + i];
    let any = false;
    for (let n = 0; n < N; n++) {
      if (mask[i * N + n]) { err[n] = 0; continue; }
      err[n] = w[i * N + n] / d;
      w[i * N + n] = 0;
      any = true;
    }
    if (!any) continue;
    for (let j = i + 1; j < K; j++) {
      const f = u[i * K + j];
      if (f === 0) continue;
      const row = j * N;
      for (let n = 0; n < N; n++) w[row + n] -= err[n] * f; // rows still to be pruned too: their loss then includes these updates
    }
  }
  return Float32Array.from(w);
}

/** Flops the exact per-output solve may spend before the OBS approximation takes over (a few seconds). */
export const EXACT_SOLVE_BUDGET = 2e9;

/**
 * Recovery of a pruned W[K, N] under a fixed mask: for each output, the kept weights that best reproduce
 * the float output on the calibration inputs (least squares through H), exact when that fits the budget
 * (Σ |kept|³/6 flops), else the OBS update above, its scalable approximation.
 */
export function reconstructPruned(weights: Float32Array, mask: Uint8Array, K: number, N: number, hessian: Float64Array, damp: number): { values: Float32Array; how: string } {
  let cost = 0;
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += mask[k * N + n];
    cost += (s * s * s) / 6 + s * s;
  }
  if (cost > EXACT_SOLVE_BUDGET) return { values: obsPrune(weights, mask, K, N, hessian, damp), how: 'OBS update of the kept weights from calibration inputs' };
  // H·W once; each output then solves its own kept block.
  const hw = new Float64Array(K * N);
  for (let i = 0; i < K; i++) {
    for (let k = 0; k < K; k++) {
      const h = hessian[i * K + k];
      if (h === 0) continue;
      for (let n = 0; n < N; n++) hw[i * N + n] += h * weights[k * N + n];
    }
  }
  let meanDiag = 0;
  for (let k = 0; k < K; k++) meanDiag += hessian[k * K + k] / K;
  const out = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    const kept: number[] = [];
    for (let k = 0; k < K; k++) if (mask[k * N + n]) kept.push(k);
    const S = kept.length;
    if (!S) continue;
    let x: Float64Array | undefined;
    for (let d = damp; !x && d < 10; d *= 10) {
      const a = new Float64Array(S * S);
      for (let p = 0; p < S; p++) for (let q = 0; q < S; q++) a[p * S + q] = hessian[kept[p] * K + kept[q]];
      for (let p = 0; p < S; p++) a[p * S + p] += d * (meanDiag || 1);
      x = solveSpd(a, Float64Array.from(kept, (k) => hw[k * N + n]), S, 1);
    }
    kept.forEach((k, a) => (out[k * N + n] = x ? x[a] : weights[k * N + n]));
  }
  return { values: out, how: 'least-squares refit of the kept weights of each output from calibration inputs' };
}

/**
 * Least-squares refit of a layer whose inputs lost channels (structured pruning): the kept rows S of
 * W[K, N] become H_SS⁻¹ H_S· W, the best linear use of the remaining inputs for the original output.
 */
export function refitKeptInputs(weights: Float32Array, K: number, N: number, hessian: Float64Array, kept: number[], damp: number): Float32Array {
  const S = kept.length;
  const hs = new Float64Array(S * S);
  let meanDiag = 0;
  for (let a = 0; a < S; a++) meanDiag += hessian[kept[a] * K + kept[a]] / S;
  for (let a = 0; a < S; a++) for (let b = 0; b < S; b++) hs[a * S + b] = hessian[kept[a] * K + kept[b]];
  // rhs = H_S· W  [S, N]
  const rhs = new Float64Array(S * N);
  for (let a = 0; a < S; a++) {
    const hrow = kept[a] * K;
    for (let k = 0; k < K; k++) {
      const c = hessian[hrow + k];
      if (c === 0) continue;
      for (let n = 0; n < N; n++) rhs[a * N + n] += c * weights[k * N + n];
    }
  }
  for (let d = damp; d < 10; d *= 10) {
    const a = Float64Array.from(hs);
    for (let i = 0; i < S; i++) a[i * S + i] += d * (meanDiag || 1);
    const x = solveSpd(a, rhs, S, N);
    if (x) return Float32Array.from(x);
  }
  // Not solvable: keep the original rows.
  const out = new Float32Array(S * N);
  kept.forEach((k, a) => out.set(weights.subarray(k * N, (k + 1) * N), a * N));
  return out;
}

/** Solves A X = B for symmetric positive definite A [n, n] and B [n, m] by Cholesky; undefined if not PD. */
export function solveSpd(a: Float64Array, b: Float64Array, n: number, m: number): Float64Array | undefined {
  const l = cholesky(a, n);
  if (!l) return undefined;
  const x = Float64Array.from(b);
  for (let i = 0; i < n; i++) { // L y = b
    for (let k = 0; k < i; k++) { const f = l[i * n + k]; if (f) for (let c = 0; c < m; c++) x[i * m + c] -= f * x[k * m + c]; }
    const d = l[i * n + i];
    for (let c = 0; c < m; c++) x[i * m + c] /= d;
  }
  for (let i = n - 1; i >= 0; i--) { // Lᵀ x = y
    for (let k = i + 1; k < n; k++) { const f = l[k * n + i]; if (f) for (let c = 0; c < m; c++) x[i * m + c] -= f * x[k * m + c]; }
    const d = l[i * n + i];
    for (let c = 0; c < m; c++) x[i * m + c] /= d;
  }
  return x;
}
