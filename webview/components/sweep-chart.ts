import uPlot from 'uplot';
import type { SweepPoint } from '../../src/core/prune/sweep';
import type { SweepView } from '../../src/protocol/results-view';
import { el, mib, themeColor } from './dom';
import { randomDataBanner } from './summary';

/**
 * Sparsity against fidelity (cosine), size and latency, drawn with uPlot; it grows as points arrive.
 * Clicking a point (or its row's button, for the keyboard) keeps that model.
 */
export class SweepChart {
  readonly element: HTMLElement;
  private plot?: uPlot;
  private readonly chartBox = el('div', { cls: 'chart', attrs: { role: 'img', 'aria-label': 'sweep chart: sparsity against cosine, size and latency' } });
  private readonly table = el('table', { cls: 'points' });
  private readonly status = el('p', { cls: 'hint' });

  constructor(private readonly view: SweepView, private readonly onKeep: (p: SweepPoint) => void) {
    this.element = el('div', { cls: 'sweep' }, ...randomDataBanner(view.fidelityData), this.status, this.chartBox, this.table);
    this.draw();
  }

  add(p: SweepPoint): void {
    this.view.points = [...this.view.points.filter((q) => q.sparsity !== p.sparsity), p].sort((a, b) => a.sparsity - b.sparsity);
    this.draw();
  }

  done(): void {
    this.view.done = true;
    this.draw();
  }

  private draw(): void {
    const pts = this.view.points;
    this.status.textContent = `${this.view.method} pruning of ${this.view.model.split(/[\\/]/).pop()}: ${pts.length} point${pts.length === 1 ? '' : 's'}${this.view.done ? '' : ', running…'}. Click a point to keep that model.`;
    const data: uPlot.AlignedData = [pts.map((p) => p.sparsity), pts.map((p) => p.cosine), pts.map((p) => p.sizeBytes / 1048576), pts.map((p) => p.latencyMs)];
    if (!this.plot) {
      const fg = themeColor('--vscode-foreground', '#ccc');
      const grid = themeColor('--vscode-panel-border', '#444');
      const axis = (scale: string, side: 0 | 1 | 2 | 3, label: string) => ({ scale, side, label, stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } });
      this.plot = new uPlot({
        width: Math.max(360, Math.min(820, document.body.clientWidth - 40)), height: 300,
        scales: { x: { time: false, range: [0, 1] }, fid: { range: [0, 1] }, mib: {}, ms: {} },
        series: [
          { label: 'sparsity' },
          { label: 'cosine', scale: 'fid', stroke: themeColor('--vscode-charts-blue', '#3794ff'), width: 2, points: { size: 8 } },
          { label: 'size (MiB)', scale: 'mib', stroke: themeColor('--vscode-charts-green', '#89d185'), width: 2, points: { size: 6 } },
          { label: 'latency (ms)', scale: 'ms', stroke: themeColor('--vscode-charts-orange', '#d18616'), width: 2, points: { size: 6 } },
        ],
        axes: [axis('x', 2, 'sparsity'), axis('fid', 3, 'cosine'), axis('mib', 1, 'MiB'), { ...axis('ms', 1, 'ms'), grid: { show: false } }],
        cursor: { drag: { x: false, y: false } },
      }, data, this.chartBox);
      this.plot.over.addEventListener('click', () => {
        const i = this.plot?.cursor.idx;
        if (i !== null && i !== undefined && this.view.points[i]) this.onKeep(this.view.points[i]);
      });
    } else this.plot.setData(data);
    const head = el('tr', {}, ...['sparsity', 'cosine', 'SQNR', 'top-1', 'parameters', 'size', 'latency', ''].map((h) => el('th', { text: h })));
    const rows = pts.map((p) => {
      const keep = el('button', { text: 'Keep this model', attrs: { 'aria-label': `keep the model at sparsity ${p.sparsity}` } });
      keep.addEventListener('click', () => this.onKeep(p));
      return el('tr', {}, ...[p.sparsity.toFixed(2), p.cosine.toFixed(5), `${p.sqnr.toFixed(1)} dB`, p.top1Agreement === null ? '–' : `${(p.top1Agreement * 100).toFixed(1)}%`, p.parameters.toLocaleString('en-US'), mib(p.sizeBytes), `${p.latencyMs.toFixed(2)} ms`].map((t) => el('td', { text: t, cls: 'num' })), el('td', {}, keep));
    });
    this.table.replaceChildren(el('caption', { text: 'Points' }), el('thead', {}, head), el('tbody', {}, ...rows));
  }
}
