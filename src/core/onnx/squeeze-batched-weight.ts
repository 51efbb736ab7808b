import { DataType } from './dtypes';
import type { ModelEditor } from './editor';
import { onnx } from './proto';
import { int64Tensor } from './tensor';

const FLOATS = new Set<number>([DataType.FLOAT, DataType.FLOAT16]);

/**
 * MatMul(x, W) with a stored float W of shape [1, …, 1, K, N] (some exporters keep a batch axis of one):
 * W is read as [K, N] and the product expanded back to W's rank. Expand with ones broadcasts as MatMul
 * did: leading ones where x has fewer axes than W, nothing where it has as many. MatMulInteger's zero
 * point per column and MatMulNBits take 2-D weights only, so such a layer was refused by dynamic and
 * 4-bit modes and got one scale in the others. The stored bytes are shared, not copied (external data
 * too). Returns how many layers were rewritten.
 */
export function squeezeBatchedWeights(editor: ModelEditor): number {
  if (editor.opset() < 8) return 0; // Expand needs opset 8
  const view = editor.view();
  let n = 0;
  for (const node of [...(editor.graph.node ?? [])]) {
    if (node.op_type !== 'MatMul' || (node.domain ?? '') !== '' || !node.input?.[1] || !node.output?.[0]) continue;
    const w = view.constant(node.input[1]);
    const dims = (w?.dims ?? []).map(Number);
    if (!w || dims.length < 3 || !dims.slice(0, -2).every((d) => d === 1) || !FLOATS.has(w.data_type ?? 0)) continue;
    const flat = editor.addInitializer(onnx.TensorProto.create({ ...w, name: `${node.input[1]}_2d`, dims: dims.slice(-2) }));
    const ones = editor.addInitializer(int64Tensor(`${node.name || node.output[0]}_expand_shape`, dims.map(() => 1)));
    const out = node.output[0];
    const product = editor.unique(`${out}_2d`);
    node.input = [node.input[0], flat];
    node.output = [product];
    editor.replaceNode(node, [node, { name: `${node.name || out}_Expand`, op_type: 'Expand', input: [product, ones], output: [out] }]);
    n++;
  }
  return n;
}
