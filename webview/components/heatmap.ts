import type { PruneView } from '../../src/protocol/results-view';
import { el, pct, themeColor } from './dom';

type Channel = 'density' | 'magnitude';

/**
 * Per layer, the weight matrix (outputs × fan-in) as tiles on a canvas: the share of weights kept, or their
 * mean magnitude. The report already downsamples to at most 64×64 tiles, so a 4096×4096 layer draws as
 * fast as a small one.
 */
export class Heatmap {
  readonly element: HTMLElement;
  private layer: string;
  private channel: Channel = 'density';
  private readonly canvas = el('canvas', { attrs: { width: '512', height: '512', role: 'img' } });
  private readonly caption = el('p', { cls: 'hint' });

  constructor(private readonly view: PruneView) {
    const names = Object.keys(view.maps);
    this.layer = names[0] ?? '';
    const list = el('select', { attrs: { size: String(Math.min(16, Math.max(4, names.length))), 'aria-label': 'Layer' } }, ...names.map((n) => {
      const row = view.layers.find((l) => l.name === n);
      return el('option', { text: `${n}${row ? `  (${pct(row.sparsity, 0)})` : ''}`, attrs: { value: n } });
    }));
    list.value = this.layer;
    list.addEventListener('change', () => { this.layer = list.value; this.draw(); });
    const channel = el('select', { attrs: { 'aria-label': 'Show' } }, el('option', { text: 'kept share (mask)', attrs: { value: 'density' } }), el('option', { text: 'weight magnitude', attrs: { value: 'magnitude' } }));
    channel.addEventListener('change', () => { this.channel = channel.value as Channel; this.draw(); });
    this.element = el('div', { cls: 'heatmap' }, el('div', { cls: 'layers' }, list), el('div', {}, el('div', { cls: 'toolbar' }, channel), this.canvas, this.caption));
    this.draw();
  }

  private draw(): void {
    const m = this.view.maps[this.layer];
    const g = this.canvas.getContext('2d');
    if (!m || !g) return;
    const W = this.canvas.width, H = this.canvas.height;
    const cw = W / m.cols, ch = H / m.rows;
    const values = this.channel === 'density' ? m.density : m.magnitude;
    const top = Math.max(1e-12, ...values);
    const bg = themeColor('--vscode-editor-background', '#1e1e1e');
    const [r, gg, b] = rgb(themeColor('--vscode-charts-blue', '#3794ff'));
    g.fillStyle = bg;
    g.fillRect(0, 0, W, H);
    for (let i = 0; i < m.rows; i++) {
      for (let j = 0; j < m.cols; j++) {
        const v = values[i * m.cols + j] / (this.channel === 'density' ? 1 : top);
        g.fillStyle = `rgba(${r},${gg},${b},${Math.max(0, Math.min(1, v)).toFixed(3)})`;
        g.fillRect(j * cw, i * ch, Math.ceil(cw), Math.ceil(ch));
      }
    }
    const row = this.view.layers.find((l) => l.name === this.layer);
    this.caption.textContent = `${this.layer}: ${m.rows}×${m.cols} tiles of ${m.tile[0]}×${m.tile[1]} weights (rows = outputs, columns = inputs)` +
      (row ? `; ${pct(row.sparsity)} removed, [${row.shapeBefore.join('×')}] → [${row.shapeAfter.join('×')}]` : '');
    this.canvas.setAttribute('aria-label', this.caption.textContent);
  }
}

function rgb(color: string): [number, number, number] {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})/i.exec(color);
  if (m) return [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)];
  const n = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(color);
  return n ? [Number(n[1]), Number(n[2]), Number(n[3])] : [55, 148, 255];
}
