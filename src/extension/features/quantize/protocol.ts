// The quantize feature's view model and messages (summary, calibration and where-time-goes tabs). Shared by
// the extension and the results page: no `vscode` import here.
import type { FidelityMetrics } from '../../../core/eval/metrics';
import type { OpTimeProfile } from '../../../core/eval/op-time';
import type { LatencyStats } from '../../../core/runtime/latency';
import type { TensorCalibration } from '../../../core/quant/static/calibrate';

/** One calibrated tensor as the calibration tab shows it (the report's own record, minus its scale). */
export type CalibrationTensorView = Omit<TensorCalibration, 'scale' | 'zeroPoint'>;

export interface QuantizeView {
  input: string;
  output: string;
  mode: string;
  device: string;
  sizeBefore: number;
  sizeAfter: number;
  latencyMs: { reference: number; candidate: number };
  /** Each model's runs: median and quartiles, so the page can say when a difference is within noise. */
  latencyStats?: { reference: LatencyStats; candidate: LatencyStats };
  fidelity: Record<string, FidelityMetrics>;
  /** The samples fidelity was measured on (`random:N`: not the user's data, and the view says so). */
  fidelityData: string;
  quantized: number;
  /** Layers kept float for speed with their weights stored float16. */
  float16Weights?: number;
  skipped: Array<{ node: string; reason: string }>;
  warnings: string[];
  /** histogramValues: histograms binned a strided pick of about this many values per tensor per sample, tails exact. */
  calibration?: { method: string; source: string; samples: number; histogramValues?: number; images?: string; tensors: CalibrationTensorView[] };
  /** Where the time goes: kernel ms per run by operator type, float and quantized (onnxruntime's profiler). */
  profile?: { reference: OpTimeProfile; candidate: OpTimeProfile };
  /** --objective latency: each static placement timed beside float and scored, and the one written. */
  placement?: { chosen: string; boundaries?: boolean; heavyOnly?: boolean; floatMs: number; candidates: Array<{ placement: string; boundaries?: boolean; heavyOnly?: boolean; nodes: number; latencyMs: number; drop: number; nsr: number; faithful: boolean }> };
  /** --mode weight --weight-format auto: each form of the int8 weights timed beside float and scored, and the one written. */
  weightFormat?: { chosen: string; floatMs: number; candidates: Array<{ format: string; int8InMemory: boolean; latencyMs: number; nsr: number; faithful: boolean }> };
  /** --mode dynamic under --objective latency: the model timed with its convs dynamic (ConvInteger) and float, and the one written. */
  dynamicConvs?: { chosen: string; floatMs: number; candidates: Array<{ convs: string; nodes: number; latencyMs: number; nsr: number }> };
  sensitivityReport?: string;
}

/** From the page: open the sensitivity tree at a layer ('' for the top). */
export type QuantizeFromView = { type: 'openLayer'; layer: string };

export function isQuantizeMessage(m: Record<string, unknown>): m is QuantizeFromView {
  return m.type === 'openLayer' && typeof m.layer === 'string' && m.layer.length < 4096;
}
