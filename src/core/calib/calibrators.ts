import { entropyRange, GrowingHistogram, mseRange, percentileRange, type ClipRange } from './histogram';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy' | 'mse';

/**
 * How one calibration method turns what the samples showed into a clip range. The static pass captures
 * what `bins` asks for (with 0 bins, only each tensor's extremes, reduced inside onnxruntime) and asks
 * `range` for each tensor.
 */
export interface Calibrator {
  method: CalibrationMethod;
  /** Histogram bins per tensor; 0: the extremes are enough. */
  bins: number;
  range(h: GrowingHistogram): ClipRange;
}

/** The observed range, widened to hold zero (a zero point must be representable). */
export const minmaxRange = (h: GrowingHistogram): ClipRange => ({ lo: Math.min(h.min, 0), hi: Math.max(h.max, 0) });

/** The calibrator for a method; `percentile` and `bins` come from the options where the method uses them. */
export function calibrator(method: CalibrationMethod, o: { percentile: number; bins: number }): Calibrator {
  switch (method) {
    case 'minmax': return { method, bins: 0, range: minmaxRange };
    case 'percentile': return { method, bins: o.bins, range: (h) => percentileRange(h, o.percentile) };
    case 'entropy': return { method, bins: o.bins, range: entropyRange };
    case 'mse': return { method, bins: o.bins, range: mseRange };
    default: throw new Error(`unknown calibration method '${String(method)}'`);
  }
}
