import type { CalibrationTensorView } from '../../src/protocol/results-view';
import { el, themeColor } from './dom';

/** A tensor's calibration histogram on a canvas, with the chosen clip and MinMax's range marked. */
export function histogramCanvas(t: CalibrationTensorView, width = 420, height = 120): HTMLCanvasElement {
  const c = el('canvas', { attrs: { width: String(width), height: String(height), role: 'img', 'aria-label': `histogram of ${t.tensor}: clip ${t.clip[0].toPrecision(3)} to ${t.clip[1].toPrecision(3)}, ${t.clippedPercent.toFixed(3)}% clipped` } });
  const g = c.getContext('2d');
  if (!g || !t.histogram) return c;
  const { edges: [lo, hi], counts } = t.histogram;
  const span = hi - lo || 1;
  const x = (v: number) => ((v - lo) / span) * width;
  const top = Math.max(1, ...counts.map((n) => Math.log1p(n)));
  g.fillStyle = themeColor('--vscode-charts-blue', '#3794ff');
  const bw = width / counts.length;
  counts.forEach((n, i) => {
    const h = (Math.log1p(n) / top) * (height - Math.min(14, height / 4));
    g.fillRect(i * bw, height - h, Math.max(1, bw - 1), h);
  });
  const mark = (v: number, color: string, dash: number[]) => {
    g.strokeStyle = color;
    g.setLineDash(dash);
    g.beginPath();
    g.moveTo(x(v), 0);
    g.lineTo(x(v), height);
    g.stroke();
  };
  mark(t.minmax[0], themeColor('--vscode-descriptionForeground', '#888'), [2, 2]);
  mark(t.minmax[1], themeColor('--vscode-descriptionForeground', '#888'), [2, 2]);
  mark(t.clip[0], themeColor('--vscode-charts-red', '#f14c4c'), []);
  mark(t.clip[1], themeColor('--vscode-charts-red', '#f14c4c'), []);
  return c;
}

/** The same histogram in a table cell: small enough for every row, the clip still marked. */
export function miniHistogram(t: CalibrationTensorView): HTMLCanvasElement {
  const c = histogramCanvas(t, 120, 24);
  c.className = 'mini-hist';
  return c;
}
