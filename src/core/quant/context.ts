import type { ModelEditor } from '../onnx/editor';
import type { ModelLocation } from '../onnx/external-data';
import type { GraphView } from '../onnx/graph';
import type { NodeProto } from '../onnx/proto';
import type { NodeDecision, QuantizeOptions, WeightFormat } from './options';
import type { QuantType } from './qtypes';

export interface ActivationQuant {
  qtype: QuantType;
  scale: number;
  zeroPoint: number;
}

/** What an op quantizer sees: the graph being edited, where weights live, options, and the decision log. */
export interface QuantContext {
  editor: ModelEditor;
  view: GraphView;
  loc: ModelLocation;
  options: QuantizeOptions;
  /** Per-node options after the recipe (bits, algorithm, ...). */
  optionsFor(node: NodeProto): QuantizeOptions;
  decide(d: NodeDecision): void;
  modulePath(node: NodeProto): string;
  /** Dequantized copies of weights already made, by `${weight}|${axis}`: shared weights are quantized once. */
  dequantized: Map<string, { output: string; scales: Float32Array }>;
  /** Integer-kernel weights already written (dynamic mode), by weight and layout: shared weights are written once. */
  integerWeights: Map<string, IntegerWeight>;
  /** Activation quantization chosen by calibration (static mode), by tensor name. */
  activations: Map<string, ActivationQuant>;
  /** Activations already given a Q/DQ pair: tensor (or its dequantized name) → dequantized name. */
  qdqOutputs: Map<string, string>;
  /** Nodes the static pass quantizes: only they read the dequantized copies of activations. */
  staticNodes: Set<NodeProto>;
  /** Activations left without Q/DQ because their rounding would reach a Log/Sqrt/division (see static/amplifiers.ts). */
  amplified: Set<string>;
  /**
   * Integer-kernel outputs (Conv, MatMul, Gemm) get their Q/DQ even when float ops read them: onnxruntime
   * then fuses the kernel, and the float island after it costs one DequantizeLinear (a "boundary").
   */
  quantizeOutputs?: boolean;
  /** Weight mode: how int8 weights are written (see QuantizeOptions.weightFormat; 'auto' is resolved before). */
  weightFormat: WeightFormat;
  /** Embedding tables as GatherBlockQuantized whatever the form ('auto' left unmeasured: see quantizeModel). */
  gatherBlocks?: boolean;
  /** Input Hessian 2XᵀX [K, K] of a MatMul from calibration (GPTQ); throws when none was collected. */
  hessian(node: NodeProto): Float64Array;
}

/** A weight written for an integer kernel: its initializers (data, scale, zero point), fidelity and size. */
export interface IntegerWeight { names: string[]; sqnr: number; bytes: number }

/** One op type's quantizer: "should I?" (a reason to skip, or undefined), then "do it". */
export interface OpQuantizer {
  check(node: NodeProto, ctx: QuantContext): string | undefined;
  apply(node: NodeProto, ctx: QuantContext): Promise<void> | void;
}
