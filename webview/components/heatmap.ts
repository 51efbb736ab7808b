import type { PruneView } from '../../src/protocol/results-view';
import { dropdown } from '../ui/toolkit';
import { el, pct, sortableTable, themeColor, type Column } from './dom';

type Channel = 'density' | 'magnitude';

const SIZE = 360; // the map's side in canvas pixels (CSS scales it down in a narrow panel)
const LEFT = 44, TOP = 22; // room for the axes' labels

/**
 * Per layer, the weight matrix (outputs × fan-in) as tiles on a canvas, with its axes in real weights and a
 * colour legend: the share of weights kept, or their mean magnitude. The report already downsamples to at
 * most 64×64 tiles, so a 4096×4096 layer draws as fast as a small one. Below, every layer's sparsity and
 * shape, sortable; choosing a row shows its map.
 */
export class Heatmap {
  readonly element: HTMLElement;
  private layer: string;
  private channel: Channel = 'density';
  private readonly canvas = el('canvas', { cls: 'map', attrs: { width: String(SIZE + LEFT + 8), height: String(SIZE + TOP + 8), role: 'img' } });
  private readonly legend = el('canvas', { cls: 'legend-bar', attrs: { width: '200', height: '12', 'aria-hidden': 'true' } });
  private readonly legendText = el('span', { cls: 'hint' });
  private readonly title = el('h2');
  private readonly caption = el('p', { cls: 'hint' });

  constructor(private readonly view: PruneView) {
    const names = Object.keys(view.maps);
    this.layer = names[0] ?? '';
    const channel = dropdown([{ value: 'density', label: 'Share of weights kept' }, { value: 'magnitude', label: 'Mean |weight| of a tile' }], 'density', 'Colour shows', (v) => { this.channel = v as Channel; this.draw(); });
    type Row = PruneView['layers'][number];
    const rows = view.layers.filter((l) => view.maps[l.name]);
    const cols: Column<Row>[] = [
      { head: 'layer', value: (r) => r.name },
      { head: 'sparsity', value: (r) => r.sparsity, cell: (r) => sparsityCell(r.sparsity), numeric: true },
      { head: 'weight before → after', value: (r) => r.shapeBefore.reduce((a, b) => a * b, 1), cell: (r) => `[${r.shapeBefore.join('×')}] → [${r.shapeAfter.join('×')}]` },
    ];
    const table = sortableTable<Row>(`Layers (${rows.length}): choose one to see its map`, cols, rows, { onSelect: (r) => { this.layer = r.name; this.draw(); } });
    table.classList.add('layers-table');
    this.element = el('div', { cls: 'heatmap' },
      el('div', { cls: 'map-box' }, this.title, el('div', { cls: 'toolbar' }, el('span', { text: 'Colour:' }), channel), this.canvas,
        el('div', { cls: 'legend' }, this.legend, this.legendText), this.caption),
      table);
    this.draw();
  }

  private draw(): void {
    const m = this.view.maps[this.layer];
    const g = this.canvas.getContext('2d');
    if (!m || !g) return;
    const [outs, fanIn] = m.shape ?? [m.rows * m.tile[0], m.cols * m.tile[1]];
    const fg = themeColor('--vscode-foreground', '#ccc');
    const border = themeColor('--vscode-panel-border', '#808080');
    const [r, gg, b] = rgb(themeColor('--vscode-charts-blue', '#3794ff'));
    const values = this.channel === 'density' ? m.density : m.magnitude;
    const top = this.channel === 'density' ? 1 : Math.max(1e-12, ...values);
    // Keep the matrix's aspect: the longer side spans SIZE pixels; the canvas fits the map and its axes.
    const scale = SIZE / Math.max(m.rows, m.cols);
    const W = m.cols * scale, H = m.rows * scale;
    this.canvas.width = Math.ceil(LEFT + W + 8);
    this.canvas.height = Math.ceil(TOP + H + 8);
    g.clearRect(0, 0, this.canvas.width, this.canvas.height);
    g.fillStyle = themeColor('--vscode-editor-background', '#1e1e1e');
    g.fillRect(LEFT, TOP, W, H);
    for (let i = 0; i < m.rows; i++) {
      for (let j = 0; j < m.cols; j++) {
        g.fillStyle = `rgba(${r},${gg},${b},${Math.max(0, Math.min(1, values[i * m.cols + j] / top)).toFixed(3)})`;
        g.fillRect(LEFT + j * scale, TOP + i * scale, Math.ceil(scale), Math.ceil(scale));
      }
    }
    g.strokeStyle = border;
    g.strokeRect(LEFT - 0.5, TOP - 0.5, W + 1, H + 1);
    // Axes in weights: fan-in along the top, outputs down the left.
    g.fillStyle = fg;
    g.font = `11px ${getComputedStyle(document.body).fontFamily || 'sans-serif'}`;
    g.textBaseline = 'bottom';
    g.textAlign = 'left';
    g.fillText('0', LEFT, TOP - 4);
    g.textAlign = 'right';
    g.fillText(`${fanIn} inputs`, LEFT + W, TOP - 4);
    g.textBaseline = 'top';
    g.fillText('0', LEFT - 4, TOP);
    g.save();
    g.translate(LEFT - 4, TOP + H);
    g.rotate(-Math.PI / 2);
    g.textAlign = 'left';
    g.textBaseline = 'bottom';
    g.fillText(`${outs} outputs`, 0, 0);
    g.restore();
    this.drawLegend(r, gg, b, top);
    const row = this.view.layers.find((l) => l.name === this.layer);
    this.title.textContent = this.layer;
    this.caption.textContent = `${outs} outputs × ${fanIn} inputs, ${m.rows}×${m.cols} tiles of ${m.tile[0]}×${m.tile[1]} weights` +
      (row ? `; ${pct(row.sparsity)} removed, [${row.shapeBefore.join('×')}] → [${row.shapeAfter.join('×')}]` : '');
    this.canvas.setAttribute('aria-label', `${this.layer}: ${this.caption.textContent}`);
  }

  private drawLegend(r: number, g: number, b: number, top: number): void {
    const c = this.legend.getContext('2d');
    if (!c) return;
    const grad = c.createLinearGradient(0, 0, this.legend.width, 0);
    grad.addColorStop(0, `rgba(${r},${g},${b},0)`);
    grad.addColorStop(1, `rgba(${r},${g},${b},1)`);
    c.clearRect(0, 0, this.legend.width, this.legend.height);
    c.fillStyle = grad;
    c.fillRect(0, 0, this.legend.width, this.legend.height);
    c.strokeStyle = themeColor('--vscode-panel-border', '#808080');
    c.strokeRect(0.5, 0.5, this.legend.width - 1, this.legend.height - 1);
    this.legendText.textContent = this.channel === 'density' ? ' 0% kept (all pruned) … 100% kept' : ` 0 … ${top.toPrecision(3)} mean |w|`;
  }
}

/** The sparsity as a number and a bar. */
function sparsityCell(v: number): HTMLElement {
  const bar = el('span', { cls: 'sbar' }, el('span', { cls: 'fill' }));
  (bar.firstChild as HTMLElement).style.width = `${(Math.max(0, Math.min(1, v)) * 100).toFixed(1)}%`;
  return el('span', { cls: 'scell' }, el('span', { text: pct(v, 0) }), bar);
}

function rgb(color: string): [number, number, number] {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})/i.exec(color);
  if (m) return [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)];
  const n = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(color);
  return n ? [Number(n[1]), Number(n[2]), Number(n[3])] : [55, 148, 255];
}
