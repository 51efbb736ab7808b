import { provideVSCodeDesignSystem, vsCodeButton } from '@vscode/webview-ui-toolkit';

// The one place the webviews import @vscode/webview-ui-toolkit (deprecated upstream): its maintained
// successor, @vscode-elements/elements, can replace it here without touching the views.
let registered = false;

/** A toolkit button (`vscode-button`, themed by VS Code's colours), `secondary` for the quieter look. */
export function toolkitButton(text: string, opts: { secondary?: boolean; attrs?: Record<string, string> } = {}): HTMLElement {
  if (!registered) {
    provideVSCodeDesignSystem().register(vsCodeButton());
    registered = true;
  }
  const b = document.createElement('vscode-button');
  b.textContent = text;
  if (opts.secondary) b.setAttribute('appearance', 'secondary');
  for (const [k, v] of Object.entries(opts.attrs ?? {})) b.setAttribute(k, v);
  return b;
}
