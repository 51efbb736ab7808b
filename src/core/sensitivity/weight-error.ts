import { GraphView } from '../onnx/graph';
import { onnx, type ModelProto } from '../onnx/proto';
import { LAYER_OPS } from '../onnx/layer-ops';

// Layers linear in their weight: y(W) − y(W') = y(W − W') with the bias left out.

/**
 * A weight-only copy of a one-node layer rewritten to compute its error directly: the node reads
 * DequantizeLinear(weight) − weight and no bias, so its output is ŷ − y. onnxruntime folds the
 * difference at load; the comparison then needs no subtraction and does not read the float output (nor
 * the layout conversion of it that reading forces). `floatWeight` is the float model's initializer the
 * layer reads. Undefined when the copy is not that shape (a packed
 * MatMulNBits, several nodes, a weight made by other nodes): compare it with the float output instead.
 */
export function weightErrorPart(part: ModelProto, floatWeight: string): ModelProto | undefined {
  const g = part.graph!;
  const view = new GraphView(g);
  const layers = (g.node ?? []).filter((n) => LAYER_OPS.has(n.op_type ?? '') && !n.domain);
  if (layers.length !== 1) return undefined;
  const layer = layers[0];
  const dq = view.producer.get(layer.input?.[1] ?? '');
  if (!dq || dq.op_type !== 'DequantizeLinear' || !(dq.input ?? []).every((i) => !i || view.constant(i))) return undefined;
  if ((g.node ?? []).some((n) => n !== layer && n !== dq && n.op_type !== 'Constant')) return undefined;
  const delta = `${layer.input![1]}_minus_float`;
  const rest = (g.node ?? []).filter((n) => n !== layer);
  return onnx.ModelProto.create({
    ...part,
    graph: {
      ...g,
      // The float weight is a graph input: merged, it is the float model's own initializer.
      input: [...(g.input ?? []), { name: floatWeight, type: { tensor_type: { elem_type: 1 } } }],
      node: [...rest,
        { name: `${layer.name}_weight_error`, op_type: 'Sub', input: [layer.input![1], floatWeight], output: [delta] },
        { ...layer, input: [layer.input![0], delta] }],
    },
  });
}
