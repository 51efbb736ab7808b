// What the quantize tabs show, from the report the engine wrote (no `vscode`: tested in plain Node).
import type { QuantizeReport } from '../../../core/jobs/quantize-model';
import type { QuantizeView } from './protocol';

export function quantizeView(report: QuantizeReport, sensitivityReport?: string): QuantizeView {
  const o = report.options;
  return {
    input: report.input, output: report.output, mode: `${o.mode} ${o.bits}-bit${o.mode === 'weight' && o.bits === 4 ? ` (${o.algorithm})` : ''}`,
    device: report.device + (report.fallbackReason ? ` (${report.fallbackReason})` : ''), sizeBefore: report.sizeBefore, sizeAfter: report.sizeAfter,
    latencyMs: report.latencyMs, ...(report.latencyStats ? { latencyStats: report.latencyStats } : {}),
    fidelity: report.fidelity, fidelityData: report.fidelityData, quantized: report.quantized.length, ...(report.float16Weights?.length ? { float16Weights: report.float16Weights.length } : {}), skipped: report.skipped, warnings: report.warnings,
    ...(report.calibration ? { calibration: { method: report.calibration.method, source: report.calibration.source, samples: report.calibration.samples, ...(report.calibration.histogramValues ? { histogramValues: report.calibration.histogramValues } : {}), ...(report.images ? { images: report.images } : {}), tensors: report.calibration.tensors } } : {}),
    ...(report.profile ? { profile: report.profile } : {}),
    ...(report.placement ? { placement: { chosen: report.placement.chosen, boundaries: report.placement.boundaries, heavyOnly: report.placement.heavyOnly, floatMs: report.placement.floatMs, candidates: report.placement.candidates } } : {}),
    ...(report.weightFormat ? { weightFormat: { chosen: report.weightFormat.chosen, floatMs: report.weightFormat.floatMs, candidates: report.weightFormat.candidates } } : {}),
    ...(report.dynamicConvs ? { dynamicConvs: { chosen: report.dynamicConvs.chosen, floatMs: report.dynamicConvs.floatMs, candidates: report.dynamicConvs.candidates } } : {}),
    ...(sensitivityReport ? { sensitivityReport } : {}),
  };
}
