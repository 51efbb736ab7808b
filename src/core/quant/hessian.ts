import type * as ort from 'onnxruntime-node';
import { tensorValues } from '../eval/metrics';

/** Accumulates H = 2/n · Σ xxᵀ over the rows x (length K) of a layer's input, streamed per sample. */
export class HessianAccumulator {
  readonly h: Float64Array;
  private rows = 0;

  constructor(readonly K: number) {
    this.h = new Float64Array(K * K);
  }

  add(t: ort.Tensor): void {
    this.addRows(tensorValues(t));
  }

  /** Rows of K features, back to back. */
  addRows(x: ArrayLike<number>): void {
    const K = this.K;
    const n = x.length / K;
    const h = this.h;
    for (let r = 0; r < n; r++) {
      const off = r * K;
      for (let i = 0; i < K; i++) {
        const xi = x[off + i];
        if (xi === 0) continue;
        const row = i * K;
        for (let j = 0; j <= i; j++) h[row + j] += xi * x[off + j];
      }
    }
    this.rows += n;
  }

  /** The symmetric Hessian, scaled by 2 / rows. */
  result(): Float64Array {
    const K = this.K;
    const s = this.rows ? 2 / this.rows : 0;
    const out = new Float64Array(K * K);
    for (let i = 0; i < K; i++) for (let j = 0; j <= i; j++) out[i * K + j] = out[j * K + i] = this.h[i * K + j] * s;
    return out;
  }
}
