import { attrString, intsAttr } from './attributes';
import { DataType } from './dtypes';
import type { ModelEditor } from './editor';
import type { NodeProto } from './proto';

const FLOATS = new Set<number>([DataType.FLOAT, DataType.FLOAT16]);

/**
 * The subscripts of an Einsum that is x · W: `x` the activation's term, `w` the weight's two subscripts,
 * with x's last subscript contracted against one of W's and the output x's subscripts with that one
 * replaced by W's other, in place (`bld,de->ble`, `...d,de->...e`; W either side, either way round:
 * `transposed` when W's contracted subscript comes second, as in `bld,ed->ble`). Undefined for anything
 * else: an implicit output, a diagonal, a contraction that is not x's last axis (MatMul would need the
 * activation transposed), a batch axis shared with W.
 */
export function matmulEinsum(equation: string, weightIndex: number): { transposed: boolean } | undefined {
  const eq = equation.replace(/\s+/g, '');
  const [lhs, out] = eq.split('->');
  const terms = lhs.split(',');
  if (out === undefined || terms.length !== 2) return undefined;
  const w = terms[weightIndex], x = terms[1 - weightIndex];
  const letters = (t: string) => t.replace('...', '');
  if (!/^[a-zA-Z]{2}$/.test(w) || w[0] === w[1]) return undefined;
  const xs = letters(x);
  if (!/^(\.\.\.)?[a-zA-Z]+$/.test(x) || new Set(xs).size !== xs.length) return undefined;
  const contracted = x[x.length - 1];
  const kept = w[0] === contracted ? w[1] : w[1] === contracted ? w[0] : undefined;
  if (!kept || xs.includes(kept)) return undefined;
  return out === x.slice(0, -1) + kept ? { transposed: w[1] === contracted } : undefined;
}

/**
 * Einsum layers that are a matrix product with a stored 2-D float weight (see matmulEinsum), written as
 * MatMul under the same name: Keras' EinsumDense, JAX and tf2onnx exports write their projections this
 * way, and only MatMul has integer kernels (MatMulInteger, QLinearMatMul, MatMulNBits), so static and
 * dynamic INT8 had nothing to take and 4-bit weights stayed 8-bit. A weight contracted on its second
 * axis goes through a Transpose that foldWeightOps then stores transposed. The same products, summed
 * in onnxruntime's MatMul order. Main graph only; returns how many were rewritten.
 */
export function einsumAsMatMul(editor: ModelEditor): number {
  const view = editor.view();
  let n = 0;
  for (const node of [...(editor.graph.node ?? [])]) {
    if (node.op_type !== 'Einsum' || (node.domain ?? '') !== '' || node.input?.length !== 2 || !node.output?.[0]) continue;
    const stored = node.input.map((i) => view.constant(i));
    const k = stored.findIndex((t) => t && FLOATS.has(t.data_type ?? 0) && (t.dims ?? []).length === 2);
    if (k < 0 || stored[1 - k]) continue;
    const form = matmulEinsum(attrString(node, 'equation') ?? '', k);
    if (!form) continue;
    const x = node.input[1 - k];
    let w = node.input[k];
    const before: NodeProto[] = [];
    if (form.transposed) {
      const t = editor.unique(`${w}_transposed`);
      before.push({ name: `${node.name || node.output[0]}_weight_Transpose`, op_type: 'Transpose', input: [w], output: [t], attribute: [intsAttr('perm', [1, 0])] });
      w = t;
    }
    Object.assign(node, { op_type: 'MatMul', input: [x, w], attribute: [] });
    editor.replaceNode(node, [...before, node]);
    n++;
  }
  return n;
}
