// The sweep feature's view model and messages (the sweep tab). No `vscode` import: the page uses it too.
import type { SweepPoint, SweepReport } from '../../../core/prune/sweep';

export interface SweepView {
  model: string;
  method: string;
  baseline?: SweepReport['baseline'];
  points: SweepPoint[];
  done: boolean;
  /** The data the points' fidelity is measured on (`random:N` when none was given). */
  fidelityData?: string;
  /** The point the user kept (its model copied beside the input). */
  kept?: number;
}

/** From the page: keep the model of one point. */
export type SweepFromView = { type: 'keepPoint'; sparsity: number };

/** To the page: a point as it arrives, the end of the sweep (with the float model's numbers), the kept point. */
export type SweepToView = { type: 'point'; point: SweepPoint } | { type: 'sweepDone'; baseline?: SweepReport['baseline'] } | { type: 'kept'; sparsity: number };

export function isSweepMessage(m: Record<string, unknown>): m is SweepFromView {
  return m.type === 'keepPoint' && typeof m.sparsity === 'number' && m.sparsity >= 0 && m.sparsity < 1;
}
