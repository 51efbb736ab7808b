import type { PipelineCompareReport } from '../core/pipeline/compare';
import type { PipelineQuantizeResult } from '../core/jobs/quantize-pipeline';
import type { PipelineSensitivityReport } from '../core/jobs/pipeline-sensitivity';
import type { CompareReport } from '../core/compare';
import { isRandomData, METRIC_NAMES, nothingComparedText, RANDOM_DATA_NOTE } from '../core/eval/metrics';
import type { PruneResult } from '../core/prune/prune-model';
import type { QuantizeResult } from '../core/jobs/quantize-model';
import type { SensitivityReport } from '../core/sensitivity/analyze';

const mib = (n: number) => `${(n / 1048576).toFixed(2)} MiB`;
const fmt = (v: number | null, d = 4) => (v === null ? '-' : Number.isFinite(v) ? v.toFixed(d) : String(v));
/** An error's size: small outputs (a random-init classifier's logits) keep their digits instead of 0.0000. */
const magnitude = (v: number) => (v > 0 && v < 1e-3 ? v.toExponential(2) : fmt(v));

/** One line per output: the headline (worst relevant metric) first, then the rest; random data says so. */
export function fidelityLines(outputs: CompareReport['outputs'], data: string | undefined, chosen?: string): string[] {
  const pct = (v: number) => `${(v * 100).toFixed(2)}%`;
  return Object.entries(outputs).map(([name, m]) => {
    const h = m.headline;
    const head = h && h.metric !== 'cosine' ? `${METRIC_NAMES[h.metric]} ${pct(h.value)} (${chosen === h.metric ? 'chosen' : 'worst'}), ` : '';
    const extra = [
      m.top1Agreement === null || h?.metric === 'top1' ? '' : `top-1 agreement ${pct(m.top1Agreement)}`,
      m.sequenceAgreement === undefined || h?.metric === 'sequence' ? '' : `sequence agreement ${pct(m.sequenceAgreement)}`,
      m.ctcAgreement === undefined || h?.metric === 'ctc' ? '' : `CTC text agreement ${pct(m.ctcAgreement)}`,
      m.iou === undefined || h?.metric === 'iou' ? '' : `map IoU ${pct(m.iou)}`,
      m.sizeAgreement === undefined || h?.metric === 'size' ? '' : `output size agreement ${pct(m.sizeAgreement)}`,
      m.nonFinite ? `NaN/Inf: ${m.nonFinite.both} values in both (left out)${m.nonFinite.oneSide ? `, ${m.nonFinite.oneSide} in one only` : ''}` : '',
    ].filter(Boolean);
    const tag = isRandomData(data) ? ` [${RANDOM_DATA_NOTE}]` : '';
    const nothing = nothingComparedText(m);
    if (nothing) return `  ${name}: ${nothing}${tag}`;
    return `  ${name}: ${head}cosine ${fmt(m.cosine, 5)}, SQNR ${fmt(m.sqnr, 1)} dB, max |err| ${magnitude(m.maxAbsError)}${extra.length ? `, ${extra.join(', ')}` : ''}${tag}`;
  });
}

export function formatQuantizeResult(r: QuantizeResult | PipelineQuantizeResult): string {
  if ('kind' in r) return formatPipelineQuantize(r);
  return [
    `wrote ${r.output}: ${mib(r.sizeBefore)} -> ${mib(r.sizeAfter)} (${(r.sizeBefore / Math.max(1, r.sizeAfter)).toFixed(2)}x smaller), ${r.quantized.length} nodes quantized${r.float16Weights ? ` (${r.float16Weights.length} more kept float for speed, weights stored float16)` : ''}, ${r.skipped.length} skipped, ${r.seconds.toFixed(2)} s on ${r.device}`,
    `  quantized weights: ${mib(r.weightBytes.before)} -> ${mib(r.weightBytes.after)}`,
    ...(r.images ? [`  calibrated on ${r.images}`] : []),
    ...fidelityLines(r.fidelity, r.fidelityData),
    `  latency: float ${r.latencyMs.reference.toFixed(2)} ms, quantized ${r.latencyMs.candidate.toFixed(2)} ms`,
    ...(r.placement ? [`  placement: --static-ops ${r.placement.chosen}${r.placement.boundaries ? ` with boundaries (${r.placement.heavyOnly ? 'heavy ' : ''}layers before float ops quantized, their outputs dequantized)` : ''} (${r.placement.why})`] : []),
    ...(r.dynamicConvs ? [`  dynamic convs: ${({ all: 'every conv dynamic', dense: 'grouped (depthwise) convs kept float for speed', none: 'kept float for speed' } as const)[r.dynamicConvs.chosen]} (${r.dynamicConvs.why})`] : []),
    ...(r.weightFormat ? [`  weight format: ${r.weightFormat.chosen}${r.weightFormat.candidates.find((c) => c.format === r.weightFormat!.chosen)?.int8InMemory ? ' (int8 in memory)' : ' (int8 in the file, float once loaded)'} (${r.weightFormat.why})`] : []),
    ...r.warnings.map((w) => `  warning: ${w}`),
    `  report: ${r.report}`,
  ].join('\n');
}

/** Which shapes ran, and the sizes chosen for dynamic dimensions (and how to choose others). */
export function inputLines(shapes: Record<string, number[]>, chosen: string[]): string[] {
  const list = Object.entries(shapes).map(([k, d]) => `${k} [${d.join(', ')}]`).join(', ');
  return [`  inputs: ${list}${chosen.length ? ` (dynamic: ${chosen.join('; ')}; --input-shape NAME=DxD... to choose)` : ''}`];
}

export function formatCompare(r: CompareReport | PipelineCompareReport): string {
  if ('kind' in r) return formatPipelineCompare(r);
  return [
    `${r.samples} samples (${r.data}) on ${r.device}`,
    ...inputLines(r.inputShapes, r.chosenDims),
    ...(r.images ? [`  ${r.images}`] : []),
    ...fidelityLines(r.outputs, r.data, r.metric),
    `  latency: reference ${r.latencyMs.reference.toFixed(2)} ms, candidate ${r.latencyMs.candidate.toFixed(2)} ms`,
    `  size: reference ${mib(r.sizeBytes.reference)}, candidate ${mib(r.sizeBytes.candidate)}`,
    ...(r.warning ? [`  warning: ${r.warning}`] : []),
  ].join('\n');
}

export function formatSensitivity(r: SensitivityReport, file: string): string {
  const top = [...r.layers].sort((a, b) => a.rank - b.rank).slice(0, 15);
  const width = Math.max(...top.map((l) => l.name.length), 10);
  const opWidth = Math.max(...top.map((l) => l.opType.length), 10);
  return [
    `${r.layers.length} layers, ${r.method} method, ${'pipeline' in r ? (r as PipelineSensitivityReport).pipeline.components.filter((c) => c.layers).map((c) => `${c.role} ${c.scheme}`).join(', ') : `${r.scheme.mode} ${r.scheme.bits}-bit`}, ${r.samples} samples (${r.data}) on ${r.device}, ${r.seconds.toFixed(2)} s`,
    `  most sensitive first (output noise-to-signal, dB${r.method === 'local' ? '; weight/activation share' : '; reverse = all others quantized'}):`,
    ...top.map((l) => `  ${String(l.rank).padStart(3)}. ${l.name.padEnd(width)} ${l.opType.padEnd(opWidth)} ${l.sensitivityDb.toFixed(1).padStart(7)} dB${l.split ? `  w ${(l.split.weight * 100).toFixed(0)}% a ${(l.split.activation * 100).toFixed(0)}%` : ''}${l.reverse !== undefined ? `  reverse ${(10 * Math.log10(Math.max(l.reverse, 1e-20))).toFixed(1)} dB` : ''}`),
    ...windowLine(r),
    ...(r.warning ? [`  warning: ${r.warning}`] : []),
    `  report: ${file}`,
  ].join('\n');
}

/** Local method: how many layers were measured on a window of their maps (see sensitivity/crop.ts). */
function windowLine(r: SensitivityReport): string[] {
  const windowed = r.layers.filter((l) => l.window).length;
  return windowed ? [`  ${windowed} of ${r.layers.length} layers measured on a centred window of their maps, beside a float copy on it (each layer's \`window\` in the report; --whole-maps: the whole maps)`] : [];
}

export function formatPruneResult(r: PruneResult): string {
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  const lines = [
    `${r.output}: ${r.method} pruning, ${pct(r.sparsity)} of the prunable weights ${r.method === 'structured' ? 'removed' : 'zeroed'}`,
    `  parameters ${r.parametersBefore.toLocaleString('en-US')} -> ${r.parametersAfter.toLocaleString('en-US')}, size ${mib(r.sizeBefore)} -> ${mib(r.sizeAfter)}`,
    ...fidelityLines(r.fidelity, r.fidelityData),
  ];
  lines.push(`  latency ${r.latencyMs.reference.toFixed(2)} ms -> ${r.latencyMs.candidate.toFixed(2)} ms on ${r.device}`);
  for (const g of r.groups ?? []) {
    if (g.skipped && g.sets < 2) continue;
    const names = g.layers.length > 3 ? `${g.layers.slice(0, 3).join(', ')} and ${g.layers.length - 3} more` : g.layers.join(', ') || g.tensors[0];
    lines.push(`  ${g.skipped || !g.removed ? 'kept ' : 'pruned'} ${names}: ${g.removed}/${g.sets} ${g.width > 1 ? `groups of ${g.width}` : 'channels'}${g.skipped ? ` (${g.skipped})` : g.roundedTo ? ` (rounded to ${g.roundedTo})` : ''}`);
  }
  if (r.compensation) lines.push(`  bias compensation: ${r.compensation.layers} layers took the removed channels' mean (from ${r.compensation.data}${r.compensation.data.startsWith('random') ? '; --calibration DIR for real data' : ''}; --no-compensate turns it off)`);
  if (r.rounding) lines.push(`  rounding: ${r.rounding} (--round-to 1 keeps the exact share)`);
  if (r.skipped.length) lines.push(`  skipped: ${r.skipped.length} layers (see the report)`);
  for (const n of r.notes ?? []) lines.push(`  note: ${n}`);
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  lines.push(`  report: ${r.report}${r.masks ? `; masks: ${r.masks}` : ''}`);
  return lines.join('\n');
}

/** Two pipelines: what they generated, then latency and sizes per component. */
export function formatPipelineCompare(r: PipelineCompareReport): string {
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  const diverged = r.tokens.firstDivergence.filter((d): d is number => d !== null);
  return [
    `${r.samples} samples (${r.data}), greedy generation on ${r.device}, ${r.layout} layout`,
    `  tokens: ${pct(r.tokens.agreement)} of ${r.tokens.generated} reference tokens reproduced, ${pct(r.tokens.exactMatch)} of answers identical${diverged.length ? `, first divergence at token ${Math.min(...diverged)} (earliest)` : ''}`,
    `  first-token logits cosine ${r.logitsCosine.toFixed(5)}`,
    `  latency: prefill ${r.latencyMs.reference.prefill.toFixed(2)} -> ${r.latencyMs.candidate.prefill.toFixed(2)} ms, per token ${r.latencyMs.reference.perToken.toFixed(2)} -> ${r.latencyMs.candidate.perToken.toFixed(2)} ms`,
    ...Object.entries(r.sizes).map(([role, s]) => `  ${role}: ${mib(s!.reference)} -> ${mib(s!.candidate)}`),
    // What was generated, in words (the pipeline has a tokenizer.json): the first answers that differ, else the first few.
    ...answerLines(r.answers),
  ].join('\n');
}

function answerLines(answers: PipelineCompareReport['answers']): string[] {
  const texts = answers.map((a, i) => ({ ...a, i })).filter((a) => a.referenceText !== undefined);
  const differ = texts.filter((a) => a.referenceText !== a.candidateText);
  return (differ.length ? differ : texts).slice(0, 3).map((a) => `  sample ${a.i}: ${JSON.stringify(a.referenceText)}${a.referenceText === a.candidateText ? ' (the same)' : ` -> ${JSON.stringify(a.candidateText)}`}`);
}

/** A quantized pipeline: each component's scheme and size, then how its generation compares. */
export function formatPipelineQuantize(r: PipelineQuantizeResult): string {
  const scheme = (c: PipelineQuantizeResult['components'][number]) => (c.kept ? c.kept : c.recipe === 'float' ? 'kept float' : `${c.recipe.mode}${c.recipe.bits ? ` ${c.recipe.bits}-bit` : c.recipe.mode === 'static' ? ' 8-bit' : ''}${c.recipe.algorithm ? ` ${c.recipe.algorithm}` : ''}`);
  return [
    `wrote ${r.output} (${r.layout} layout), ${r.seconds.toFixed(1)} s; calibrated by generation (${r.decoderSteps} decoder steps recorded)`,
    ...r.components.map((c) => `  ${c.role.padEnd(9)} ${c.file}: ${scheme(c)}${c.result ? `, ${mib(c.result.sizeBefore)} -> ${mib(c.result.sizeAfter)}, ${c.result.quantized.length} nodes` : ''}`),
    formatPipelineCompare(r.judged),
    ...(r.warning ? [`  warning: ${r.warning}`] : []),
  ].join('\n');
}
