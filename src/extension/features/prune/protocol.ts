// The prune feature's view model (summary and pruning tabs); it sends no messages of its own.
import type { SparsityMap } from '../../../core/prune/maps';
import type { QuantizeView } from '../quantize/protocol';

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
  latencyStats?: QuantizeView['latencyStats'];
  fidelity: QuantizeView['fidelity'];
  fidelityData: string;
  maps: Record<string, SparsityMap>;
  layers: Array<{ name: string; sparsity: number; shapeBefore: number[]; shapeAfter: number[] }>;
  skipped: Array<{ node: string; reason: string }>;
  /** Structured: why channel counts were rounded (onnxruntime's CPU block), when they were. */
  rounding?: string;
  /** Structured: how many layers' biases took the removed channels' mean, and from which data. */
  compensation?: { layers: number; data: string };
  warnings?: string[];
}
