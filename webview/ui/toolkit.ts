import {
  provideVSCodeDesignSystem, vsCodeBadge, vsCodeButton, vsCodeDropdown, vsCodeOption, vsCodePanels, vsCodePanelTab, vsCodePanelView, vsCodeProgressRing, vsCodeTextField,
} from '@vscode/webview-ui-toolkit';

// The one place the webviews import @vscode/webview-ui-toolkit (deprecated upstream): its maintained
// successor, @vscode-elements/elements, can replace it here without touching the views. The components
// take VS Code's theme colours themselves; everything else in the pages uses --vscode-* variables.
let registered = false;

function register(): void {
  if (registered) return;
  provideVSCodeDesignSystem().register(
    vsCodeBadge(), vsCodeButton(), vsCodeDropdown(), vsCodeOption(), vsCodePanels(), vsCodePanelTab(), vsCodePanelView(), vsCodeProgressRing(), vsCodeTextField(),
  );
  registered = true;
}

function make(tag: string, attrs: Record<string, string> = {}, text?: string): HTMLElement {
  register();
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A codicon (VS Code's icon font, @vscode/codicons). */
export function icon(name: string, label?: string): HTMLElement {
  const i = document.createElement('span');
  i.className = `codicon codicon-${name}`;
  if (label) i.setAttribute('aria-label', label);
  else i.setAttribute('aria-hidden', 'true');
  return i;
}

/** A toolkit button (`vscode-button`); `secondary` for the quieter look, `icon` for a codicon before the text. */
export function toolkitButton(text: string, opts: { secondary?: boolean; icon?: string; attrs?: Record<string, string> } = {}): HTMLElement {
  const b = make('vscode-button', { ...(opts.secondary ? { appearance: 'secondary' } : {}), ...opts.attrs });
  if (opts.icon) {
    const i = icon(opts.icon);
    i.setAttribute('slot', 'start');
    b.append(i);
  }
  b.append(text);
  return b;
}

/** Enables or disables a toolkit button (the attribute is what the component reads). */
export function setDisabled(b: HTMLElement, disabled: boolean): void {
  b.toggleAttribute('disabled', disabled);
}

/** A dropdown (`vscode-dropdown`); `onChange` gets the chosen value. */
export function dropdown(options: Array<{ value: string; label: string }>, value: string, label: string, onChange: (v: string) => void): HTMLElement {
  const d = make('vscode-dropdown', { 'aria-label': label, title: label });
  for (const o of options) d.append(make('vscode-option', { value: o.value, ...(o.value === value ? { selected: '' } : {}) }, o.label));
  d.addEventListener('change', (e) => {
    e.stopPropagation(); // the tabs around it listen for their own 'change'
    onChange((d as HTMLElement & { value: string }).value);
  });
  return d;
}

/** A text field (`vscode-text-field`) that reports what is typed. */
export function textField(placeholder: string, label: string, onInput: (v: string) => void, opts: { icon?: string } = {}): HTMLElement {
  const t = make('vscode-text-field', { placeholder, 'aria-label': label });
  if (opts.icon) {
    const i = icon(opts.icon);
    i.setAttribute('slot', 'start');
    t.append(i);
  }
  t.addEventListener('input', () => onInput((t as HTMLElement & { value: string }).value));
  t.addEventListener('change', (e) => e.stopPropagation());
  return t;
}

/** A count badge (`vscode-badge`). */
export function badge(text: string): HTMLElement {
  return make('vscode-badge', {}, text);
}

/** A progress ring (`vscode-progress-ring`) with a label beside it. */
export function progressRing(label: string): HTMLElement {
  const wrap = document.createElement('span');
  wrap.className = 'progress';
  wrap.append(make('vscode-progress-ring', { 'aria-hidden': 'true' }), document.createTextNode(label));
  return wrap;
}

export interface TabSpec<Id extends string> {
  id: Id;
  label: string;
  badge?: string;
  /** Builds the tab's content the first time it is shown (a chart needs its width). */
  content: () => HTMLElement | HTMLElement[];
}

/**
 * Tabs (`vscode-panels`): one per spec, `active` shown first; a tab's content is built when it is first
 * shown. `onChange` hears the user's choice.
 */
export function tabs<Id extends string>(specs: Array<TabSpec<Id>>, active: Id, onChange: (id: Id) => void): { element: HTMLElement; show: (id: Id) => void } {
  const panels = make('vscode-panels', { activeid: `tab-${active}`, 'aria-label': 'Results' }) as HTMLElement & { activeid?: string };
  const views = new Map<string, { view: HTMLElement; spec: TabSpec<Id>; built: boolean }>();
  for (const s of specs) {
    const tab = make('vscode-panel-tab', { id: `tab-${s.id}`, 'data-tab': s.id }, s.label);
    if (s.badge) tab.append(badge(s.badge));
    panels.append(tab);
  }
  for (const s of specs) {
    const view = make('vscode-panel-view', { id: `view-${s.id}`, 'data-view': s.id });
    panels.append(view);
    views.set(`tab-${s.id}`, { view, spec: s, built: false });
  }
  const build = (id: string) => {
    const v = views.get(id);
    if (!v || v.built) return;
    v.built = true;
    const c = v.spec.content();
    const box = document.createElement('div');
    box.className = 'tab-content';
    box.append(...(Array.isArray(c) ? c : [c]));
    v.view.replaceChildren(box);
  };
  build(`tab-${active}`);
  panels.addEventListener('change', (e) => {
    if (e.target !== panels) return;
    const id = panels.activeid ?? panels.getAttribute('activeid') ?? '';
    build(id);
    const spec = views.get(id)?.spec;
    if (spec) onChange(spec.id);
  });
  // Setting activeid from code fires no 'change': build the tab here.
  const show = (id: Id) => { build(`tab-${id}`); panels.activeid = `tab-${id}`; };
  return { element: panels, show };
}
