import { attrInt, attrInts, attrTensor } from './attributes';
import type { GraphView } from './graph';
import type { NodeProto } from './proto';
import { intsConstant } from './scalar-constant';

const SAME_RANK = new Set(['Relu', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Neg', 'Abs', 'Sqrt', 'Reciprocal', 'Floor', 'Ceil', 'LeakyRelu', 'Elu', 'Selu', 'PRelu',
  'HardSigmoid', 'HardSwish', 'Softplus', 'Softsign', 'Clip', 'Dropout', 'BatchNormalization', 'InstanceNormalization', 'LayerNormalization', 'LRN', 'Softmax', 'LogSoftmax', 'Hardmax',
  'Cast', 'Identity', 'Conv', 'ConvTranspose', 'MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool', 'Upsample', 'Resize',
  'Pad', 'Transpose', 'Tile', 'Slice', 'Split', 'Not', 'Erf', 'ImageScaler', 'Scale', 'Affine', 'Crop', 'MeanVarianceNormalization', 'Concat', 'TopK',
  'QuantizeLinear', 'DequantizeLinear']);
/** Ops whose output has the largest of their inputs' ranks (numpy broadcasting; the legacy broadcast attribute too). */
const BROADCASTING = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'And', 'Or', 'Xor', 'Equal', 'Greater', 'Less', 'Sum', 'Max', 'Min', 'Mean', 'Where']);

/**
 * The ranks of a graph's values, where the graph declares them or they follow from its inputs through
 * ops whose output rank does not depend on data (a Reshape to a constant shape, Flatten, Gemm, reductions
 * over constant axes). Values it cannot tell are absent.
 */
export function inferRanks(view: GraphView): Map<string, number> {
  const graph = view.graph;
  const ranks = new Map<string, number>();
  for (const v of [...(graph.input ?? []), ...(graph.value_info ?? []), ...(graph.output ?? [])]) {
    const shape = v.type?.tensor_type?.shape;
    if (shape?.dim) ranks.set(v.name ?? '', shape.dim.length);
  }
  for (const t of graph.initializer ?? []) ranks.set(t.name ?? '', (t.dims ?? []).length);
  // How many axes an attribute or a constant input lists: undefined when there are none, NaN (no rank
  // follows) when a computed input lists them.
  const axesCount = (n: NodeProto, k: number): number | undefined => {
    const a = attrInts(n, 'axes');
    if (a) return a.length;
    const name = n.input?.[k];
    if (!name) return undefined;
    const c = view.constant(name);
    return c ? Number(c.dims?.[0] ?? 1) : NaN;
  };
  // The lengths of 1-D integer values built from shapes and constants (a Reshape's target written as
  // Concat(Slice(Shape(x)), constant), as Paddle exports do): a Reshape to one has that many dimensions.
  const lengths = new Map<string, number>();
  const lengthOf = (name: string | undefined): number | undefined => {
    if (!name) return undefined;
    const c = view.constant(name);
    return c ? ((c.dims ?? []).length === 1 ? Number(c.dims![0]) : undefined) : lengths.get(name);
  };
  const ints = (name: string | undefined) => intsConstant(view, undefined, name);
  for (const n of graph.node ?? []) {
    const op = n.op_type ?? '', r = (k: number) => ranks.get(n.input?.[k] ?? '');
    let length: number | undefined;
    if (op === 'Shape' && r(0) !== undefined) length = sliceLength(r(0)!, attrInt(n, 'start', 0), attrInt(n, 'end', r(0)!));
    else if (op === 'Cast' || op === 'Identity') length = lengthOf(n.input?.[0]);
    else if (op === 'Concat' && attrInt(n, 'axis', 0) === 0) { const l = (n.input ?? []).map(lengthOf); length = l.every((x) => x !== undefined) ? l.reduce((a, b) => a! + b!, 0) : undefined; }
    else if (op === 'Unsqueeze' && r(0) === 0) length = 1;
    else if (op === 'Gather' && r(0) === 1 && view.constant(n.input?.[1] ?? '')) length = lengthOf(n.input?.[1]);
    else if (op === 'Slice' && lengthOf(n.input?.[0]) !== undefined) {
      const [starts, ends, axes, steps] = [ints(n.input?.[1]) ?? attrInts(n, 'starts'), ints(n.input?.[2]) ?? attrInts(n, 'ends'), n.input?.[3] ? ints(n.input[3]) : attrInts(n, 'axes') ?? [0], n.input?.[4] ? ints(n.input[4]) : [1]];
      if (starts?.length === 1 && ends?.length === 1 && axes?.[0] === 0 && steps?.[0] === 1) length = sliceLength(lengthOf(n.input?.[0])!, starts[0], ends[0]);
    }
    if (length !== undefined && n.output?.[0]) lengths.set(n.output[0], length);
    let rank: number | undefined;
    if (op === 'Constant') rank = (attrTensor(n, 'value')?.dims ?? []).length;
    else if (SAME_RANK.has(op)) rank = r(0);
    else if (BROADCASTING.has(op)) rank = (n.input ?? []).every((i) => ranks.has(i)) ? Math.max(...(n.input ?? []).map((i) => ranks.get(i)!)) : undefined;
    else if (op === 'Flatten' || op === 'Gemm') rank = 2;
    else if (op === 'MatMul') rank = r(0) !== undefined && r(1) !== undefined ? Math.max(r(0)!, r(1)!) : undefined;
    else if (op === 'Shape') rank = 1;
    else if (op === 'Size') rank = 0;
    else if (op === 'Reshape') rank = attrInts(n, 'shape')?.length ?? lengthOf(n.input?.[1]);
    else if (op === 'Squeeze') { const a = axesCount(n, 1); rank = r(0) !== undefined && a !== undefined ? r(0)! - a : undefined; }
    else if (op === 'Unsqueeze') { const a = axesCount(n, 1); rank = r(0) !== undefined && a !== undefined ? r(0)! + a : undefined; }
    else if (op.startsWith('Reduce') || op === 'ArgMax' || op === 'ArgMin') {
      const axes = op.startsWith('Arg') ? 1 : axesCount(n, 1);
      rank = r(0) === undefined ? undefined : attrInt(n, 'keepdims', 1) ? r(0) : axes !== undefined ? r(0)! - axes : n.input?.[1] ? undefined : 0;
    } else if (op === 'Gather') rank = r(0) !== undefined && r(1) !== undefined ? r(0)! + r(1)! - 1 : undefined;
    if (rank !== undefined && Number.isFinite(rank) && rank >= 0) for (const o of n.output ?? []) if (o && !ranks.has(o)) ranks.set(o, rank);
  }
  return ranks;
}

/** How many of `size` entries a slice [start, end) keeps, with numpy's negative and clamped bounds. */
function sliceLength(size: number, start: number, end: number): number {
  const at = (i: number) => Math.max(0, Math.min(size, i < 0 ? i + size : i));
  return Math.max(0, at(end) - at(start));
}
