import type { ModelSummary } from '../../src/core/inspect';
import type { FromModelSummaryView, ModelSummaryState, ToModelSummaryView } from '../../src/protocol/model-summary-view';
import { vscodeApi } from '../shared/vscode-api';

const api = vscodeApi<ModelSummaryState>('quantlens.modelSummary');
const root = document.getElementById('root')!;
const send = (m: FromModelSummaryView) => api.postMessage(m);

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function table(caption: string, head: string[], rows: string[][]): HTMLTableElement {
  const t = el('table');
  t.append(el('caption', caption));
  const tr = el('tr');
  head.forEach((h) => tr.append(el('th', h)));
  t.append(tr);
  for (const r of rows) {
    const row = el('tr');
    r.forEach((c) => row.append(el('td', c)));
    t.append(row);
  }
  return t;
}

const shape = (s: Array<number | string | null> | null) => (s ? `[${s.map((d) => d ?? '?').join(', ')}]` : '?');

function render(s: ModelSummary): void {
  root.replaceChildren();
  root.append(el('h1', s.file.split(/[\\/]/).pop() ?? s.file));
  const facts = el('dl', undefined, 'facts');
  const fact = (k: string, v: string) => facts.append(el('dt', k), el('dd', v));
  fact('Opset', String(s.opset));
  fact('Parameters', s.parameters.toLocaleString('en-US'));
  fact('Nodes', String(s.nodes));
  fact('Size', `${(s.sizeBytes / 1048576).toFixed(2)} MiB${s.externalData ? ' (external data)' : ''}`);
  fact('Producer', s.producer || 'unknown');
  root.append(facts);
  root.append(table('Inputs', ['name', 'type', 'shape'], s.inputs.map((v) => [v.name, v.type, shape(v.shape)])));
  root.append(table('Outputs', ['name', 'type', 'shape'], s.outputs.map((v) => [v.name, v.type, shape(v.shape)])));
  const ops = Object.entries(s.opTypes).sort((a, b) => b[1] - a[1]);
  root.append(table('Operators', ['op', 'count'], ops.map(([op, n]) => [op, String(n)])));
}

window.addEventListener('message', (ev: MessageEvent<ToModelSummaryView>) => {
  const m = ev.data;
  if (m?.type === 'show') {
    api.setState({ summary: m.summary });
    render(m.summary);
  } else if (m?.type === 'error') {
    root.replaceChildren(el('p', m.message, 'error'));
  }
});

const saved = api.getState();
if (saved?.summary) render(saved.summary);
else root.append(el('p', 'Loading…'));
send({ type: 'ready' });
