import { DataType } from '../onnx/dtypes';
import type { ModelLocation } from '../onnx/external-data';
import type { GraphView } from '../onnx/graph';
import type { TensorProto } from '../onnx/proto';
import { readTensor, tensorDims, toFloat32 } from '../onnx/tensor';

/** A float weight read from an initializer or a Constant node, by the value name a node consumes. */
export interface FloatWeight {
  name: string;
  tensor: TensorProto;
  dims: number[];
  data: Float32Array;
}

/** The float32 weight behind `name`, or undefined when the value is not a stored float32 tensor. */
export function floatWeight(view: GraphView, name: string, loc: ModelLocation): FloatWeight | undefined {
  const t = view.constant(name);
  if (!t || t.data_type !== DataType.FLOAT) return undefined;
  return { name, tensor: t, dims: tensorDims(t, loc), data: toFloat32(readTensor(t, loc)) };
}

/** Shape of the float32 weight behind `name` without reading its data (for the quantizers' checks). */
export function floatWeightDims(view: GraphView, name: string, loc: ModelLocation): number[] | undefined {
  const t = view.constant(name);
  return t && t.data_type === DataType.FLOAT ? tensorDims(t, loc) : undefined;
}

/** Bytes a tensor's data takes (raw), for size accounting in reports. */
export function weightBytes(dims: number[], bits: number): number {
  return Math.ceil((dims.reduce((a, b) => a * b, 1) * bits) / 8);
}
