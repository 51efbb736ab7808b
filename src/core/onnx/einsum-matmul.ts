import { attrString, intsAttr } from './attributes';
import { DataType } from './dtypes';
import type { ModelEditor } from './editor';
import type { NodeProto } from './proto';
import { int64Tensor } from './tensor';

const FLOATS = new Set<number>([DataType.FLOAT, DataType.FLOAT16]);

/** An Einsum equation's operand terms and its explicit output (undefined when implicit), spaces dropped. */
export function einsumTerms(equation: string): { terms: string[]; output?: string } {
  const [lhs, output] = equation.replace(/\s+/g, '').split('->');
  return { terms: lhs.split(','), output };
}

/**
 * How an Einsum of an activation x and a stored weight W is x · W: x's last `contracted` axes are summed
 * against W's axes of the same subscripts, in the same order, and the output is x's other axes followed by
 * W's `kept` ones (`bld,de->ble`; Keras' EinsumDense `abc,cde->abde` splits the output into heads,
 * `abcd,cde->abe` merges them). `weightFirst`: W's kept axes come before its contracted ones (`bld,ed->ble`:
 * W is read transposed). `xRank`: x's rank, undefined with an ellipsis (then only one axis each way, which
 * needs no Reshape). Undefined for anything else: an implicit output, a diagonal, a contraction that is not
 * x's trailing axes (MatMul would need the activation transposed), a batch axis shared with W.
 */
export function matmulEinsum(equation: string, weightIndex: number): { contracted: number; kept: number; weightFirst: boolean; xRank?: number } | undefined {
  const { terms, output: out } = einsumTerms(equation);
  if (out === undefined || terms.length !== 2) return undefined;
  const w = terms[weightIndex], x = terms[1 - weightIndex];
  const xs = x.replace(/^\.\.\./, '');
  if (!/^[a-zA-Z]{2,}$/.test(w) || new Set(w).size !== w.length || !/^[a-zA-Z]+$/.test(xs) || new Set(xs).size !== xs.length) return undefined;
  const shared = [...w].filter((c) => xs.includes(c)), own = [...w].filter((c) => !xs.includes(c));
  if (!shared.length || !own.length) return undefined;
  const ellipsis = x.length !== xs.length;
  if (ellipsis && (shared.length > 1 || own.length > 1)) return undefined;
  // x's trailing axes are the contracted ones, in W's order; W is [contracted, kept] or [kept, contracted].
  const c = xs.slice(-shared.length), k = own.join('');
  if (c !== shared.join('') || (w !== c + k && w !== k + c)) return undefined;
  if (out !== x.slice(0, x.length - c.length) + k) return undefined;
  return { contracted: c.length, kept: k.length, weightFirst: w === k + c, ...(ellipsis ? {} : { xRank: xs.length }) };
}

/**
 * Einsum layers that are a matrix product with a stored float weight (see matmulEinsum), written as MatMul
 * under the same name: Keras' EinsumDense, JAX and tf2onnx exports write their projections this way, and
 * only MatMul has integer kernels (MatMulInteger, QLinearMatMul, MatMulNBits), so static and dynamic INT8
 * had nothing to take and 4-bit weights stayed 8-bit. The weight is reshaped to 2-D (and transposed when
 * its kept axes come first) by nodes that foldWeightOps then evaluates into a stored weight; merged
 * contracted axes of x and split kept axes of the output are Reshapes of views. The same products, summed in
 * onnxruntime's MatMul order. Main graph only; returns how many were rewritten.
 */
export function einsumAsMatMul(editor: ModelEditor): number {
  const view = editor.view();
  let n = 0;
  for (const node of binaryEinsums(editor)) {
    const stored = node.input.map((i) => view.constant(i));
    const k = stored.findIndex((t) => t && FLOATS.has(t.data_type ?? 0) && (t.dims ?? []).length >= 2);
    if (k < 0 || stored[1 - k]) continue;
    const form = matmulEinsum(attrString(node, 'equation') ?? '', k);
    const dims = (stored[k]!.dims ?? []).map(Number);
    if (!form || dims.length !== form.contracted + form.kept) continue;
    const base = node.name || node.output[0];
    const [cDims, kDims] = form.weightFirst ? [dims.slice(form.kept), dims.slice(0, form.kept)] : [dims.slice(0, form.contracted), dims.slice(form.contracted)];
    const size = (d: number[]) => d.reduce((a, b) => a * b, 1);
    const reshape = (name: string, input: string, shape: number[], output: string): NodeProto =>
      ({ name, op_type: 'Reshape', input: [input, editor.addInitializer(int64Tensor(`${name}_shape`, shape))], output: [output] });
    const before: NodeProto[] = [], after: NodeProto[] = [];
    let w = node.input[k];
    if (dims.length > 2) {
      const flat = editor.unique(`${w}_2d`);
      before.push(reshape(`${base}_weight_Reshape`, w, form.weightFirst ? [size(kDims), size(cDims)] : [size(cDims), size(kDims)], flat));
      w = flat;
    }
    if (form.weightFirst) {
      const t = editor.unique(`${w}_transposed`);
      before.push({ name: `${base}_weight_Transpose`, op_type: 'Transpose', input: [w], output: [t], attribute: [intsAttr('perm', [1, 0])] });
      w = t;
    }
    let x = node.input[1 - k];
    // x's contracted axes merged into one (the others copied: a 0 in Reshape's shape keeps that axis).
    if (form.contracted > 1) {
      const merged = editor.unique(`${x}_merged`);
      before.push(reshape(`${base}_input_Reshape`, x, [...Array<number>(form.xRank! - form.contracted).fill(0), -1], merged));
      x = merged;
    }
    // The product's last axis split into W's kept axes.
    const out = node.output[0];
    if (form.kept > 1) {
      const product = editor.unique(`${out}_2d`);
      after.push(reshape(`${base}_output_Reshape`, product, [...Array<number>(form.xRank! - form.contracted).fill(0), ...kDims], out));
      node.output = [product];
    }
    Object.assign(node, { op_type: 'MatMul', input: [x, w], attribute: [] });
    editor.replaceNode(node, [...before, node, ...after]);
    n++;
  }
  return n;
}

/**
 * How an Einsum of two activations is a (batched) matrix product: `a` is P·i·k, `b` is P·k·j (or P·j·k,
 * read transposed) and the output P·i·j, for a shared prefix P of batch axes: attention's scores
 * (`bhqd,bhkd->bhqk`) and its mix (`bhqk,bhkd->bhqd`). Undefined for anything else (an ellipsis, a
 * repeated or summed-away subscript, batch axes in another order, `a` read transposed).
 */
export function activationMatmulEinsum(equation: string): { transposeB: boolean; rank: number } | undefined {
  const { terms, output } = einsumTerms(equation);
  if (output === undefined || terms.length !== 2) return undefined;
  const [a, b] = terms;
  const plain = (t: string) => /^[a-zA-Z]{2,}$/.test(t) && new Set(t).size === t.length;
  if (![a, b, output].every(plain) || b.length !== a.length || output.length !== a.length) return undefined;
  const n = a.length, batch = a.slice(0, n - 2);
  const [i, k, j] = [a[n - 2], a[n - 1], output[n - 1]];
  if (b.slice(0, n - 2) !== batch || output !== batch + i + j || new Set([...batch, i, j, k]).size !== n + 1) return undefined;
  if (b.slice(n - 2) === k + j) return { transposeB: false, rank: n };
  if (b.slice(n - 2) === j + k) return { transposeB: true, rank: n };
  return undefined;
}

/**
 * Einsums of two activations that are batched matrix products (see activationMatmulEinsum), written as
 * MatMul under the same name, the second operand transposed first where it is read that way: static INT8
 * then runs attention's products as integer kernels (an Einsum has none). Main graph only; returns how
 * many were rewritten.
 */
export function activationEinsumsAsMatMul(editor: ModelEditor): number {
  const view = editor.view();
  let n = 0;
  for (const node of binaryEinsums(editor)) {
    if (node.input.some((i) => !i || view.constant(i))) continue;
    const form = activationMatmulEinsum(attrString(node, 'equation') ?? '');
    if (!form) continue;
    const before: NodeProto[] = [];
    let b = node.input[1];
    if (form.transposeB) {
      const t = editor.unique(`${b}_transposed`);
      const perm = [...Array(form.rank - 2).keys(), form.rank - 1, form.rank - 2];
      before.push({ name: `${node.name || node.output[0]}_Transpose`, op_type: 'Transpose', input: [b], output: [t], attribute: [intsAttr('perm', perm)] });
      b = t;
    }
    Object.assign(node, { op_type: 'MatMul', input: [node.input[0], b], attribute: [] });
    editor.replaceNode(node, [...before, node]);
    n++;
  }
  return n;
}

/** The main graph's Einsums of two operands with an output (the only ones written as MatMul), listed before any is rewritten. */
function binaryEinsums(editor: ModelEditor): Array<NodeProto & { input: string[]; output: string[] }> {
  return (editor.graph.node ?? []).filter((n): n is NodeProto & { input: string[]; output: string[] } => n.op_type === 'Einsum' && (n.domain ?? '') === '' && n.input?.length === 2 && !!n.output?.[0]);
}
