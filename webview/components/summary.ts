import { profileDelta } from '../../src/core/eval/op-time';
import { formatLatency, withinNoise } from '../../src/core/runtime/latency';
import { isRandomData, METRIC_NAMES, nothingComparedText, RANDOM_DATA_NOTE } from '../../src/core/eval/metrics';
import type { PruneView, QuantizeView } from '../../src/protocol/results-view';
import { histogramCanvas, miniHistogram } from './histogram';
import { el, facts, mib, sortableTable, type Column } from './dom';

/** Per output: the headline (the worst relevant metric) first, then cosine, SQNR and top-1. */
function fidelityRows(f: QuantizeView['fidelity']): Array<[string, string]> {
  return Object.entries(f).map(([name, m]) => {
    const nothing = nothingComparedText(m);
    if (nothing) return [name, nothing];
    const h = m.headline && m.headline.metric !== 'cosine' ? `${METRIC_NAMES[m.headline.metric]} ${(m.headline.value * 100).toFixed(1)}% (worst), ` : '';
    return [name, `${h}cosine ${m.cosine.toFixed(5)}, SQNR ${m.sqnr.toFixed(1)} dB${m.top1Agreement === null || m.headline?.metric === 'top1' ? '' : `, top-1 ${(m.top1Agreement * 100).toFixed(1)}%`}`];
  });
}

/** The report's warnings, less the random-data one the banner already says. */
const otherWarnings = (warnings: string[], data: string | undefined) => (isRandomData(data) ? warnings.filter((w) => !w.includes(RANDOM_DATA_NOTE)) : warnings);

/** A banner when fidelity was measured on random inputs: those numbers are not evidence of accuracy. */
export function randomDataBanner(data: string | undefined): HTMLElement[] {
  return isRandomData(data) ? [el('p', { cls: 'warning random-data', text: `Fidelity measured on ${data ?? 'random samples'}: ${RANDOM_DATA_NOTE}. Give calibration data to judge accuracy.` })] : [];
}

/** "a → b" with each side's spread when the runs were kept, and whether the difference is only noise. */
export function latencyFact(v: Pick<QuantizeView, 'latencyMs' | 'latencyStats'>): string {
  const s = v.latencyStats;
  if (!s) return `${v.latencyMs.reference.toFixed(2)} ms → ${v.latencyMs.candidate.toFixed(2)} ms (median)`;
  const ratio = s.candidate.median / Math.max(1e-9, s.reference.median);
  const verdict = withinNoise(s.reference, s.candidate) ? 'within noise' : ratio < 1 ? `${(1 / ratio).toFixed(2)}× faster` : `${ratio.toFixed(2)}× slower`;
  return `${formatLatency(s.reference)} → ${formatLatency(s.candidate)}: ${verdict} (median and quartiles of ${s.reference.runs} runs each)`;
}

/** A quantize run: sizes, latency, fidelity, warnings, placements and what was skipped. */
export function quantizeSummary(v: QuantizeView): HTMLElement[] {
  const out: HTMLElement[] = [
    el('h2', { text: `Quantized: ${v.output.split(/[\\/]/).pop()}`, title: v.output }),
    facts([
      ['Mode', v.mode], ['Ran on', v.device],
      ['Size', `${mib(v.sizeBefore)} → ${mib(v.sizeAfter)} (${(v.sizeBefore / Math.max(1, v.sizeAfter)).toFixed(2)}× smaller)`],
      ['Latency', latencyFact(v)],
      ...fidelityRows(v.fidelity), ['Nodes quantized', String(v.quantized)],
      ...(v.float16Weights ? [['Kept float for speed', `${v.float16Weights} layers, weights stored float16`] as [string, string]] : []), ['Skipped', String(v.skipped.length)],
    ]),
    ...randomDataBanner(v.fidelityData),
  ];
  for (const w of otherWarnings(v.warnings, v.fidelityData)) out.push(el('p', { cls: 'warning', text: w }));
  if (v.placement) out.push(placementView(v.placement));
  if (v.weightFormat) out.push(weightFormatView(v.weightFormat));
  if (v.dynamicConvs) out.push(dynamicConvsView(v.dynamicConvs));
  if (v.skipped.length) {
    out.push(sortableTable<{ node: string; reason: string }>('Skipped', [{ head: 'node', value: (r) => r.node }, { head: 'why', value: (r) => r.reason }], v.skipped, { limit: 500 }));
  }
  return out;
}

/** The placements --objective latency timed beside float (same runs, interleaved) and scored. */
function placementView(p: NonNullable<QuantizeView['placement']>): HTMLElement {
  type C = NonNullable<QuantizeView['placement']>['candidates'][number];
  const cols = [
    { head: 'placement', value: (c: C) => `${c.placement}${c.boundaries ? ` + boundaries${c.heavyOnly ? ' (heavy)' : ''}` : ''}${c.placement === p.chosen && !!c.boundaries === !!p.boundaries && !!c.heavyOnly === !!p.heavyOnly ? ' (written)' : ''}` },
    { head: 'nodes', value: (c: C) => c.nodes },
    { head: 'ms', value: (c: C) => c.latencyMs.toFixed(2) },
    { head: '÷ float', value: (c: C) => `${(c.latencyMs / p.floatMs).toFixed(2)}×` },
    { head: 'fidelity', value: (c: C) => (c.faithful ? `kept (noise ${(c.nsr * 100).toFixed(2)}%)` : `lost (noise ${(c.nsr * 100).toFixed(2)}%)`) },
  ];
  return sortableTable(`Static placements timed beside float (${p.floatMs.toFixed(2)} ms)`, cols, p.candidates, { limit: 10 });
}

/** The forms of the int8 weights --weight-format auto timed beside float (same runs, interleaved) and scored. */
function weightFormatView(f: NonNullable<QuantizeView['weightFormat']>): HTMLElement {
  type C = NonNullable<QuantizeView['weightFormat']>['candidates'][number];
  const cols = [
    { head: 'weights', value: (c: C) => `${c.format}${c.format === f.chosen ? ' (written)' : ''}` },
    { head: 'in memory', value: (c: C) => (c.int8InMemory ? 'int8' : 'float (expanded at load)') },
    { head: 'ms', value: (c: C) => c.latencyMs.toFixed(2) },
    { head: '÷ float', value: (c: C) => `${(c.latencyMs / f.floatMs).toFixed(2)}×` },
    { head: 'fidelity', value: (c: C) => `${c.faithful ? 'kept' : 'lost'} (noise ${(c.nsr * 100).toFixed(3)}%)` },
  ];
  return sortableTable(`Weight formats timed beside float (${f.floatMs.toFixed(2)} ms)`, cols, f.candidates, { limit: 10 });
}

/** Dynamic INT8 timed with its convs as ConvInteger and as float, beside float (same runs, interleaved). */
function dynamicConvsView(d: NonNullable<QuantizeView['dynamicConvs']>): HTMLElement {
  type C = NonNullable<QuantizeView['dynamicConvs']>['candidates'][number];
  const label: Record<string, string> = { all: 'every conv dynamic', dense: 'grouped convs float', none: 'convs float' };
  const cols = [
    { head: 'convs', value: (c: C) => `${label[c.convs] ?? c.convs}${c.convs === d.chosen ? ' (written)' : ''}` },
    { head: 'nodes', value: (c: C) => c.nodes },
    { head: 'ms', value: (c: C) => c.latencyMs.toFixed(2) },
    { head: '÷ float', value: (c: C) => `${(c.latencyMs / d.floatMs).toFixed(2)}×` },
    { head: 'noise', value: (c: C) => `${(c.nsr * 100).toFixed(3)}%` },
  ];
  return sortableTable(`Dynamic convs timed beside float (${d.floatMs.toFixed(2)} ms)`, cols, d.candidates, { limit: 10 });
}

/**
 * Where the time goes: the latency with its spread, then per operator type, float vs quantized, then the
 * QuantizeLinear/DequantizeLinear onnxruntime left unfused, by name (each names the tensor it converts).
 */
export function timeView(v: QuantizeView): HTMLElement[] {
  const out: HTMLElement[] = [facts([['Latency', latencyFact(v)]])];
  if (v.profile) out.push(opTimeTable(v.profile));
  const q = v.profile?.candidate.unfusedQdq;
  if (q?.count) {
    type Row = { node: string; op: string; ms: number };
    const cols: Column<Row>[] = [
      { head: 'node', value: (r) => r.node, cls: 'name' },
      { head: 'op', value: (r) => r.op.replace('Linear', ''), cls: 'narrow-hide' },
      { head: 'ms', value: (r) => r.ms, cell: (r) => r.ms.toFixed(3), numeric: true },
    ];
    const shown = q.slowest.length < q.count ? `, the slowest ${q.slowest.length}` : '';
    out.push(sortableTable(`Q/DQ onnxruntime left unfused (${q.count}, ${q.ms.toFixed(2)} ms per run${shown})`, cols, q.slowest, { limit: 50 }));
  }
  return out;
}

/** Per operator type (as onnxruntime ran them), float vs quantized, biggest growth first, with a bar each. */
function opTimeTable(p: NonNullable<QuantizeView['profile']>): HTMLElement {
  const top = Math.max(1e-9, ...p.reference.byOpType.map((o) => o.ms), ...p.candidate.byOpType.map((o) => o.ms));
  type Row = { op: string; referenceMs: number; candidateMs: number };
  const ms = (v: number) => (v ? v.toFixed(2) : '–');
  const cols: Column<Row>[] = [
    { head: 'operator', value: (r) => r.op, cls: 'name' },
    { head: 'float', value: (r) => r.referenceMs, cell: (r) => ms(r.referenceMs), numeric: true },
    { head: 'INT8', value: (r) => r.candidateMs, cell: (r) => ms(r.candidateMs), numeric: true },
    { head: 'Δ', value: (r) => r.candidateMs - r.referenceMs, cell: (r) => `${r.candidateMs >= r.referenceMs ? '+' : ''}${(r.candidateMs - r.referenceMs).toFixed(2)}`, numeric: true, cls: 'narrow-hide' },
    { head: 'float vs INT8', value: (r) => Math.max(r.referenceMs, r.candidateMs), cell: (r) => timeBars(r.referenceMs, r.candidateMs, top) },
  ];
  return sortableTable(`Where time goes (kernel ms per run: float ${p.reference.totalMs.toFixed(2)}, quantized ${p.candidate.totalMs.toFixed(2)})`, cols, profileDelta(p.reference, p.candidate), { limit: 200 });
}

/** Two bars on one scale: the op type's float time over its quantized time. */
function timeBars(ref: number, cand: number, top: number): HTMLElement {
  const bar = (v: number, cls: string, label: string) => {
    const b = el('span', { cls: `tbar ${cls}`, title: `${label} ${v.toFixed(2)} ms` });
    b.style.width = `${((100 * v) / top).toFixed(1)}%`;
    return b;
  };
  return el('span', { cls: 'tbars' }, bar(ref, 'ref', 'float'), bar(cand, 'cand', 'INT8'));
}

/** Per tensor: range, chosen clip vs MinMax, % clipped; the selected tensor's histogram with both marked. */
export function calibrationView(c: NonNullable<QuantizeView['calibration']>): HTMLElement[] {
  const detail = el('section', { cls: 'details', attrs: { 'aria-live': 'polite' } }, el('p', { cls: 'hint', text: 'Select a tensor to see its histogram: red lines are the chosen clip, grey dashes MinMax.' }));
  type T = (typeof c.tensors)[number];
  const cols: Column<T>[] = [
    { head: 'tensor', value: (t) => t.tensor, cls: 'name' },
    // The observed range: in a narrow panel it gives way (the histogram's detail repeats it).
    { head: 'range', value: (t) => t.max - t.min, cell: (t) => `${t.min.toPrecision(3)} … ${t.max.toPrecision(3)}`, numeric: true, cls: 'narrow-hide' },
    { head: 'clip (of MinMax)', value: (t) => (t.clip[1] - t.clip[0]) / Math.max(1e-30, t.minmax[1] - t.minmax[0]), cell: (t) => `${t.clip[0].toPrecision(3)} … ${t.clip[1].toPrecision(3)} (${((100 * (t.clip[1] - t.clip[0])) / Math.max(1e-30, t.minmax[1] - t.minmax[0])).toFixed(0)}%)`, numeric: true },
    { head: 'clipped', value: (t) => t.clippedPercent, cell: (t) => `${t.clippedPercent.toFixed(3)}%`, numeric: true },
    { head: 'histogram', value: (t) => t.clippedPercent, cell: (t) => miniHistogram(t) },
  ];
  const own = c.tensors.filter((t) => !t.sharedWith);
  const table = sortableTable('Calibration (' + c.method + ', ' + c.samples + ' samples from ' + c.source + ')', cols, own, {
    initial: 3, descending: true, limit: 2000,
    onSelect: (t) => detail.replaceChildren(el('h2', { text: t.tensor }), histogramCanvas(t), el('p', { cls: 'hint', text: t.fullRange ?? `${t.clippedPercent.toFixed(3)}% of values clipped by ${c.method}` })),
  });
  table.classList.add('calibration');
  // Say when the histograms came from strided picks (--histogram-values), so no one reads them as every value.
  const picked = c.histogramValues ? ` Binned from about ${c.histogramValues} values per tensor per sample, with the tails and extremes exact.` : '';
  // How the calibration images were prepared: wrong mean/std or channel order would mislead every range.
  const images = c.images ? [el('p', { cls: 'hint', text: `Calibrated on ${c.images}.` })] : [];
  return [...images, el('p', { cls: 'hint', text: `Histograms: log counts; red lines are the chosen clip, grey dashes the MinMax range. Select a row for a larger one.${picked}` }), table, detail];
}

/** A prune run's numbers, above its heatmaps. */
export function pruneSummary(v: PruneView): HTMLElement[] {
  return [
    el('h2', { text: `Pruned: ${v.output.split(/[\\/]/).pop()}`, title: v.output }),
    facts([
      ['Method', v.method], ['Removed / zeroed', `${(v.sparsity * 100).toFixed(1)}% of the prunable weights`],
      ['Parameters', `${v.parametersBefore.toLocaleString('en-US')} → ${v.parametersAfter.toLocaleString('en-US')}`],
      ['Size', `${mib(v.sizeBefore)} → ${mib(v.sizeAfter)}`], ['Latency', latencyFact(v)],
      ...fidelityRows(v.fidelity), ['Skipped', String(v.skipped.length)],
      ...(v.rounding ? [['Channel counts', v.rounding] as [string, string]] : []),
      ...(v.compensation ? [['Bias compensation', `${v.compensation.layers} layers took the removed channels' mean (${v.compensation.data})`] as [string, string]] : []),
    ]),
    ...randomDataBanner(v.fidelityData),
    ...otherWarnings(v.warnings ?? [], v.fidelityData).map((w) => el('p', { cls: 'warning', text: w })),
  ];
}
