import type * as ort from 'onnxruntime-node';
import { halfToFloat } from './onnx/half';

/** A tensor's values as numbers: float16 bits decoded, 64-bit integers converted. */
export function tensorValues(t: ort.Tensor): ArrayLike<number> {
  if (t.type === 'float16') return Float32Array.from(t.data as Uint16Array, halfToFloat);
  if (t.type === 'int64' || t.type === 'uint64') return Float64Array.from(t.data as BigInt64Array, Number);
  return t.data as ArrayLike<number>;
}

/** Running fidelity of a candidate output against a reference, accumulated sample by sample. */
export class FidelityAccumulator {
  private dot = 0;
  private refSq = 0;
  private candSq = 0;
  private errSq = 0;
  private maxErr = 0;
  private argmaxSame = 0;
  private argmaxTotal = 0;

  add(ref: ort.Tensor, cand: ort.Tensor): void {
    const a = tensorValues(ref);
    const b = tensorValues(cand);
    if (a.length !== b.length) throw new Error(`output shapes differ: [${ref.dims}] vs [${cand.dims}]`);
    for (let i = 0; i < a.length; i++) {
      const x = Number(a[i]), y = Number(b[i]);
      this.dot += x * y;
      this.refSq += x * x;
      this.candSq += y * y;
      const e = x - y;
      this.errSq += e * e;
      if (Math.abs(e) > this.maxErr) this.maxErr = Math.abs(e);
    }
    // Top-1 agreement over the last axis (class or token logits), when that axis has choices.
    const last = ref.dims[ref.dims.length - 1] ?? 1;
    if (ref.dims.length >= 1 && last > 1 && ref.type !== 'bool' && ref.type !== 'string') {
      for (let r = 0; r < a.length / last; r++) {
        if (argmax(a, r * last, last) === argmax(b, r * last, last)) this.argmaxSame++;
        this.argmaxTotal++;
      }
    }
  }

  result(): { cosine: number; sqnr: number; maxAbsError: number; top1Agreement: number | null } {
    const denom = Math.sqrt(this.refSq) * Math.sqrt(this.candSq);
    return {
      cosine: denom === 0 ? (this.refSq === this.candSq ? 1 : 0) : this.dot / denom,
      sqnr: this.errSq === 0 ? Infinity : 10 * Math.log10(this.refSq / this.errSq),
      maxAbsError: this.maxErr,
      top1Agreement: this.argmaxTotal ? this.argmaxSame / this.argmaxTotal : null,
    };
  }
}

function argmax(d: ArrayLike<number>, start: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (d[start + i] > d[start + best]) best = i;
  return best;
}
