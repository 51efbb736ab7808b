// Messages between the Model summary panel and its webview. Both sides import this module.
import type { ModelSummary } from '../core/inspect';

export type ToModelSummaryView =
  | { type: 'show'; summary: ModelSummary }
  | { type: 'error'; message: string };

export type FromModelSummaryView =
  | { type: 'ready' }
  | { type: 'openFile'; file: string };

/** Webview messages are untrusted input: anything that is not exactly one of these is dropped. */
export function isFromModelSummaryView(v: unknown): v is FromModelSummaryView {
  if (!v || typeof v !== 'object') return false;
  const m = v as Record<string, unknown>;
  if (m.type === 'ready') return Object.keys(m).length === 1;
  return m.type === 'openFile' && typeof m.file === 'string' && Object.keys(m).length === 2;
}

/** State the webview keeps with setState so the panel restores after a reload. */
export interface ModelSummaryState {
  summary?: ModelSummary;
}
