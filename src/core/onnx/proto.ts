// The generated protobufjs codec for ONNX, with 64-bit integers decoded as plain numbers:
// dims, opset versions and offsets all fit in 2^53, and numbers keep the graph code simple.
import * as protobuf from 'protobufjs/minimal';
import { onnx } from './generated/onnx';

protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

export { onnx };
export type ModelProto = onnx.ModelProto;
export type GraphProto = onnx.IGraphProto;
export type NodeProto = onnx.INodeProto;
export type TensorProto = onnx.ITensorProto;
export type AttributeProto = onnx.IAttributeProto;
export type ValueInfoProto = onnx.IValueInfoProto;
export type FunctionProto = onnx.IFunctionProto;
export const AttributeType = onnx.AttributeProto.AttributeType;
