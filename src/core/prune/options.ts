import { isRandomData } from '../eval/metrics';
import { QuantLensError } from '../base/errors';
import type { DevicePreference } from '../runtime/session';

export type PruneMethod = 'magnitude' | 'nm' | 'structured';
/** How weights (or channels) are ranked: magnitude (L1 / L2) or magnitude weighted by the input's calibration activations. */
export type PruneImportance = 'l1' | 'l2' | 'activation';

/** Options of `prune`, typed, with every default in DEFAULT_PRUNE_OPTIONS. */
export interface PruneOptions {
  method: PruneMethod;
  /** Fraction of weights (magnitude) or of each channel group (structured) removed, in [0, 1). */
  sparsity: number;
  /**
   * magnitude: one threshold over all layers' raw scores ('global'), over scores normalised within each
   * layer ('lamp', LAMP), or the same fraction in each ('layer').
   */
  scope: 'global' | 'lamp' | 'layer';
  /** N:M: keep N of every M consecutive weights along the input dimension. */
  pattern: { n: number; m: number };
  importance: PruneImportance;
  /** magnitude, global and LAMP scopes: no layer keeps fewer than this fraction of its weights. */
  minDensity: number;
  /** Calibration data (folder or random:N): needed by --importance activation and --reconstruct. */
  calibration?: string;
  /** Shapes for inputs with dynamic dimensions (`--input-shape`). */
  inputShapes?: Record<string, number[]>;
  maxSamples: number;
  /** Training-free recovery from calibration inputs (OBS update / least-squares refit of the next layer). */
  reconstruct: boolean;
  /** Globs over module paths or node names: matching layers are left alone. */
  exclude: string[];
  /** Tile edge of the per-layer sparsity maps in the report (for the heatmap view). */
  tile: number;
  device: DevicePreference;
  /** OBS damping, as a fraction of the mean Hessian diagonal. */
  damp: number;
  /**
   * Structured: kept channel counts are multiples of this (1, the default: the exact share). 'auto':
   * convolution channels are rounded to the block onnxruntime's CPU convolutions use here
   * (cpuChannelBlock), others are not.
   */
  roundTo: number | 'auto';
  /**
   * Structured: also prune dimensions that LayerNormalization normalises over (a transformer's hidden
   * size), selecting the kept channels of model inputs with a Gather. Not exact even for unimportant
   * channels: the normalisation statistics change, as in Torch-Pruning's hidden-size pruning.
   */
  pruneNormalized: boolean;
  /**
   * Structured: fold the mean contribution of removed channels into the bias of the layer that read them
   * (means from the calibration data, or from seeded random inputs without it).
   */
  compensate: boolean;
  /**
   * Structured: every family loses the same share ('uniform'), or the least important sets go wherever they
   * are, relative to their family's mean importance ('global'), for the same total.
   */
  allocation: 'uniform' | 'global';
}

export const DEFAULT_PRUNE_OPTIONS: PruneOptions = {
  method: 'magnitude',
  sparsity: 0.5,
  // PaddleOCR rec at 30% (48 real lines, float 40 exact): LAMP 38, one raw global threshold 35, per layer 25 (activation).
  scope: 'lamp',
  pattern: { n: 2, m: 4 },
  importance: 'l1',
  minDensity: 0.02,
  maxSamples: 32,
  reconstruct: false,
  exclude: [],
  tile: 1,
  device: 'auto',
  damp: 0.01,
  roundTo: 1,
  pruneNormalized: false,
  compensate: true,
  allocation: 'uniform',
};

/** Parses '2:4' into {n: 2, m: 4}; N must be below M. */
export function parsePattern(text: string): { n: number; m: number } {
  const m = /^(\d+):(\d+)$/.exec(text.trim());
  const bad = () => new QuantLensError(undefined, `--pattern must be N:M with 0 < N < M ≤ 64 (e.g. 2:4), not '${text}'`, 'usage');
  if (!m) throw bad();
  const p = { n: Number(m[1]), m: Number(m[2]) };
  if (!(p.n > 0 && p.n < p.m && p.m <= 64)) throw bad();
  return p;
}

export function validatePruneOptions(o: PruneOptions): void {
  const bad = (m: string) => new QuantLensError(undefined, m, 'usage');
  if (!['magnitude', 'nm', 'structured'].includes(o.method)) throw bad(`--method must be magnitude, nm or structured, not '${o.method}'`);
  if (o.method !== 'nm' && !(o.sparsity >= 0 && o.sparsity < 1)) throw bad(`--sparsity must be in [0, 1), not ${o.sparsity}`);
  if (!['global', 'lamp', 'layer'].includes(o.scope)) throw bad(`--scope must be global, lamp or layer, not '${o.scope}'`);
  if (!['l1', 'l2', 'activation'].includes(o.importance)) throw bad(`--importance must be l1, l2 or activation, not '${o.importance}'`);
  if (!(o.minDensity >= 0 && o.minDensity <= 1)) throw bad(`--min-density must be in [0, 1], not ${o.minDensity}`);
  if (!(o.pattern.n > 0 && o.pattern.n < o.pattern.m)) throw bad(`--pattern must be N:M with 0 < N < M, not ${o.pattern.n}:${o.pattern.m}`);
  if ((o.importance === 'activation' || o.reconstruct) && !o.calibration) {
    throw bad(`${o.reconstruct ? '--reconstruct' : '--importance activation'} needs --calibration DIR (or random:N for seeded random data)`);
  }
  if (!(Number.isInteger(o.tile) && o.tile >= 1)) throw bad(`--tile must be a positive whole number, not ${o.tile}`);
  if (!['uniform', 'global'].includes(o.allocation)) throw bad(`--allocation must be uniform or global, not '${o.allocation}'`);
  if (o.roundTo !== 'auto' && !(Number.isInteger(o.roundTo) && o.roundTo >= 1 && o.roundTo <= 1024)) throw bad(`--round-to must be auto or a whole number from 1 to 1024, not ${o.roundTo}`);
}

/**
 * Structured pruning with real calibration data ranks channels by how loud they are where the next layer
 * reads them (--importance activation) and takes them where they matter least relative to their family
 * (--allocation global), unless the user chose: weight norms say little after a norm or a learnable scale.
 * PaddleOCR rec at 10% (64 lines calibrate, 48 others judged): l1 + uniform 0/48 lines exact, activation +
 * uniform 8/48, l1 + global 0/48, activation + global 44/48 (float 40/48). Returns what was chosen.
 */
export function applyDataDefaults(o: PruneOptions, partial: Partial<PruneOptions>): string | undefined {
  if (o.method !== 'structured' || isRandomData(o.calibration)) return undefined;
  const chosen: string[] = [];
  if (partial.importance === undefined) { o.importance = 'activation'; chosen.push('--importance activation'); }
  if (partial.allocation === undefined) { o.allocation = 'global'; chosen.push('--allocation global'); }
  return chosen.length ? `with real calibration data, structured pruning defaults to ${chosen.join(' and ')} (channels ranked by their activations, taken where they matter least); pass --importance/--allocation to choose` : undefined;
}
