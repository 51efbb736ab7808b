// The results panels: one page, four views (quantize summary + calibration, sensitivity tree, sweep
// chart, pruning heatmaps), chosen by the state the extension sends or the webview restored.
import type { FromResultsView, ResultsState, ToResultsView } from '../../src/protocol/results-view';
import { el } from '../components/dom';
import { Heatmap } from '../components/heatmap';
import { pruneSummary, quantizeSummary } from '../components/summary';
import { SweepChart } from '../components/sweep-chart';
import { SensitivityTree } from '../components/tree';
import { vscodeApi } from '../shared/vscode-api';

const api = vscodeApi<ResultsState>('quantlens.results');
const root = document.getElementById('root')!;
const send = (m: FromResultsView) => api.postMessage(m);
let state: ResultsState | undefined;
let tree: SensitivityTree | undefined;
let chart: SweepChart | undefined;

function render(s: ResultsState, persist = true): void {
  state = s;
  // Restoring from the saved state needs no second copy of it (a 10k-layer report is megabytes).
  if (persist) api.setState(s);
  tree = undefined;
  chart = undefined;
  const d = s.data;
  if (d.kind === 'quantize') {
    root.replaceChildren(...quantizeSummary(d.view));
    if (d.view.sensitivityReport) {
      const open = el('button', { text: 'Open the sensitivity tree' });
      open.addEventListener('click', () => send({ type: 'openLayer', layer: '' }));
      root.append(open);
    }
  } else if (d.kind === 'sensitivity') {
    const v = d.view;
    tree = new SensitivityTree(v.layers, { onPolicy: () => updateRecipeButtons() });
    if (s.focus) tree.reveal(s.focus);
    const save = el('button', { text: 'Save recipe', attrs: { id: 'save-recipe' } });
    const rerun = el('button', { text: 'Re-run with this recipe', attrs: { id: 'rerun' } });
    save.addEventListener('click', () => send({ type: 'saveRecipe', rules: tree!.policyRules(), rerun: false }));
    rerun.addEventListener('click', () => send({ type: 'saveRecipe', rules: tree!.policyRules(), rerun: true }));
    root.replaceChildren(
      el('h1', { text: `Sensitivity: ${v.model.split(/[\\/]/).pop()}` }),
      el('p', { cls: 'hint', text: `${v.layers.length} layers, ${v.scheme}; bars: output noise-to-signal in dB when only that layer is quantized (longer is worse).` }),
      el('div', { cls: 'toolbar' }, save, rerun), tree.element,
    );
    updateRecipeButtons();
  } else if (d.kind === 'sweep') {
    chart = new SweepChart(d.view, (p) => send({ type: 'keepPoint', sparsity: p.sparsity }));
    root.replaceChildren(el('h1', { text: `Pruning sweep: ${d.view.model.split(/[\\/]/).pop()}` }), chart.element);
  } else if (d.kind === 'prune') {
    root.replaceChildren(...pruneSummary(d.view), el('h2', { text: 'Sparsity heatmaps' }), new Heatmap(d.view).element);
  }
}

function updateRecipeButtons(): void {
  const n = tree?.policyRules().length ?? 0;
  for (const id of ['save-recipe', 'rerun']) {
    const b = document.getElementById(id) as HTMLButtonElement | null;
    if (b) b.disabled = n === 0;
  }
}

window.addEventListener('message', (ev: MessageEvent<ToResultsView>) => {
  const m = ev.data;
  if (!m || typeof m !== 'object') return;
  if (m.type === 'show') render(m.state);
  else if (m.type === 'point' && chart && state?.data.kind === 'sweep') { chart.add(m.point); api.setState(state); }
  else if (m.type === 'sweepDone' && chart && state?.data.kind === 'sweep') { chart.done(); api.setState(state); }
  else if (m.type === 'focus' && tree && state) { state.focus = m.layer; api.setState(state); tree.reveal(m.layer); }
  else if (m.type === 'error') root.append(el('p', { cls: 'error', text: m.message }));
});

const saved = api.getState();
// Marks for npm run bench: the render itself, apart from restoring the state.
performance.mark('quantlens-render-start');
if (saved) render(saved, false);
else root.append(el('p', { text: 'Loading…' }));
performance.mark('quantlens-render-end');
send({ type: 'ready' });
