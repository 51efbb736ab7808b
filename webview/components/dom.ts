// Small DOM helpers every panel component uses (plain DOM, VS Code theme variables in media/panel.css).
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<{ text: string; cls: string; title: string; attrs: Record<string, string> }> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.text !== undefined) e.textContent = props.text;
  if (props.cls) e.className = props.cls;
  if (props.title) e.title = props.title;
  for (const [k, v] of Object.entries(props.attrs ?? {})) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

export const mib = (n: number) => `${(n / 1048576).toFixed(2)} MiB`;
export const pct = (v: number, d = 1) => `${(v * 100).toFixed(d)}%`;
export const dbOf = (nsr: number) => (nsr > 0 ? 10 * Math.log10(nsr) : -200);

/** A definition list of facts (label → value). */
export function facts(rows: Array<[string, string]>): HTMLDListElement {
  const dl = el('dl', { cls: 'facts' });
  for (const [k, v] of rows) dl.append(el('dt', { text: k }), el('dd', { text: v }));
  return dl;
}

export interface Column<T> {
  head: string;
  value: (row: T) => string | number;
  /** Rendered cell; defaults to the value as text. */
  cell?: (row: T) => Node | string;
  numeric?: boolean;
  /** A class on the column's header and cells (e.g. `narrow-hide`). */
  cls?: string;
}

/**
 * A table whose headers sort it (click or Enter/Space on a header; again to reverse); `onSelect` makes
 * rows focusable and selectable with the keyboard.
 */
export function sortableTable<T>(caption: string, columns: Column<T>[], rows: T[], opts: { initial?: number; descending?: boolean; onSelect?: (row: T) => void; limit?: number } = {}): HTMLTableElement {
  const table = el('table', { cls: 'sortable' });
  table.append(el('caption', { text: caption }));
  const head = el('tr');
  const body = el('tbody');
  let sortBy = opts.initial ?? -1, desc = opts.descending ?? false;
  const draw = () => {
    const sorted = sortBy < 0 ? rows : [...rows].sort((a, b) => {
      const va = columns[sortBy].value(a), vb = columns[sortBy].value(b);
      const c = typeof va === 'number' && typeof vb === 'number' ? va - vb : String(va).localeCompare(String(vb));
      return desc ? -c : c;
    });
    body.replaceChildren();
    for (const r of sorted.slice(0, opts.limit ?? 5000)) {
      const tr = el('tr');
      for (const c of columns) tr.append(el('td', { cls: [c.numeric ? 'num' : '', c.cls ?? ''].join(' ').trim() }, c.cell ? c.cell(r) : String(c.value(r))));
      if (opts.onSelect) {
        tr.tabIndex = 0;
        tr.addEventListener('click', () => opts.onSelect!(r));
        tr.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); opts.onSelect!(r); } });
      }
      body.append(tr);
    }
    head.querySelectorAll('th').forEach((th, i) => th.setAttribute('aria-sort', i === sortBy ? (desc ? 'descending' : 'ascending') : 'none'));
  };
  columns.forEach((c, i) => {
    const th = el('th', { text: c.head, cls: c.cls ?? '', attrs: { tabindex: '0', role: 'columnheader' } });
    const sort = () => { if (sortBy === i) desc = !desc; else { sortBy = i; desc = !!c.numeric; } draw(); };
    th.addEventListener('click', sort);
    th.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sort(); } });
    head.append(th);
  });
  table.append(el('thead', {}, head), body);
  draw();
  return table;
}

/** The theme colour behind a CSS variable, for canvas drawing. */
export function themeColor(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}
