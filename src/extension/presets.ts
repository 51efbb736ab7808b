// The editor's pickers as data (no vscode here, so unit tests check every choice against the jobs'
// option declarations, the same ones the CLI and the engine use).
import { choicesOf } from '../core/jobs/options/commands';
import type { PruneOptions } from '../core/prune/options';
import type { QuantizeOptions } from '../core/quant/options';

/** What the quantize flow asks; tests and other commands pass it to skip the questions. */
export interface QuantizePreset {
  mode: QuantizeOptions['mode'];
  bits?: 8 | 4;
  algorithm?: QuantizeOptions['algorithm'];
  calibration?: string;
  /** A pipeline folder: held-apart images and prompts its generation is judged on. */
  evalData?: string;
  recipe?: string;
  budget?: number;
  progressive?: boolean;
  /** Also analyse per-layer sensitivity (default true) so the tree opens with the results. */
  sensitivity?: boolean;
  label?: string;
}

export interface ModeChoice { label: string; detail: string; preset: QuantizePreset; suffix: string; needsData: boolean }

export const MODES: ModeChoice[] = [
  { label: 'Weight-only INT8', detail: 'int8 weights, float activations: the safe first step', preset: { mode: 'weight', bits: 8 }, suffix: 'int8', needsData: false },
  { label: 'Weight-only INT4 (GPTQ)', detail: 'MatMulNBits, error-compensated with calibration data', preset: { mode: 'weight', bits: 4, algorithm: 'gptq' }, suffix: 'int4', needsData: true },
  { label: 'Weight-only INT4 (round to nearest)', detail: 'MatMulNBits, no data needed', preset: { mode: 'weight', bits: 4, algorithm: 'rtn' }, suffix: 'int4-rtn', needsData: false },
  { label: 'Dynamic INT8', detail: 'activations quantized at run time (MatMulInteger)', preset: { mode: 'dynamic', bits: 8 }, suffix: 'dynamic', needsData: false },
  { label: 'Static INT8 (calibrated)', detail: 'QDQ on weights and activations, ranges from your data', preset: { mode: 'static', bits: 8 }, suffix: 'static', needsData: true },
  { label: 'Auto: mixed precision under an accuracy budget', detail: 'static INT8, the fewest sensitive layers kept float', preset: { mode: 'static', bits: 8, budget: 0.01 }, suffix: 'mixed', needsData: true },
  { label: 'Progressive', detail: 'least sensitive layers first, step by step, with the curve', preset: { mode: 'static', bits: 8, progressive: true }, suffix: 'progressive', needsData: true },
];

/** The user's settings that reach a quantize request. */
export interface QuantizeSettings {
  device?: QuantizeOptions['device'];
  calibrationMethod?: QuantizeOptions['calibrationMethod'];
  evaluator?: { command: string; lowerIsBetter: boolean };
}

/** A quantize request's options from a preset and the settings: only options that apply to its mode. */
export function quantizeOptions(choice: QuantizePreset, s: QuantizeSettings): Partial<QuantizeOptions> {
  const measured = choice.budget !== undefined || !!choice.progressive;
  return {
    mode: choice.mode, bits: choice.bits, algorithm: choice.algorithm, calibration: choice.calibration, recipe: choice.recipe, budget: choice.budget,
    progressive: choice.progressive, device: s.device,
    ...(choice.mode === 'static' || choice.recipe ? { calibrationMethod: s.calibrationMethod } : {}),
    ...(measured && s.evaluator ? { evaluator: s.evaluator.command, evaluatorLowerIsBetter: s.evaluator.lowerIsBetter } : {}),
  };
}

/** Prune command's method picks: the declared methods, and structured's variants. */
export interface PrunePick { label: string; detail: string; method: PruneOptions['method']; extra?: Partial<PruneOptions> }
export function prunePicks(): PrunePick[] {
  const m = choicesOf('prune', 'method');
  return [
    { label: 'structured', detail: `${m.structured}, exact for dead channels`, method: 'structured' },
    { label: 'structured, hidden sizes too', detail: 'also the dimensions LayerNorm normalises over (--prune-norm): faster still, approximate', method: 'structured', extra: { pruneNormalized: true } },
    { label: 'structured, CPU-aligned channels', detail: "conv channel counts in multiples of onnxruntime's CPU block (--round-to auto): padded counts can cost what pruning saves", method: 'structured', extra: { roundTo: 'auto' } },
    { label: 'magnitude', detail: m.magnitude, method: 'magnitude' },
    { label: 'nm', detail: `2:4 — ${m.nm}`, method: 'nm' },
  ];
}

/** A prune request's options from a pick: N:M takes its pattern, not a sparsity. */
export function pruneOptions(pick: PrunePick, sparsity: number): Partial<PruneOptions> {
  return { method: pick.method, ...(pick.method === 'nm' ? {} : { sparsity }), ...pick.extra };
}

/** Sweep's method picks, as the sweep job declares them. */
export const sweepPicks = () => Object.entries(choicesOf('sweep', 'method')).map(([label, detail]) => ({ label, detail }));
