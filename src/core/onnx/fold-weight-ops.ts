import { DataType } from './dtypes';
import type { ModelEditor } from './editor';
import type { ModelLocation } from './external-data';
import { floatToHalf } from './half';
import { attrInt, attrInts } from './attributes';
import type { NodeProto, TensorProto } from './proto';
import { makeTensor, readTensor, tensorDims, toFloat32 } from './tensor';
import { walkGraphs } from './walk';

/** Where each op reads its weight: the input a quantizer or pruner wants to find stored. */
const WEIGHT_INPUTS: Record<string, number[]> = { MatMul: [1], Gemm: [1, 2], Conv: [1, 2], ConvTranspose: [1, 2], Gather: [0], LSTM: [1, 2, 3], GRU: [1, 2, 3] };
const dataInput = (op: string) => (op === 'Gather' ? -1 : 0);
const FOLDABLE = new Set(['Transpose', 'Reshape', 'Unsqueeze', 'Squeeze', 'Flatten', 'Cast', 'Identity']);

/**
 * Evaluates the data-movement ops an export left between a stored float weight and the layer that reads
 * it (torch.onnx with do_constant_folding=False writes every Linear as MatMul(x, Transpose(W)); mixed-
 * precision exports Cast float16 weights up): Transpose, Reshape, Unsqueeze, Squeeze, Flatten and float
 * Casts of stored tensors become stored tensors, named as the op's output. onnxruntime folds the same ops
 * when it loads the model, so nothing runs differently; but a quantizer or pruner that looks for a stored
 * weight now finds one. Only chains whose every reader takes them as a weight are folded (a transposed
 * copy nothing quantizes would only grow the file). An Identity is folded too (torch shares equal biases
 * between convs through Identity nodes: behind a Cast, none of them was stored). Returns how many ops were
 * folded; `fromHalf` receives the folded float32 weights that were float16 in the file (widened by a Cast),
 * which a layer left float can store as float16 again, as the export did (see restoreHalfStorage).
 */
export function foldWeightOps(editor: ModelEditor, loc: ModelLocation, fromHalf?: Set<string>): number {
  const g = editor.graph;
  const view = editor.view();
  const outputs = new Set((g.output ?? []).map((o) => o.name ?? ''));
  const folded = new Map<string, TensorProto>();
  const stored = (name: string) => folded.get(name) ?? view.constant(name);
  // A value is a weight when each reader is a layer taking it as a weight, or another foldable op whose
  // output is one.
  const isWeight = (name: string, depth = 0): boolean => {
    if (outputs.has(name) || depth > 8) return false;
    const readers = view.consumersOf(name);
    return readers.length > 0 && readers.every((r) => (r.domain ?? '') === '' && (
      (WEIGHT_INPUTS[r.op_type ?? '']?.some((k) => r.input?.[k] === name) && r.input?.[dataInput(r.op_type ?? '')] !== name) ||
      (FOLDABLE.has(r.op_type ?? '') && r.input?.[0] === name && isWeight(r.output![0], depth + 1))));
  };
  // A folded weight keeps its source's name when it was the source's only reader: 'fc1.weight'
  // transposed is still fc1's weight (module paths come from such names), and no float copy is left.
  const initializers = new Set((g.initializer ?? []).map((t) => t.name ?? ''));
  const finalName = new Map<string, string>();
  const replaced = new Set<string>();
  const gone = new Set<NodeProto>();
  const half = new Set<string>(); // outputs whose chain widened a float16 tensor
  for (const node of g.node ?? []) {
    const op = node.op_type ?? '';
    const input = node.input?.[0] ?? '';
    if ((node.domain ?? '') !== '' || !FOLDABLE.has(op) || !node.output?.[0]) continue;
    const src = stored(input);
    if (!src || (src.data_type !== DataType.FLOAT && src.data_type !== DataType.FLOAT16) || !isWeight(node.output[0])) continue;
    const reuse = view.consumersOf(input).length === 1 && (folded.has(input) || initializers.has(input));
    const name = reuse ? finalName.get(input) ?? input : node.output[0];
    const out = evaluate(node, src, name, stored, loc, editor.opset());
    if (!out) continue;
    folded.set(node.output[0], out);
    finalName.set(node.output[0], name);
    if (half.has(input) || (op === 'Cast' && src.data_type === DataType.FLOAT16 && out.data_type === DataType.FLOAT)) half.add(node.output[0]);
    if (reuse) replaced.add(input);
    gone.add(node);
  }
  if (!gone.size) return 0;
  editor.removeNodes(gone);
  for (const { graph } of walkGraphs(g)) for (const n of graph.node ?? []) n.input = (n.input ?? []).map((i) => finalName.get(i) ?? i);
  // The last of each chain is what the layers read; sources and steps it replaced go.
  const ends = [...gone].map((n) => n.output![0]).filter((o) => !replaced.has(o));
  for (const o of ends) if (half.has(o) && folded.get(o)!.data_type === DataType.FLOAT) fromHalf?.add(folded.get(o)!.name ?? '');
  const added = ends.map((o) => folded.get(o)!).map((t) => (editor.spill ? editor.spill.take(t) : t));
  g.initializer = [...(g.initializer ?? []).filter((t) => !replaced.has(t.name ?? '')), ...added];
  editor.dropUnusedConstants();
  editor.syncInitializerInputs();
  return gone.size;
}

/**
 * The op's result on a stored float tensor, or undefined when an input it needs is not stored. Ops that
 * only change the shape keep the tensor's bytes where they are (inline or in the external data file):
 * only Transpose and Cast read the values.
 */
function evaluate(node: NodeProto, src: TensorProto, name: string, stored: (n: string) => TensorProto | undefined, loc: ModelLocation, opset: number): TensorProto | undefined {
  const dims = tensorDims(src, loc);
  const ints = (i: number) => {
    const c = node.input?.[i] ? stored(node.input[i]) : undefined;
    return c ? Array.from(toFloat32(readTensor(c, loc)), Math.round) : undefined;
  };
  // Inline bytes are copied when the source stays for other readers (no tensor shares a buffer with another).
  const reshaped = (shape: number[]): TensorProto => ({ ...src, name, dims: shape, ...(name !== src.name && src.raw_data?.length ? { raw_data: src.raw_data.slice() } : {}) });
  switch (node.op_type) {
    case 'Transpose': {
      const data = readTensor(src, loc).data as Float32Array | Uint16Array;
      const perm = attrInts(node, 'perm') ?? dims.map((_, i) => dims.length - 1 - i);
      return makeTensor(name, src.data_type!, perm.map((p) => dims[p]), transposed(data, dims, perm));
    }
    case 'Reshape': {
      const shape = ints(1);
      if (!shape) return undefined;
      const n = dims.reduce((a, b) => a * b, 1);
      const out = shape.map((s, i) => (s === 0 && attrInt(node, 'allowzero', 0) === 0 ? dims[i] : s));
      const known = out.filter((s) => s !== -1).reduce((a, b) => a * b, 1);
      return reshaped(out.map((s) => (s === -1 ? n / Math.max(1, known) : s)));
    }
    case 'Unsqueeze': {
      const axes = opset >= 13 ? ints(1) : attrInts(node, 'axes');
      if (!axes) return undefined;
      const rank = dims.length + axes.length;
      const at = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
      const out: number[] = [];
      for (let i = 0, k = 0; i < rank; i++) out.push(at.has(i) ? 1 : dims[k++]);
      return reshaped(out);
    }
    case 'Squeeze': {
      const axes = opset >= 13 ? (node.input?.[1] ? ints(1) : undefined) : attrInts(node, 'axes');
      if (node.input?.[1] && !axes) return undefined;
      const at = new Set((axes ?? dims.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => (a < 0 ? a + dims.length : a)));
      return reshaped(dims.filter((_, i) => !at.has(i)));
    }
    case 'Flatten': {
      const axis = attrInt(node, 'axis', 1);
      const a = axis < 0 ? axis + dims.length : axis;
      return reshaped([dims.slice(0, a).reduce((x, y) => x * y, 1), dims.slice(a).reduce((x, y) => x * y, 1)]);
    }
    case 'Identity':
      return reshaped(dims);
    case 'Cast': {
      const to = attrInt(node, 'to');
      if (to === src.data_type) return reshaped(dims);
      const t = readTensor(src, loc);
      if (to === DataType.FLOAT) return makeTensor(name, DataType.FLOAT, dims, Float32Array.from(toFloat32(t)));
      if (to === DataType.FLOAT16) return makeTensor(name, DataType.FLOAT16, dims, Uint16Array.from(t.data as Float32Array, floatToHalf));
      return undefined;
    }
  }
  return undefined;
}

/** Row-major `data` of shape `dims` permuted by `perm`. */
function transposed<T extends Float32Array | Uint16Array>(data: T, dims: number[], perm: number[]): T {
  const out = new (data.constructor as { new (n: number): T })(data.length);
  const outDims = perm.map((p) => dims[p]);
  const strides = dims.map((_, i) => dims.slice(i + 1).reduce((a, b) => a * b, 1));
  const idx = new Array<number>(outDims.length).fill(0);
  for (let k = 0; k < data.length; k++) {
    let src = 0;
    for (let i = 0; i < outDims.length; i++) src += idx[i] * strides[perm[i]];
    out[k] = data[src];
    for (let i = outDims.length - 1; i >= 0 && ++idx[i] === outDims[i]; i--) idx[i] = 0;
  }
  return out;
}

