import type { NodeProto } from '../../onnx/proto';
import { attrString } from '../../onnx/attributes';
import type { QuantContext } from '../context';
import { floatWeightDims } from '../weights';
import { einsumTerms } from '../../onnx/einsum-matmul';

/**
 * An Einsum that is a layer: exactly one operand a stored float weight, the others activations (Keras'
 * EinsumDense, JAX and tf2onnx exports write projections as `bld,de->ble`). The weight's index, or
 * undefined.
 */
export function einsumWeight(node: NodeProto, ctx: QuantContext): number | undefined {
  const stored = (node.input ?? []).map((i, k) => (i && floatWeightDims(ctx.view, i, ctx.loc, true) ? k : -1)).filter((k) => k >= 0);
  return stored.length === 1 && (node.input ?? []).length > 1 ? stored[0] : undefined;
}

/**
 * The weight's output-channel axis for per-channel scales: a subscript of its own that the result keeps
 * (`e` in `bld,de->ble`), the last such. Undefined (one scale) for an ellipsis in the weight, or none.
 */
export function einsumOutputAxis(node: NodeProto, index: number): number | undefined {
  const { terms, output } = einsumTerms(attrString(node, 'equation') ?? '');
  const mine = terms[index];
  if (!mine || mine.includes('.')) return undefined;
  const others = terms.filter((_, k) => k !== index).join('');
  // Implicit output: the subscripts that appear once, in alphabetical order.
  const all = terms.join('').replace(/\./g, '');
  const out = output ?? [...new Set(all)].filter((c) => all.split(c).length === 2).sort().join('');
  let axis: number | undefined;
  [...mine].forEach((c, k) => { if (out.includes(c) && !others.includes(c)) axis = k; });
  return axis;
}
