// Messages between the extension and the results panels (quantize summary + calibration, sensitivity
// tree, sweep chart, pruning heatmaps). Everything arriving from a webview is checked by
// isFromResultsView before use.
import type { FidelityMetrics } from '../core/eval/metrics';
import type { OpTimeProfile } from '../core/eval/op-time';
import type { SweepPoint } from '../core/prune/sweep';
import type { TensorCalibration } from '../core/quant/static/calibrate';

export type ResultsKind = 'quantize' | 'sensitivity' | 'sweep' | 'prune';

/** One calibrated tensor as the calibration view shows it (the report's own record, minus its scale). */
export type CalibrationTensorView = Omit<TensorCalibration, 'scale' | 'zeroPoint'>;

export interface QuantizeView {
  input: string;
  output: string;
  mode: string;
  device: string;
  sizeBefore: number;
  sizeAfter: number;
  latencyMs: { reference: number; candidate: number };
  fidelity: Record<string, FidelityMetrics>;
  /** The samples fidelity was measured on (`random:N`: not the user's data, and the view says so). */
  fidelityData: string;
  quantized: number;
  skipped: Array<{ node: string; reason: string }>;
  warnings: string[];
  calibration?: { method: string; source: string; samples: number; tensors: CalibrationTensorView[] };
  /** Where the time goes: kernel ms per run by operator type, float and quantized (onnxruntime's profiler). */
  profile?: { reference: OpTimeProfile; candidate: OpTimeProfile };
  /** --objective latency: each static placement timed beside float and scored, and the one written. */
  placement?: { chosen: string; boundaries?: boolean; heavyOnly?: boolean; floatMs: number; candidates: Array<{ placement: string; boundaries?: boolean; heavyOnly?: boolean; nodes: number; latencyMs: number; drop: number; nsr: number; faithful: boolean }> };
  sensitivityReport?: string;
}

export interface SensitivityLayerView {
  name: string;
  opType: string;
  parameters: number;
  sensitivity: number;
  sensitivityDb: number;
  rank: number;
  split?: { weight: number; activation: number };
  reverse?: number;
  ranges?: { input?: [number, number]; output?: [number, number] };
}

export interface SensitivityView {
  report: string;
  model: string;
  method: string;
  scheme: string;
  layers: SensitivityLayerView[];
}

export interface SweepView {
  model: string;
  method: string;
  baseline?: { sizeBytes: number; latencyMs: number; parameters: number };
  points: SweepPoint[];
  done: boolean;
  /** The data the points' fidelity is measured on (`random:N` when none was given). */
  fidelityData?: string;
}

export interface PruneView {
  input: string;
  output: string;
  method: string;
  sparsity: number;
  parametersBefore: number;
  parametersAfter: number;
  sizeBefore: number;
  sizeAfter: number;
  latencyMs: { reference: number; candidate: number };
  fidelity: QuantizeView['fidelity'];
  fidelityData: string;
  maps: Record<string, { tile: [number, number]; rows: number; cols: number; density: number[]; magnitude: number[] }>;
  layers: Array<{ name: string; sparsity: number; shapeBefore: number[]; shapeAfter: number[] }>;
  skipped: Array<{ node: string; reason: string }>;
  /** Structured: why channel counts were rounded (onnxruntime's CPU block), when they were. */
  rounding?: string;
  /** Structured: how many layers' biases took the removed channels' mean, and from which data. */
  compensation?: { layers: number; data: string };
  warnings?: string[];
}

export type ResultsData =
  | { kind: 'quantize'; view: QuantizeView }
  | { kind: 'sensitivity'; view: SensitivityView }
  | { kind: 'sweep'; view: SweepView }
  | { kind: 'prune'; view: PruneView };

/** What a panel keeps across reloads (webview state) and what the serializer revives it from. */
export interface ResultsState {
  data: ResultsData;
  /** Module path selected in the tree (the hover's link sets it). */
  focus?: string;
}

export type ToResultsView =
  | { type: 'show'; state: ResultsState }
  | { type: 'point'; point: SweepPoint }
  | { type: 'sweepDone' }
  | { type: 'focus'; layer: string }
  | { type: 'error'; message: string };

export type LayerPolicy = 'float' | 'int8' | 'int4';

export type FromResultsView =
  | { type: 'ready' }
  | { type: 'saveRecipe'; rules: Array<{ module: string; policy: LayerPolicy }>; rerun: boolean }
  | { type: 'keepPoint'; sparsity: number }
  | { type: 'openLayer'; layer: string };

const isStr = (v: unknown): v is string => typeof v === 'string' && v.length < 4096;

/** Accepts only the messages above, with sane fields; anything else is dropped by the caller (and logged). */
export function isFromResultsView(v: unknown): v is FromResultsView {
  if (!v || typeof v !== 'object') return false;
  const m = v as Record<string, unknown>;
  switch (m.type) {
    case 'ready': return true;
    case 'keepPoint': return typeof m.sparsity === 'number' && m.sparsity >= 0 && m.sparsity < 1;
    case 'openLayer': return isStr(m.layer);
    case 'saveRecipe':
      return typeof m.rerun === 'boolean' && Array.isArray(m.rules) && m.rules.length <= 100_000 && m.rules.every((r) => {
        const x = r as Record<string, unknown>;
        return !!x && isStr(x.module) && /^[\w.\-/:*]+$/.test(x.module as string) && ['float', 'int8', 'int4'].includes(x.policy as string);
      });
    default: return false;
  }
}
