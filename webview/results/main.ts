// The results panel of one model: a tab per view that has data (summary, sensitivity tree, calibration,
// pruning heatmaps, sweep chart, where time goes), built from the state the extension sends or the
// webview restored.
import { upgradeResultsState, type FromResultsView, type ResultsState, type ResultsTab, type ToResultsView } from '../../src/protocol/results-view';
import { el } from '../components/dom';
import { Heatmap } from '../components/heatmap';
import { calibrationView, pruneSummary, quantizeSummary, timeView } from '../components/summary';
import { SweepChart } from '../components/sweep-chart';
import { SensitivityTree } from '../components/tree';
import { setDisabled, tabs, toolkitButton, type TabSpec } from '../ui/toolkit';
import { vscodeApi } from '../shared/vscode-api';

const api = vscodeApi<ResultsState>('quantlens.results');
const root = document.getElementById('root')!;
const send = (m: FromResultsView) => api.postMessage(m);
let state: ResultsState | undefined;
let tree: SensitivityTree | undefined;
let chart: SweepChart | undefined;
let panels: ReturnType<typeof tabs<ResultsTab>> | undefined;

const base = (p: string) => p.split(/[\\/]/).pop() ?? p;

/** The tabs this model has data for, in a fixed order. */
function tabSpecs(s: ResultsState): Array<TabSpec<ResultsTab>> {
  const { quantize: q, sensitivity: sv, sweep: sw, prune: pr } = s.sections;
  const specs: Array<TabSpec<ResultsTab>> = [];
  if (q || pr) {
    specs.push({
      id: 'summary', label: 'Summary', content: () => {
        const parts: HTMLElement[] = [];
        if (q) parts.push(...quantizeSummary(q));
        if (q?.sensitivityReport && !sv) {
          const open = toolkitButton('Open the sensitivity tree', { icon: 'list-tree' });
          open.addEventListener('click', () => send({ type: 'openLayer', layer: '' }));
          parts.push(open);
        }
        if (pr) parts.push(...pruneSummary(pr));
        return parts;
      },
    });
  }
  if (sv) specs.push({ id: 'sensitivity', label: 'Sensitivity', badge: String(sv.layers.length), content: () => sensitivityTab(s) });
  if (q?.calibration) specs.push({ id: 'calibration', label: 'Calibration', badge: String(q.calibration.tensors.filter((t) => !t.sharedWith).length), content: () => calibrationView(q.calibration!) });
  if (pr) specs.push({ id: 'pruning', label: 'Pruning', badge: String(Object.keys(pr.maps).length), content: () => new Heatmap(pr).element });
  if (sw) {
    specs.push({
      id: 'sweep', label: 'Sweep', badge: String(sw.points.length), content: () => {
        chart = new SweepChart(sw, (p) => send({ type: 'keepPoint', sparsity: p.sparsity }));
        return chart.element;
      },
    });
  }
  if (q?.profile) specs.push({ id: 'time', label: 'Where time goes', content: () => timeView(q) });
  return specs;
}

function sensitivityTab(s: ResultsState): HTMLElement[] {
  const v = s.sections.sensitivity!;
  tree = new SensitivityTree(v.layers, { onPolicy: () => updateRecipeButtons() });
  if (s.focus) tree.reveal(s.focus);
  const save = toolkitButton('Save recipe', { icon: 'save', attrs: { id: 'save-recipe', title: 'Write the policies chosen below as a recipe beside the model' } });
  const rerun = toolkitButton('Re-run with this recipe', { icon: 'play', secondary: true, attrs: { id: 'rerun' } });
  save.addEventListener('click', () => { if (!save.hasAttribute('disabled')) send({ type: 'saveRecipe', rules: tree!.policyRules(), rerun: false }); });
  rerun.addEventListener('click', () => { if (!rerun.hasAttribute('disabled')) send({ type: 'saveRecipe', rules: tree!.policyRules(), rerun: true }); });
  const out = [
    el('p', { cls: 'hint', text: `${v.layers.length} layers, ${v.scheme}. Each bar: output noise-to-signal (dB) when only that layer is quantized; longer is worse.` }),
    el('div', { cls: 'toolbar' }, save, rerun, el('span', { cls: 'hint recipe-hint', text: 'Choose a policy on a layer to make a recipe.' })),
    tree.element,
  ];
  queueMicrotask(updateRecipeButtons);
  return out;
}

function render(s: ResultsState, persist = true): void {
  state = s;
  // Restoring from the saved state needs no second copy of it (a 10k-layer report is megabytes).
  if (persist) api.setState(s);
  tree = undefined;
  chart = undefined;
  const specs = tabSpecs(s);
  if (!specs.length) {
    root.replaceChildren(el('p', { text: 'Nothing to show yet.' }));
    return;
  }
  const active = specs.some((t) => t.id === s.tab) ? s.tab! : specs[0].id;
  panels = tabs(specs, active, (tab) => {
    if (!state) return;
    state.tab = tab;
    api.setState(state);
    send({ type: 'tab', tab });
  });
  root.replaceChildren(el('h1', { text: base(s.model), title: s.model }), panels.element);
}

function updateRecipeButtons(): void {
  const n = tree?.policyRules().length ?? 0;
  for (const id of ['save-recipe', 'rerun']) {
    const b = document.getElementById(id);
    if (b) setDisabled(b, n === 0);
  }
  const hint = document.querySelector('.recipe-hint');
  if (hint) hint.textContent = n ? `${n} polic${n === 1 ? 'y' : 'ies'} chosen` : 'Choose a policy on a layer to make a recipe.';
}

/** Shows a tab (the extension asked, e.g. the hover's link to a layer). */
function showTab(tab: ResultsTab): void {
  panels?.show(tab);
}

window.addEventListener('message', (ev: MessageEvent<ToResultsView>) => {
  const m = ev.data;
  if (!m || typeof m !== 'object') return;
  const sweep = state?.sections.sweep;
  // The extension answers 'ready' with the state the page may have just restored: do not build it twice.
  if (m.type === 'show') { if (!state || JSON.stringify(m.state) !== JSON.stringify(state)) render(m.state); }
  else if (m.type === 'point' && sweep) {
    sweep.points = [...sweep.points.filter((p) => p.sparsity !== m.point.sparsity), m.point].sort((a, b) => a.sparsity - b.sparsity);
    chart?.redraw();
    const b = document.querySelector('#tab-sweep vscode-badge');
    if (b) b.textContent = String(sweep.points.length);
    api.setState(state!);
  } else if (m.type === 'sweepDone' && sweep) {
    sweep.done = true;
    if (m.baseline) sweep.baseline = m.baseline;
    chart?.redraw();
    api.setState(state!);
  }
  else if (m.type === 'kept' && sweep) { sweep.kept = m.sparsity; chart?.redraw(); api.setState(state!); }
  else if (m.type === 'focus' && state) {
    state.focus = m.layer;
    state.tab = 'sensitivity';
    api.setState(state);
    showTab('sensitivity');
    if (m.layer) tree?.reveal(m.layer);
  } else if (m.type === 'error') root.append(el('p', { cls: 'error', text: m.message }));
});

// A theme change repaints the canvases (charts, heatmaps, histograms) in the new theme's colours.
new MutationObserver(() => { if (state) render(state, false); }).observe(document.body, { attributes: true, attributeFilter: ['class'] });

const saved = upgradeResultsState(api.getState());
// Marks for npm run bench: the render itself, apart from restoring the state.
performance.mark('quantlens-render-start');
if (saved) render(saved, false);
else root.append(el('p', { text: 'Loading…' }));
performance.mark('quantlens-render-end');
send({ type: 'ready' });
