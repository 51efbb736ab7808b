// A thin wrapper over acquireVsCodeApi that falls back to localStorage, so the webview code also runs
// in a plain browser page under test.
interface VsCodeApi<S> {
  postMessage(msg: unknown): void;
  getState(): S | undefined;
  setState(s: S): void;
}

declare function acquireVsCodeApi<S>(): VsCodeApi<S>;

export function vscodeApi<S>(key: string): VsCodeApi<S> {
  if (typeof acquireVsCodeApi === 'function') return acquireVsCodeApi<S>();
  return {
    postMessage: (msg) => window.dispatchEvent(new CustomEvent('quantlens-outgoing', { detail: msg })),
    getState: () => {
      const raw = localStorage.getItem(key);
      return raw ? (JSON.parse(raw) as S) : undefined;
    },
    setState: (s) => localStorage.setItem(key, JSON.stringify(s)),
  };
}
