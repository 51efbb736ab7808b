import { DataType } from '../onnx/dtypes';
import { ScratchBuffer, type ModelLocation } from '../onnx/external-data';
import type { GraphView } from '../onnx/graph';
import type { TensorProto } from '../onnx/proto';
import { makeTensor, readTensor, tensorDims, toFloat32 } from '../onnx/tensor';
import { floatToHalf } from '../onnx/half';

/** A float weight read from an initializer or a Constant node, by the value name a node consumes. */
export interface FloatWeight {
  name: string;
  tensor: TensorProto;
  dims: number[];
  /** The values as float32 (float16 weights are widened). */
  data: Float32Array;
  /** The stored type, which the dequantized weight must come back as. */
  dtype: DataType.FLOAT | DataType.FLOAT16;
}

const accepted = (t: TensorProto | undefined, half: boolean) => !!t && (t.data_type === DataType.FLOAT || (half && t.data_type === DataType.FLOAT16));

/**
 * The float weight behind `name` (float32; float16 too with `half`, for weight-only quantization of
 * float16 exports), or undefined when the value is not such a stored tensor.
 */
export function floatWeight(view: GraphView, name: string, loc: ModelLocation, half = false, scratch?: ScratchBuffer): FloatWeight | undefined {
  const t = view.constant(name);
  if (!accepted(t, half)) return undefined;
  return { name, tensor: t!, dims: tensorDims(t!, loc), data: toFloat32(readTensor(t!, loc, scratch)), dtype: t!.data_type as DataType.FLOAT | DataType.FLOAT16 };
}

/**
 * Read memory shared by the weight quantizers, which consume a weight before reading the next (external
 * data only; released after each quantization pass).
 */
export const weightScratch = new ScratchBuffer();

/** Shape of that weight without reading its data (for the quantizers' checks). */
export function floatWeightDims(view: GraphView, name: string, loc: ModelLocation, half = false): number[] | undefined {
  const t = view.constant(name);
  return accepted(t, half) ? tensorDims(t!, loc) : undefined;
}

/** Scales stored in the weight's own float type, so DequantizeLinear returns that type. */
export function scaleTensor(name: string, dtype: DataType.FLOAT | DataType.FLOAT16, dims: number[], scales: Float32Array): TensorProto {
  return dtype === DataType.FLOAT16 ? makeTensor(name, DataType.FLOAT16, dims, Uint16Array.from(scales, floatToHalf)) : makeTensor(name, DataType.FLOAT, dims, scales);
}

/** Bytes a tensor's data takes (raw), for size accounting in reports. */
export function weightBytes(dims: number[], bits: number): number {
  return Math.ceil((dims.reduce((a, b) => a * b, 1) * bits) / 8);
}
