import { profileDelta } from '../../src/core/eval/op-time';
import { isRandomData, METRIC_NAMES, RANDOM_DATA_NOTE } from '../../src/core/eval/metrics';
import type { PruneView, QuantizeView } from '../../src/protocol/results-view';
import { histogramCanvas } from './histogram';
import { el, facts, mib, sortableTable, type Column } from './dom';

/** Per output: the headline (the worst relevant metric) first, then cosine, SQNR and top-1. */
function fidelityRows(f: QuantizeView['fidelity']): Array<[string, string]> {
  return Object.entries(f).map(([name, m]) => {
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

/** A quantize run: sizes, latency, fidelity, what was skipped, and the calibration of each tensor. */
export function quantizeSummary(v: QuantizeView): HTMLElement[] {
  const out: HTMLElement[] = [
    el('h1', { text: `${v.output.split(/[\\/]/).pop()}` }),
    facts([
      ['Mode', v.mode], ['Ran on', v.device],
      ['Size', `${mib(v.sizeBefore)} → ${mib(v.sizeAfter)} (${(v.sizeBefore / Math.max(1, v.sizeAfter)).toFixed(2)}× smaller)`],
      ['Latency', `${v.latencyMs.reference.toFixed(2)} ms → ${v.latencyMs.candidate.toFixed(2)} ms`],
      ...fidelityRows(v.fidelity), ['Nodes quantized', String(v.quantized)], ['Skipped', String(v.skipped.length)],
    ]),
    ...randomDataBanner(v.fidelityData),
  ];
  for (const w of otherWarnings(v.warnings, v.fidelityData)) out.push(el('p', { cls: 'warning', text: w }));
  if (v.placement) out.push(placementView(v.placement));
  if (v.profile) out.push(timeView(v.profile));
  if (v.skipped.length) {
    out.push(sortableTable<{ node: string; reason: string }>('Skipped', [{ head: 'node', value: (r) => r.node }, { head: 'why', value: (r) => r.reason }], v.skipped, { limit: 500 }));
  }
  if (v.calibration) out.push(...calibrationView(v.calibration));
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

/** Where the time goes: per operator type (as onnxruntime ran them), float vs quantized, biggest growth first. */
function timeView(p: NonNullable<QuantizeView['profile']>): HTMLElement {
  type Row = { op: string; referenceMs: number; candidateMs: number };
  const ms = (v: number) => (v ? v.toFixed(2) : '–');
  const cols: Column<Row>[] = [
    { head: 'operator', value: (r) => r.op },
    { head: 'float', value: (r) => r.referenceMs, cell: (r) => ms(r.referenceMs), numeric: true },
    { head: 'INT8', value: (r) => r.candidateMs, cell: (r) => ms(r.candidateMs), numeric: true },
    { head: 'Δ', value: (r) => r.candidateMs - r.referenceMs, cell: (r) => `${r.candidateMs >= r.referenceMs ? '+' : ''}${(r.candidateMs - r.referenceMs).toFixed(2)}`, numeric: true },
  ];
  return sortableTable(`Where time goes (kernel ms per run: float ${p.reference.totalMs.toFixed(2)}, quantized ${p.candidate.totalMs.toFixed(2)})`, cols, profileDelta(p.reference, p.candidate), { limit: 200 });
}

/** Per tensor: range, chosen clip vs MinMax, % clipped; the selected tensor's histogram with both marked. */
export function calibrationView(c: NonNullable<QuantizeView['calibration']>): HTMLElement[] {
  const detail = el('section', { cls: 'details', attrs: { 'aria-live': 'polite' } }, el('p', { cls: 'hint', text: 'Select a tensor to see its histogram: red lines are the chosen clip, grey dashes MinMax.' }));
  type T = (typeof c.tensors)[number];
  const cols: Column<T>[] = [
    { head: 'tensor', value: (t) => t.tensor },
    { head: 'min', value: (t) => t.min, cell: (t) => t.min.toPrecision(4), numeric: true },
    { head: 'max', value: (t) => t.max, cell: (t) => t.max.toPrecision(4), numeric: true },
    { head: 'clip', value: (t) => t.clip[1] - t.clip[0], cell: (t) => `${t.clip[0].toPrecision(3)} … ${t.clip[1].toPrecision(3)}`, numeric: true },
    { head: 'vs MinMax', value: (t) => (t.clip[1] - t.clip[0]) / Math.max(1e-30, t.minmax[1] - t.minmax[0]), cell: (t) => `${((100 * (t.clip[1] - t.clip[0])) / Math.max(1e-30, t.minmax[1] - t.minmax[0])).toFixed(0)}%`, numeric: true },
    { head: 'clipped', value: (t) => t.clippedPercent, cell: (t) => `${t.clippedPercent.toFixed(3)}%`, numeric: true },
  ];
  const own = c.tensors.filter((t) => !t.sharedWith);
  const table = sortableTable('Calibration (' + c.method + ', ' + c.samples + ' samples from ' + c.source + ')', cols, own, {
    initial: 5, descending: true, limit: 2000,
    onSelect: (t) => detail.replaceChildren(el('h2', { text: t.tensor }), histogramCanvas(t), el('p', { cls: 'hint', text: t.fullRange ?? `${t.clippedPercent.toFixed(3)}% of values clipped by ${c.method}` })),
  });
  return [el('h2', { text: 'Calibration results' }), table, detail];
}

/** A prune run's numbers, above its heatmaps. */
export function pruneSummary(v: PruneView): HTMLElement[] {
  return [
    el('h1', { text: `${v.output.split(/[\\/]/).pop()}` }),
    facts([
      ['Method', v.method], ['Removed / zeroed', `${(v.sparsity * 100).toFixed(1)}% of the prunable weights`],
      ['Parameters', `${v.parametersBefore.toLocaleString('en-US')} → ${v.parametersAfter.toLocaleString('en-US')}`],
      ['Size', `${mib(v.sizeBefore)} → ${mib(v.sizeAfter)}`], ['Latency', `${v.latencyMs.reference.toFixed(2)} ms → ${v.latencyMs.candidate.toFixed(2)} ms`],
      ...fidelityRows(v.fidelity), ['Skipped', String(v.skipped.length)],
      ...(v.rounding ? [['Channel counts', v.rounding] as [string, string]] : []),
      ...(v.compensation ? [['Bias compensation', `${v.compensation.layers} layers took the removed channels' mean (${v.compensation.data})`] as [string, string]] : []),
    ]),
    ...randomDataBanner(v.fidelityData),
    ...otherWarnings(v.warnings ?? [], v.fidelityData).map((w) => el('p', { cls: 'warning', text: w })),
  ];
}
