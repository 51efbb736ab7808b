// The results panel: one per model, with a tab per view (summary, sensitivity, calibration, pruning, sweep,
// where time goes). Each feature owns its view model and messages (src/extension/features/*/protocol.ts);
// this file puts them together. Everything arriving from a webview is checked by isFromResultsView.
import type { PruneView } from '../extension/features/prune/protocol';
import { isQuantizeMessage, type QuantizeFromView, type QuantizeView } from '../extension/features/quantize/protocol';
import { isSensitivityMessage, type SensitivityFromView, type SensitivityToView, type SensitivityView } from '../extension/features/sensitivity/protocol';
import { isSweepMessage, type SweepFromView, type SweepToView, type SweepView } from '../extension/features/sweep/protocol';

export type { PruneView } from '../extension/features/prune/protocol';
export type { CalibrationTensorView, QuantizeView } from '../extension/features/quantize/protocol';
export type { LayerPolicy, SensitivityLayerView, SensitivityView } from '../extension/features/sensitivity/protocol';
export type { SweepView } from '../extension/features/sweep/protocol';

/** What one model's panel holds: whatever has been run on it. */
export interface ResultsSections {
  quantize?: QuantizeView;
  sensitivity?: SensitivityView;
  sweep?: SweepView;
  prune?: PruneView;
}

export const RESULTS_TABS = ['summary', 'sensitivity', 'calibration', 'pruning', 'sweep', 'time'] as const;
export type ResultsTab = (typeof RESULTS_TABS)[number];

/** What a panel keeps across reloads (webview state) and what the serializer revives it from. */
export interface ResultsState {
  /** The model (file or pipeline folder) this panel is about. */
  model: string;
  sections: ResultsSections;
  /** The tab shown. */
  tab?: ResultsTab;
  /** Module path selected in the tree (the hover's link sets it). */
  focus?: string;
}

export type ToResultsView =
  | { type: 'show'; state: ResultsState }
  | { type: 'error'; message: string }
  | SensitivityToView
  | SweepToView;

export type FromResultsView =
  | { type: 'ready' }
  | { type: 'tab'; tab: ResultsTab }
  | QuantizeFromView
  | SensitivityFromView
  | SweepFromView;

/** Accepts only the messages above, with sane fields; anything else is dropped by the caller (and logged). */
export function isFromResultsView(v: unknown): v is FromResultsView {
  if (!v || typeof v !== 'object') return false;
  const m = v as Record<string, unknown>;
  if (m.type === 'ready') return true;
  if (m.type === 'tab') return (RESULTS_TABS as readonly unknown[]).includes(m.tab);
  return isQuantizeMessage(m) || isSensitivityMessage(m) || isSweepMessage(m);
}

/** A state saved by an older version (one panel per kind: `{ data: { kind, view } }`) in today's shape. */
export function upgradeResultsState(s: unknown): ResultsState | undefined {
  if (!s || typeof s !== 'object') return undefined;
  const o = s as { model?: unknown; sections?: unknown; data?: { kind?: string; view?: Record<string, unknown> } };
  if (typeof o.model === 'string' && o.sections && typeof o.sections === 'object') return s as ResultsState;
  const d = o.data;
  if (!d?.view || !['quantize', 'sensitivity', 'sweep', 'prune'].includes(d.kind ?? '')) return undefined;
  const model = String(d.view.input ?? d.view.model ?? '');
  return { model, sections: { [d.kind!]: d.view } };
}
