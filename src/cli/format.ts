import type { CompareReport } from '../core/compare';
import type { QuantizeResult } from '../core/quant/quantize-model';

const mib = (n: number) => `${(n / 1048576).toFixed(2)} MiB`;
const fmt = (v: number | null, d = 4) => (v === null ? '-' : Number.isFinite(v) ? v.toFixed(d) : String(v));

function fidelityLines(outputs: CompareReport['outputs']): string[] {
  return Object.entries(outputs).map(([name, m]) => `  ${name}: cosine ${fmt(m.cosine, 5)}, SQNR ${fmt(m.sqnr, 1)} dB, max |err| ${fmt(m.maxAbsError)}${m.top1Agreement === null ? '' : `, top-1 agreement ${(m.top1Agreement * 100).toFixed(2)}%`}`);
}

export function formatQuantizeResult(r: QuantizeResult): string {
  return [
    `wrote ${r.output}: ${mib(r.sizeBefore)} -> ${mib(r.sizeAfter)} (${(r.sizeBefore / Math.max(1, r.sizeAfter)).toFixed(2)}x smaller), ${r.quantized.length} nodes quantized, ${r.skipped.length} skipped, ${r.seconds.toFixed(2)} s on ${r.device}`,
    `  quantized weights: ${mib(r.weightBytes.before)} -> ${mib(r.weightBytes.after)}`,
    ...fidelityLines(r.fidelity),
    `  latency: float ${r.latencyMs.reference.toFixed(2)} ms, quantized ${r.latencyMs.candidate.toFixed(2)} ms`,
    ...r.warnings.map((w) => `  warning: ${w}`),
    `  report: ${r.report}`,
  ].join('\n');
}

export function formatCompare(r: CompareReport): string {
  return [
    `${r.samples} samples (${r.data}) on ${r.device}`,
    ...fidelityLines(r.outputs),
    `  latency: reference ${r.latencyMs.reference.toFixed(2)} ms, candidate ${r.latencyMs.candidate.toFixed(2)} ms`,
    `  size: reference ${mib(r.sizeBytes.reference)}, candidate ${mib(r.sizeBytes.candidate)}`,
    ...(r.warning ? [`  warning: ${r.warning}`] : []),
  ].join('\n');
}
