import { attrFloat } from '../onnx/attributes';
import type { ModelLocation } from '../onnx/external-data';
import type { GraphView } from '../onnx/graph';
import type { NodeProto } from '../onnx/proto';
import { clipBounds } from '../onnx/scalar-constant';

/**
 * The function of an elementwise op that never decreases (Relu, LeakyRelu with alpha ≥ 0, HardSigmoid
 * with alpha ≥ 0, Clip with constant or absent bounds), in float32 as onnxruntime computes it; else
 * undefined. Its output's extremes are f of its input's, so MinMax reads them off the input's range
 * instead of reducing the output again.
 */
export function monotoneMap(node: NodeProto, view: GraphView, loc: ModelLocation): ((x: number) => number) | undefined {
  if ((node.domain ?? '') !== '' || !node.input?.[0]) return undefined;
  const f32 = Math.fround;
  switch (node.op_type) {
    case 'Relu':
      return (x) => Math.max(0, x);
    case 'LeakyRelu': {
      const a = attrFloat(node, 'alpha', 0.01);
      return a >= 0 ? (x) => (x >= 0 ? x : f32(a * x)) : undefined;
    }
    case 'HardSigmoid': {
      const a = attrFloat(node, 'alpha', 0.2), b = attrFloat(node, 'beta', 0.5);
      return a >= 0 ? (x) => Math.max(0, Math.min(1, f32(f32(a * x) + b))) : undefined;
    }
    case 'Clip': {
      const b = clipBounds(node, view, loc);
      return b && ((x) => Math.min(b.hi, Math.max(b.lo, x)));
    }
    default:
      return undefined;
  }
}
