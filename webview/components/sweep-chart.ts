import uPlot from 'uplot';
import type { SweepPoint } from '../../src/core/prune/sweep';
import type { SweepView } from '../../src/protocol/results-view';
import { progressRing, toolkitButton } from '../ui/toolkit';
import { el, mib, themeColor } from './dom';
import { randomDataBanner } from './summary';

interface Panel {
  label: string;
  color: string;
  value: (p: SweepPoint) => number;
  base?: (v: SweepView) => number | undefined;
  /** The y range from the data: size starts at 0, fidelity is capped at 1. */
  range: (lo: number, hi: number) => [number, number];
  fmt: (v: number) => string;
  spread?: (p: SweepPoint) => [number, number] | undefined;
}

const SYNC = 'quantlens-sweep';

/**
 * Sparsity against fidelity, size and latency as three small charts sharing the sparsity axis (uPlot, one
 * cursor for all three), the float model at sparsity 0 where it was measured, latency with the spread of
 * its runs, the kept point ringed. It grows as points arrive. Clicking a point (or its row's button, for
 * the keyboard) keeps that model.
 */
export class SweepChart {
  readonly element: HTMLElement;
  private readonly plots: uPlot[] = [];
  private readonly charts = el('div', { cls: 'chart', attrs: { role: 'img', 'aria-label': 'sweep: sparsity against fidelity, size and latency' } });
  private readonly readout = el('p', { cls: 'readout', attrs: { 'aria-live': 'polite' } });
  private readonly table = el('table', { cls: 'points' });
  private readonly status = el('div', { cls: 'hint sweep-status' });
  private readonly panels: Panel[];
  /** What the charts show, index by index: undefined is the float model at sparsity 0. */
  private pts: Array<SweepPoint | undefined> = [];

  constructor(private readonly view: SweepView, private readonly onKeep: (p: SweepPoint) => void) {
    const metricName = view.points.some((p) => p.metric !== undefined) ? 'your metric' : 'cosine to float';
    this.panels = [
      {
        label: metricName, color: themeColor('--vscode-charts-blue', '#3794ff'), value: (p) => p.metric ?? p.cosine, base: (v) => v.baseline?.metric ?? (v.baseline ? 1 : undefined),
        range: (lo, hi) => [Math.max(0, Math.min(lo, hi - 0.01) - 0.1 * (hi - lo || 0.1)), Math.min(metricName === 'cosine to float' ? 1 : Infinity, hi + 0.05 * (hi - lo || 0.1))], fmt: (v) => v.toFixed(4),
      },
      { label: 'size (MiB)', color: themeColor('--vscode-charts-green', '#89d185'), value: (p) => p.sizeBytes / 1048576, base: (v) => (v.baseline ? v.baseline.sizeBytes / 1048576 : undefined), range: (_lo, hi) => [0, hi * 1.1 || 1], fmt: (v) => `${v.toFixed(2)} MiB` },
      {
        label: 'latency (ms, median; bars: quartiles)', color: themeColor('--vscode-charts-orange', '#d18616'), value: (p) => p.latencyMs, base: (v) => v.baseline?.latencyMs,
        range: (_lo, hi) => [0, hi * 1.15 || 1], fmt: (v) => `${v.toFixed(2)} ms`, spread: (p) => p.latencyIqr,
      },
    ];
    this.element = el('div', { cls: 'sweep' }, ...randomDataBanner(view.fidelityData), this.status, this.readout, this.charts, this.table);
    this.redraw();
    // The charts follow the panel's width (a narrower window, the panel dragged).
    new ResizeObserver(() => {
      const w = this.width();
      for (const p of this.plots) if (Math.abs(p.width - w) > 4) p.setSize({ width: w, height: p.height });
    }).observe(this.charts);
  }

  private width(): number {
    const w = this.charts.isConnected ? this.charts.clientWidth : document.body.clientWidth - 40;
    return Math.max(240, Math.min(820, w || 600));
  }

  /** Points as [float baseline at 0 when known, ...measured]: x and one y per panel. */
  private series(): { xs: number[]; ys: number[][]; pts: Array<SweepPoint | undefined> } {
    const pts: Array<SweepPoint | undefined> = [];
    const v = this.view;
    if (v.baseline && !v.points.some((p) => p.sparsity === 0)) pts.push(undefined);
    pts.push(...v.points);
    const xs = pts.map((p) => p?.sparsity ?? 0);
    const ys = this.panels.map((panel) => pts.map((p) => (p ? panel.value(p) : panel.base?.(v) ?? NaN)));
    return { xs, ys, pts };
  }

  redraw(): void {
    const v = this.view;
    const { xs, ys, pts } = this.series();
    this.pts = pts;
    const running = !v.done;
    this.status.replaceChildren(
      ...(running ? [progressRing('running…')] : []),
      el('span', { text: `${v.method} pruning: ${v.points.length} point${v.points.length === 1 ? '' : 's'}${v.baseline ? ', the float model at sparsity 0' : ''}. Click a point to keep that model.` }),
    );
    const width = this.width();
    if (!this.plots.length) {
      this.panels.forEach((panel, k) => {
        const box = el('div', { cls: 'small-multiple', attrs: { 'data-color': panel.color } });
        this.charts.append(box);
        this.plots.push(this.makePlot(panel, k, width, box, [xs, ys[k]]));
      });
    } else this.plots.forEach((p, k) => p.setData([xs, ys[k]]));
    this.showReadout(undefined);
    this.drawTable();
  }

  private makePlot(panel: Panel, k: number, width: number, box: HTMLElement, data: uPlot.AlignedData): uPlot {
    const fg = themeColor('--vscode-foreground', '#ccc');
    const grid = themeColor('--vscode-panel-border', '#444');
    const last = k === this.panels.length - 1;
    const kept = themeColor('--vscode-charts-red', '#f14c4c');
    const plot = new uPlot({
      width, height: last ? 150 : 125,
      title: panel.label,
      legend: { show: false },
      cursor: { sync: { key: SYNC, setSeries: false }, drag: { x: false, y: false }, points: { size: 10 } },
      scales: { x: { time: false, range: [0, 1] }, y: { range: (_u, lo, hi) => panel.range(lo, hi) } },
      series: [{ label: 'sparsity' }, { label: panel.label, stroke: panel.color, width: 2, points: { size: 7, fill: panel.color } }],
      axes: [
        { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, ...(last ? { label: 'sparsity (share of weights removed)' } : { values: () => [] as string[], size: 8 }) },
        { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 60 },
      ],
      hooks: {
        setCursor: [(u) => this.showReadout(u.cursor.idx ?? undefined)],
        draw: [(u) => {
          const ctx = u.ctx;
          const cur = this.pts;
          // Latency: a whisker from the first to the third quartile of each point's runs.
          if (panel.spread) {
            ctx.strokeStyle = panel.color;
            ctx.lineWidth = 1.5 * devicePixelRatio;
            cur.forEach((p, i) => {
              const iqr = p ? panel.spread!(p) : this.view.baseline?.latencyIqr;
              if (!iqr) return;
              const x = u.valToPos(u.data[0][i], 'x', true);
              const [lo, hi] = [u.valToPos(iqr[0], 'y', true), u.valToPos(iqr[1], 'y', true)];
              const cap = 5 * devicePixelRatio;
              ctx.beginPath();
              ctx.moveTo(x, lo);
              ctx.lineTo(x, hi);
              ctx.moveTo(x - cap, lo);
              ctx.lineTo(x + cap, lo);
              ctx.moveTo(x - cap, hi);
              ctx.lineTo(x + cap, hi);
              ctx.stroke();
            });
          }
          // The kept point: a ring.
          const i = cur.findIndex((p) => p && p.sparsity === this.view.kept);
          if (i >= 0) {
            ctx.strokeStyle = kept;
            ctx.lineWidth = 2 * devicePixelRatio;
            ctx.beginPath();
            ctx.arc(u.valToPos(u.data[0][i], 'x', true), u.valToPos(u.data[1][i] as number, 'y', true), 8 * devicePixelRatio, 0, 2 * Math.PI);
            ctx.stroke();
          }
        }],
      },
    }, data, box);
    plot.over.addEventListener('click', () => {
      const i = plot.cursor.idx;
      const p = i === null || i === undefined ? undefined : this.pts[i];
      if (p) this.onKeep(p);
    });
    return plot;
  }

  /** The hovered point's numbers (or the last point's when the cursor is away). */
  private showReadout(i: number | undefined): void {
    const pts = this.pts;
    const idx = i ?? pts.length - 1;
    if (idx < 0 || idx >= pts.length) {
      this.readout.textContent = 'No points yet.';
      return;
    }
    const p = pts[idx];
    const v = this.view;
    const vals = this.panels.map((panel) => (p ? panel.value(p) : panel.base?.(v)));
    const head = p ? `sparsity ${p.sparsity.toFixed(2)}${p.sparsity === v.kept ? ' (kept)' : ''}` : 'float model';
    this.readout.textContent = `${i === undefined ? 'Last: ' : ''}${head} · ${this.panels.map((panel, k) => (vals[k] === undefined ? '' : `${panel.label.split(' (')[0]} ${panel.fmt(vals[k]!)}`)).filter(Boolean).join(' · ')}`;
  }

  private drawTable(): void {
    const pts = this.view.points;
    // In a panel narrower than 700 px, SQNR, top-1 and parameters give way to the columns that decide.
    const cols: Array<[string, string]> = [['sparsity', ''], ['cosine', ''], ['SQNR', 'hide-narrow'], ['top-1', 'hide-narrow'], ['parameters', 'hide-narrow'], ['size', ''], ['latency (quartiles)', ''], ['', '']];
    const head = el('tr', {}, ...cols.map(([h, cls]) => el('th', { text: h, cls })));
    const rows = pts.map((p) => {
      const keep = toolkitButton(p.sparsity === this.view.kept ? 'Kept' : 'Keep', { secondary: p.sparsity !== this.view.kept, icon: 'pass', attrs: { 'aria-label': `keep the model at sparsity ${p.sparsity}` } });
      keep.addEventListener('click', () => this.onKeep(p));
      const lat = `${p.latencyMs.toFixed(2)} ms${p.latencyIqr ? ` (${p.latencyIqr[0].toFixed(2)}–${p.latencyIqr[1].toFixed(2)})` : ''}`;
      return el('tr', { cls: p.sparsity === this.view.kept ? 'kept' : '' },
        ...[p.sparsity.toFixed(2), p.cosine.toFixed(5), `${p.sqnr.toFixed(1)} dB`, p.top1Agreement === null ? '–' : `${(p.top1Agreement * 100).toFixed(1)}%`, p.parameters.toLocaleString('en-US'), mib(p.sizeBytes), lat].map((t, k) => el('td', { text: t, cls: `num ${cols[k][1]}`.trim() })),
        el('td', {}, keep));
    });
    this.table.replaceChildren(el('caption', { text: 'Points' }), el('thead', {}, head), el('tbody', {}, ...rows));
  }
}
