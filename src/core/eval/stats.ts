/** Noise-to-signal ratio Σ(a−b)² / Σa², accumulated over samples. */
export class NsrAccumulator {
  private err = 0;
  private sig = 0;

  add(ref: ArrayLike<number>, cand: ArrayLike<number>): void {
    for (let i = 0; i < ref.length; i++) {
      const e = ref[i] - cand[i];
      this.err += e * e;
      this.sig += ref[i] * ref[i];
    }
  }

  /** Sums computed elsewhere (inside onnxruntime): Σ(y − ŷ)² and Σy² of one sample. */
  addSums(err: number, sig: number): void {
    this.err += err;
    this.sig += sig;
  }

  get value(): number {
    return this.sig > 0 ? this.err / this.sig : this.err > 0 ? Infinity : 0;
  }
}

/** Spearman rank correlation of two equally long lists (ties get their average rank). */
export function spearman(a: number[], b: number[]): number {
  const rank = (xs: number[]) => {
    const idx = xs.map((v, i) => [v, i] as const).sort((p, q) => p[0] - q[0]);
    const r = new Array<number>(xs.length);
    for (let i = 0; i < idx.length; ) {
      let j = i;
      while (j + 1 < idx.length && idx[j + 1][0] === idx[i][0]) j++;
      for (let k = i; k <= j; k++) r[idx[k][1]] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const ra = rank(a), rb = rank(b);
  const n = a.length;
  const mean = (n - 1) / 2;
  let num = 0, da = 0, db = 0;
  for (let i = 0; i < n; i++) {
    num += (ra[i] - mean) * (rb[i] - mean);
    da += (ra[i] - mean) ** 2;
    db += (rb[i] - mean) ** 2;
  }
  return da && db ? num / Math.sqrt(da * db) : 0;
}

/** Sensitivity in dB of noise: 10·log10(NSR), floored so an exact layer reads as -200 dB. */
export const nsrDb = (nsr: number) => (nsr > 0 ? Math.max(-200, 10 * Math.log10(nsr)) : -200);
