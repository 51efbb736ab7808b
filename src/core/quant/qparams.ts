import { quantRange, type QuantType } from './qtypes';
import { roundHalfEven } from './rounding';

export interface QParams {
  scale: number;
  zeroPoint: number;
}

/**
 * Scale and zero point for a float range, as onnxruntime computes them: the range is widened to
 * include 0 (so 0 is exact), symmetric ranges are centred on 0, scales are float32. A degenerate
 * range gets scale 1 so dequantization stays finite.
 */
export function computeQParams(min: number, max: number, qtype: QuantType, symmetric: boolean): QParams {
  const { qmin, qmax } = quantRange(qtype, symmetric);
  let rmin = Math.min(min, 0);
  let rmax = Math.max(max, 0);
  if (!Number.isFinite(rmin) || !Number.isFinite(rmax)) throw new Error(`cannot quantize a range containing ${rmin}..${rmax}`);
  if (symmetric) {
    const absmax = Math.max(-rmin, rmax);
    rmin = -absmax;
    rmax = absmax;
  }
  let scale = Math.fround((rmax - rmin) / (qmax - qmin));
  if (!(scale > 0) || !Number.isFinite(scale)) return { scale: 1, zeroPoint: symmetric ? zeroForSymmetric(qtype) : Math.max(qmin, Math.min(qmax, 0)) };
  if (scale < 1e-30) scale = 1e-30;
  const zeroPoint = symmetric ? zeroForSymmetric(qtype) : Math.max(qmin, Math.min(qmax, roundHalfEven(qmin - rmin / scale)));
  return { scale, zeroPoint };
}

/** Symmetric zero point: 0 for signed types, the middle for unsigned (128, 8). */
function zeroForSymmetric(qtype: QuantType): number {
  return qtype === 'uint8' ? 128 : qtype === 'uint4' ? 8 : 0;
}
