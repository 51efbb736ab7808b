import { int8Saturates } from '../runtime/cpu-block';
import type { DevicePreference } from '../runtime/session';

export type QuantMode = 'weight' | 'dynamic' | 'static';
export const WEIGHT_FORMATS = ['dequantize', 'nbits', 'expand', 'nbits+expand'] as const;
export type WeightFormat = typeof WEIGHT_FORMATS[number];
export type WeightFormatOption = 'auto' | WeightFormat;
export type WeightAlgorithm = 'rtn' | 'gptq';
export type { CalibrationMethod } from '../calib/calibrators';
import type { CalibrationMethod } from '../calib/calibrators';

/** Options of `quantize`, typed, with every default in DEFAULT_QUANTIZE_OPTIONS. */
export interface QuantizeOptions {
  mode: QuantMode;
  bits: 8 | 4;
  /** Block size along K for 4-bit weights (power of two, 16..256). */
  blockSize: number;
  algorithm: WeightAlgorithm;
  perChannel: boolean;
  /** Force symmetric ranges everywhere; otherwise int8 weights are symmetric, int4 weights and activations affine. */
  symmetric: boolean;
  /** Folder, or `random:N` for seeded random samples (marked in the report). */
  calibration?: string;
  /** Shapes for inputs with dynamic dimensions (`--input-shape`): random samples take them, images are resized to them. */
  inputShapes?: Record<string, number[]>;
  calibrationMethod: CalibrationMethod;
  /** Percentile kept by the percentile method (e.g. 99.99). */
  percentile: number;
  /** Histogram bins for entropy/percentile/MSE. */
  bins: number;
  /**
   * Histogram methods: bin a strided pick of about this many values of each tensor per sample (default
   * 16384), with the extremes and every value past a tail threshold exact (see captureSampled); 0 bins every
   * value. Tensors within the pick count are binned whole either way.
   */
  histogramValues: number;
  /**
   * Static mode: 'compute' quantizes weight layers, pooling and data movement; 'residual' also Adds of two
   * activations (int8 chains through ResNet-style blocks); 'all' every Add/Mul. 'auto': with --objective
   * latency, 'compute' and 'residual' are built, timed against the float model and scored, and the fastest
   * that keeps the fidelity of 'compute' is written; otherwise 'compute'.
   */
  staticOps: 'auto' | 'compute' | 'residual' | 'all';
  /** What to favour: a model no slower than float ('latency', the default), the smallest ('size'), or the most faithful ('accuracy'). */
  objective: 'latency' | 'size' | 'accuracy';
  /**
   * Weight mode: how the int8 weights are written. 'dequantize': a DequantizeLinear before each layer (int8
   * in memory, dequantized every run); 'nbits': 2-D MatMul weights as com.microsoft::MatMulNBits 8-bit with
   * int8 compute (accuracy_level 4), embedding tables as GatherBlockQuantized, the others dequantized; 'expand': int8 in the file, expanded to float
   * once when onnxruntime loads the model (Cast + Mul, constant-folded: float's speed and memory);
   * 'nbits+expand'. 'auto': the forms are timed beside the float model and the fastest faithful one is
   * written; under --objective size only the two with int8 in memory, under accuracy not 'nbits'.
   */
  weightFormat: WeightFormatOption;
  /** 7-bit weights for integer kernels (static, dynamic); 'auto': where this CPU's int8 kernels saturate (no VNNI). */
  reduceRange: 'auto' | 'on' | 'off';
  /** Static mode: SmoothQuant-style per-channel smoothing of Conv/MatMul/Gemm inputs where it is estimated to help. */
  /** 'separate': its statistics in a pass of their own before the histograms (see calibrateWithSmoothing). */
  smoothing: 'auto' | 'off' | 'separate';
  /** Maximum calibration samples used. */
  maxSamples: number;
  /** GPTQ damping, as a fraction of the mean Hessian diagonal. */
  gptqDamp: number;
  gptqActOrder: boolean;
  /** Globs over module paths or node names; matching nodes stay float. */
  exclude: string[];
  /** Per-module rules file (YAML or JSON). */
  recipe?: string;
  device: DevicePreference;
  /** Largest allowed drop from the float model (1 − cosine, or 1 − top-1 agreement): layers stay float as needed. */
  budget?: number;
  budgetMetric: 'cosine' | 'top1' | 'task';
  /** Quantize least sensitive layers first, step by step, keeping the whole curve. */
  progressive: boolean;
  progressiveSteps: number;
  /** A user metric for --budget/--progressive: shell command with {model}; see src/core/eval/user-evaluator.ts. */
  evaluator?: string;
  evaluatorLowerIsBetter?: boolean;
  evaluatorTimeoutSeconds?: number;
  /** Pipelines (a folder of ONNX files): held-apart images and prompts the quantized pipeline is judged on. */
  evalData?: string;
}

export const DEFAULT_QUANTIZE_OPTIONS: QuantizeOptions = {
  mode: 'weight',
  bits: 8,
  blockSize: 32,
  algorithm: 'rtn',
  perChannel: true,
  symmetric: false,
  calibrationMethod: 'mse',
  percentile: 99.99,
  bins: 2048,
  histogramValues: 16384,
  smoothing: 'auto',
  reduceRange: 'auto',
  staticOps: 'auto',
  objective: 'latency',
  weightFormat: 'auto',
  maxSamples: 64,
  gptqDamp: 0.01,
  gptqActOrder: false,
  exclude: [],
  device: 'auto',
  budgetMetric: 'cosine',
  progressive: false,
  progressiveSteps: 8,
};

/** The weight format when none was measured: the one asked for, else int8 in memory. */
export const resolvedWeightFormat = (o: Pick<QuantizeOptions, 'weightFormat'>): WeightFormat => (o.weightFormat === 'auto' || !o.weightFormat ? 'dequantize' : o.weightFormat);

/** What quantize decided for one node. */
export interface NodeDecision {
  node: string;
  opType: string;
  modulePath: string;
  /** e.g. 'int8 per-channel weight (DequantizeLinear)', 'MatMulNBits int4 block 32 (gptq)'. */
  how?: string;
  skipped?: string;
  weightBytesBefore?: number;
  weightBytesAfter?: number;
  /** SQNR of the weight after quantization, dB. */
  weightSqnr?: number;
  /** Not quantized: a float layer whose weight is stored float16 (kept float for speed in static mode). */
  float16Storage?: true;
}

/** Whether weights feeding integer kernels get 7 bits under these options (see int8Saturates). */
export function reducesRange(o: Pick<QuantizeOptions, 'reduceRange'>): boolean {
  return o.reduceRange === 'on' || (o.reduceRange === 'auto' && int8Saturates().saturates);
}
