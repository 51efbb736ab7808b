import { buildTree, type SensitivityTreeNode } from '../../src/core/sensitivity/tree';
import { dropdown, textField, toolkitButton } from '../ui/toolkit';
import type { LayerPolicy, SensitivityLayerView } from '../../src/protocol/results-view';
import { dbOf, el, facts, pct } from './dom';

export interface TreeCallbacks {
  /** A layer's policy changed (undefined: back to the run's default). */
  onPolicy: (module: string, policy: LayerPolicy | undefined) => void;
  onSelect?: (layer: SensitivityLayerView) => void;
}

type SortKey = 'graph' | 'sensitivity';

/** Row height in px (media/panel.css sets the same): rows are virtualised, only those in view exist. */
const ROW_H = 22;

/**
 * The module tree (vision_model → encoder → layers.N → self_attn → q_proj) with a bar per row on a dB
 * scale, sortable, filterable, collapsible, keyboard driven (arrows, Enter). The rows of expanded modules
 * are flattened once per change and only those in view are in the DOM, so a 10k-layer report stays fast. Selecting a layer shows its
 * details; the select on each row sets its policy for the recipe.
 */
export class SensitivityTree {
  readonly element: HTMLElement;
  private readonly root: SensitivityTreeNode;
  private readonly expanded = new Set<string>();
  private readonly policies = new Map<string, LayerPolicy>();
  private sortBy: SortKey = 'sensitivity';
  private filter = '';
  private selected?: string;
  private readonly list: HTMLElement;
  private readonly spacer: HTMLElement;
  private flat: Array<{ n: SensitivityTreeNode; depth: number }> = [];
  private readonly details: HTMLElement;
  private readonly lo: number;
  private readonly hi: number;

  constructor(private readonly layers: SensitivityLayerView[], private readonly cb: TreeCallbacks) {
    this.root = buildTree(layers);
    // Bars span the top 40 dB of the report: what matters is how far below the worst a layer sits.
    const dbs = layers.map((l) => dbOf(l.sensitivity)).filter((v) => v > -200);
    this.hi = dbs.length ? Math.max(...dbs) : 0;
    // The scale is the data's own (at most the top 40 dB), so close values still differ in length.
    const low = Math.max(dbs.length ? Math.min(...dbs) : -60, this.hi - 40);
    this.lo = low - Math.max(1, 0.1 * (this.hi - low));
    // Open the path to the most sensitive layer, and the top levels.
    for (const c of this.root.children) this.expanded.add(c.path);
    const worst = [...layers].sort((a, b) => b.sensitivity - a.sensitivity)[0];
    if (worst) this.reveal(worst.name, false);
    const filterBox = textField('Filter modules…', 'Filter modules', (v) => { this.filter = v.trim().toLowerCase(); this.render(); }, { icon: 'filter' });
    const sort = dropdown([{ value: 'sensitivity', label: 'Most sensitive first' }, { value: 'graph', label: 'Graph order' }], 'sensitivity', 'Sort rows', (v) => { this.sortBy = v as SortKey; this.render(); });
    const expandAll = toolkitButton('Expand all', { secondary: true, icon: 'expand-all' });
    expandAll.addEventListener('click', () => { this.walk(this.root, (n) => { if (n.children.length) this.expanded.add(n.path); }); this.render(); });
    const collapseAll = toolkitButton('Collapse all', { secondary: true, icon: 'collapse-all' });
    collapseAll.addEventListener('click', () => { this.expanded.clear(); this.render(); });
    this.spacer = el('div', { cls: 'spacer' });
    this.list = el('div', { cls: 'tree', attrs: { role: 'tree', 'aria-label': 'Sensitivity by module' } }, this.spacer);
    this.list.addEventListener('keydown', (e) => this.onKey(e));
    this.list.addEventListener('scroll', () => this.drawWindow());
    this.details = el('section', { cls: 'details', attrs: { 'aria-live': 'polite' } });
    const legend = el('p', { cls: 'legend hint' },
      el('span', { text: `bar length: ${this.lo.toFixed(0)} dB (empty) to ${this.hi.toFixed(0)} dB (full, the most sensitive layer); colour:` }),
      el('span', { cls: 'swatch severe' }), el('span', { text: 'within 3 dB of the most sensitive' }),
      el('span', { cls: 'swatch notable' }), el('span', { text: 'within 10 dB' }),
      el('span', { cls: 'swatch mild' }), el('span', { text: 'further' }));
    this.element = el('div', { cls: 'tree-view' }, el('div', { cls: 'toolbar' }, filterBox, sort, expandAll, collapseAll), legend, this.list, this.details);
    this.render();
  }

  /** Expands the modules above `path` and selects it. */
  reveal(path: string, render = true): void {
    const parts = path.split('.');
    for (let i = 1; i < parts.length; i++) this.expanded.add(parts.slice(0, i).join('.'));
    // Paths in the tree merge `layers.3` into one segment: expand those prefixes too.
    this.walk(this.root, (n) => { if (path.startsWith(`${n.path}.`)) this.expanded.add(n.path); });
    this.selected = path;
    if (render) {
      this.render();
      this.scrollTo(path);
    }
  }

  policyRules(): Array<{ module: string; policy: LayerPolicy }> {
    return [...this.policies].map(([module, policy]) => ({ module, policy }));
  }

  private walk(n: SensitivityTreeNode, f: (n: SensitivityTreeNode) => void): void {
    f(n);
    for (const c of n.children) this.walk(c, f);
  }

  private matches(n: SensitivityTreeNode): boolean {
    if (!this.filter) return true;
    if (n.path.toLowerCase().includes(this.filter)) return true;
    return n.children.some((c) => this.matches(c));
  }

  private children(n: SensitivityTreeNode): SensitivityTreeNode[] {
    const kids = n.children.filter((c) => this.matches(c));
    return this.sortBy === 'sensitivity' ? kids.sort((a, b) => b.sensitivity.max - a.sensitivity.max) : kids;
  }

  render(): void {
    const flat: Array<{ n: SensitivityTreeNode; depth: number }> = [];
    const visit = (n: SensitivityTreeNode, depth: number) => {
      for (const c of this.children(n)) {
        flat.push({ n: c, depth });
        if (c.children.length && (this.expanded.has(c.path) || this.filter)) visit(c, depth + 1);
      }
    };
    visit(this.root, 0);
    this.flat = flat;
    this.spacer.style.height = `${flat.length * ROW_H}px`;
    this.drawWindow();
    const sel = this.layers.find((l) => l.name === this.selected);
    this.details.replaceChildren(...(sel ? this.detail(sel) : [el('p', { cls: 'hint', text: 'Select a layer to see its ranges and what hurts it.' })]));
  }

  /** Puts in the DOM only the rows that are in view (plus a margin). */
  private drawWindow(): void {
    const view = this.list.clientHeight || 600;
    const first = Math.max(0, Math.floor(this.list.scrollTop / ROW_H) - 10);
    const last = Math.min(this.flat.length, first + Math.ceil(view / ROW_H) + 20);
    const rows = this.flat.slice(first, last).map(({ n, depth }, k) => {
      const r = this.row(n, depth);
      r.style.top = `${(first + k) * ROW_H}px`;
      r.setAttribute('aria-posinset', String(first + k + 1));
      r.setAttribute('aria-setsize', String(this.flat.length));
      return r;
    });
    this.spacer.replaceChildren(...rows);
  }

  private scrollTo(path: string): void {
    const i = this.flat.findIndex((f) => f.n.path === path);
    if (i < 0) return;
    const view = this.list.clientHeight || 600;
    if (i * ROW_H < this.list.scrollTop || (i + 1) * ROW_H > this.list.scrollTop + view) this.list.scrollTop = Math.max(0, i * ROW_H - view / 2);
    this.drawWindow();
  }

  private row(n: SensitivityTreeNode, depth: number): HTMLElement {
    const layer = n.layer !== undefined ? this.layers[n.layer] : undefined;
    const open = this.expanded.has(n.path) || !!this.filter;
    const d = dbOf(n.sensitivity.max);
    const width = Math.max(0, Math.min(1, (d - this.lo) / (this.hi - this.lo)));
    const r = el('div', {
      cls: `row${this.selected === n.path ? ' selected' : ''}`,
      attrs: { role: 'treeitem', tabindex: this.selected === n.path ? '0' : '-1', 'data-path': n.path, 'aria-level': String(depth + 1), ...(n.children.length ? { 'aria-expanded': String(open) } : {}), 'aria-selected': String(this.selected === n.path) },
    });
    r.style.paddingLeft = `${depth * 10 + 4}px`;
    const twisty = el('span', { cls: 'twisty', text: n.children.length ? (open ? '▾' : '▸') : ' ' });
    // Colour by how far below the most sensitive layer: within 3 dB, within 10 dB, further.
    const below = this.hi - d;
    const bar = el('span', { cls: 'bar', title: `${d.toFixed(1)} dB, ${below.toFixed(1)} dB below the most sensitive layer` }, el('span', { cls: `fill ${below <= 3 ? 'severe' : below <= 10 ? 'notable' : 'mild'}` }));
    (bar.firstChild as HTMLElement).style.width = `${(width * 100).toFixed(1)}%`;
    r.append(twisty, el('span', { cls: 'name', text: n.name }), bar, el('span', { cls: 'db num', text: `${d.toFixed(1)} dB` }));
    if (layer) r.append(this.policySelect(layer.name));
    r.addEventListener('click', (e) => {
      if ((e.target as HTMLElement).tagName === 'SELECT') return;
      if (n.children.length && (e.target === twisty || !layer)) this.toggle(n.path);
      this.select(n.path);
    });
    return r;
  }

  private policySelect(module: string): HTMLSelectElement {
    const s = el('select', { cls: 'policy', attrs: { 'aria-label': `policy for ${module}` } },
      el('option', { text: 'as run', attrs: { value: '' } }), el('option', { text: 'keep float', attrs: { value: 'float' } }),
      el('option', { text: 'INT8', attrs: { value: 'int8' } }), el('option', { text: 'INT4', attrs: { value: 'int4' } }));
    s.value = this.policies.get(module) ?? '';
    s.addEventListener('change', () => {
      if (s.value) this.policies.set(module, s.value as LayerPolicy);
      else this.policies.delete(module);
      this.cb.onPolicy(module, (s.value || undefined) as LayerPolicy | undefined);
    });
    return s;
  }

  private toggle(path: string): void {
    if (this.expanded.has(path)) this.expanded.delete(path);
    else this.expanded.add(path);
  }

  private select(path: string): void {
    this.selected = path;
    const layer = this.layers.find((l) => l.name === path);
    if (layer) this.cb.onSelect?.(layer);
    this.render();
    this.scrollTo(path);
    this.list.querySelector<HTMLElement>(`[data-path="${CSS.escape(path)}"]`)?.focus();
  }

  private onKey(e: KeyboardEvent): void {
    const i = this.flat.findIndex((f) => f.n.path === this.selected);
    const go = (k: number) => { const f = this.flat[Math.max(0, Math.min(this.flat.length - 1, k))]; if (f) this.select(f.n.path); };
    if (e.key === 'ArrowDown') go(i + 1);
    else if (e.key === 'ArrowUp') go(i - 1);
    else if (e.key === 'PageDown') go(i + 20);
    else if (e.key === 'PageUp') go(i - 20);
    else if (e.key === 'Home') go(0);
    else if (e.key === 'End') go(this.flat.length - 1);
    else if ((e.key === 'ArrowRight' || e.key === 'ArrowLeft' || e.key === 'Enter') && this.selected) {
      if (e.key === 'ArrowRight') this.expanded.add(this.selected);
      else if (e.key === 'ArrowLeft') this.expanded.delete(this.selected);
      else this.toggle(this.selected);
      this.select(this.selected);
    } else return;
    e.preventDefault();
  }

  private detail(l: SensitivityLayerView): HTMLElement[] {
    const rows: Array<[string, string]> = [
      ['Module', l.name], ['Op', l.opType], ['Parameters', l.parameters.toLocaleString('en-US')],
      ['Sensitivity', `${dbOf(l.sensitivity).toFixed(1)} dB (rank ${l.rank} of ${this.layers.length})`],
    ];
    if (l.split) rows.push(['Caused by', `weights ${pct(l.split.weight, 0)}, activations ${pct(l.split.activation, 0)}`]);
    if (l.reverse !== undefined) rows.push(['All others quantized', `${dbOf(l.reverse).toFixed(1)} dB`]);
    if (l.window) rows.push(['Measured on', `a ${l.window[0]}×${l.window[1]} window of its map, beside a float copy on it`]);
    if (l.ranges?.input) rows.push(['Input range', `${l.ranges.input[0].toPrecision(4)} … ${l.ranges.input[1].toPrecision(4)}`]);
    if (l.ranges?.output) rows.push(['Output range', `${l.ranges.output[0].toPrecision(4)} … ${l.ranges.output[1].toPrecision(4)}`]);
    return [el('h2', { text: l.name.split('.').slice(-2).join('.') }), facts(rows)];
  }
}
