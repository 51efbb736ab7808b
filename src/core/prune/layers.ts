import { DataType } from '../onnx/dtypes';
import type { ModelLocation, ScratchBuffer } from '../onnx/external-data';
import type { GraphView } from '../onnx/graph';
import { floatToHalf } from '../onnx/half';
import type { NodeProto, TensorProto } from '../onnx/proto';
import { moduleMatcher } from '../quant/policy';
import { modulePathOfNode } from '../quant/prepare';
import { floatWeight } from '../quant/weights';
import { attrInt } from '../onnx/attributes';
import { walkNodes } from '../onnx/walk';

/**
 * A layer whose weight pruning can thin: MatMul/Gemm/Conv with a stored float weight. The weight is seen
 * as [outer, in, inner] around its input axis, and as a matrix [outputs, fan-in] for maps and rows.
 */
export interface PrunableLayer {
  node: NodeProto;
  /** Dotted module path (or the node name). */
  name: string;
  opType: string;
  /** The value name of the weight (initializer or Constant output). */
  weight: string;
  dims: number[];
  /** Axis of the weight that indexes output features / channels, and input ones. */
  outAxis: number;
  inAxis: number;
  outputs: number;
  fanIn: number;
}

export function layerIndex(l: PrunableLayer): { outer: number; inSize: number; inner: number } {
  const outer = l.dims.slice(0, l.inAxis).reduce((a, b) => a * b, 1);
  const inner = l.dims.slice(l.inAxis + 1).reduce((a, b) => a * b, 1);
  return { outer, inSize: l.dims[l.inAxis], inner };
}

/** Flat index of element (o, f) of the [outputs, fan-in] view. */
export function matrixIndex(l: PrunableLayer): (o: number, f: number) => number {
  if (l.outAxis === 0) return (o, f) => o * l.fanIn + f;
  if (l.opType === 'ConvTranspose') {
    // W[in, out, kernel]: fan-in index f = in · kernel + k.
    const k = kernelSize(l), out = l.dims[1];
    return (o, f) => (Math.floor(f / k) * out + o) * k + (f % k);
  }
  const N = l.dims[1];
  return (o, f) => f * N + o; // MatMul / Gemm(transB=0): W[K, N]
}

/** The weight's layout for op types pruning understands, or why not. */
function layout(node: NodeProto, dims: number[]): { outAxis: number; inAxis: number } | string {
  const op = node.op_type ?? '';
  if (op === 'MatMul') return dims.length === 2 ? { outAxis: 1, inAxis: 0 } : `weight of rank ${dims.length} (batched MatMul) is not a layer`;
  if (op === 'Gemm') {
    if (dims.length !== 2) return `weight of rank ${dims.length}`;
    return attrInt(node, 'transB', 0) ? { outAxis: 0, inAxis: 1 } : { outAxis: 1, inAxis: 0 };
  }
  if (op === 'Conv') return dims.length >= 3 ? { outAxis: 0, inAxis: 1 } : `weight of rank ${dims.length}`;
  // ConvTranspose stores [in, out / group, kernel...]; grouped ones are left alone.
  if (op === 'ConvTranspose') {
    if (attrInt(node, 'group', 1) !== 1) return 'a grouped transposed convolution is not pruned';
    return dims.length >= 3 ? { outAxis: 1, inAxis: 0 } : `weight of rank ${dims.length}`;
  }
  return `${op} is not pruned`;
}

export const PRUNABLE_OPS = new Set(['MatMul', 'Gemm', 'Conv', 'ConvTranspose']);

/** Conv and ConvTranspose: channels on axis 1 of their activations, a kernel after the two channel axes. */
export const isConvLike = (l: { opType: string }) => l.opType === 'Conv' || l.opType === 'ConvTranspose';

/** Positions of the kernel (1 for MatMul/Gemm). */
export const kernelSize = (l: PrunableLayer) => (isConvLike(l) ? l.dims.slice(2).reduce((a, b) => a * b, 1) : 1);

/**
 * Every prunable layer, and the layers left alone with the reason. Weights shared by several nodes are left
 * alone; for `structured` pruning, so are layers whose bias is computed. Unstructured and N:M pruning also
 * reach layers inside If/Loop/Scan bodies whose weights are main-graph values (see hoistSubgraphWeights);
 * structured pruning stays in the main graph, where it can follow a channel from the layer that writes it
 * to every reader.
 */
export function findPrunableLayers(view: GraphView, loc: ModelLocation, exclude: string[], structured = false): { layers: PrunableLayer[]; skipped: Array<{ node: string; reason: string }> } {
  const layers: PrunableLayer[] = [];
  const skipped: Array<{ node: string; reason: string }> = [];
  const excluded = exclude.map((g) => ({ g, test: moduleMatcher(g) }));
  const nodes = structured ? view.graph.node ?? [] : [...walkNodes(view.graph)].map((w) => w.node);
  // The layers reading a weight, in any graph (a body reads main-graph values by name).
  const layerReaders = new Map<string, NodeProto[]>();
  for (const n of nodes) if (PRUNABLE_OPS.has(n.op_type ?? '') && n.input?.[1]) layerReaders.set(n.input[1], [...(layerReaders.get(n.input[1]) ?? []), n]);
  for (const node of nodes) {
    const op = node.op_type ?? '';
    if (!PRUNABLE_OPS.has(op) || (node.domain ?? '') !== '') continue;
    const name = modulePathOfNode(node, view);
    const label = node.name || name;
    const w = node.input?.[1];
    const t = w ? view.constant(w) : undefined;
    if (!w || !t) continue; // activation × activation (attention): not a layer
    if (t.data_type !== DataType.FLOAT && t.data_type !== DataType.FLOAT16) { skipped.push({ node: label, reason: 'its weight is not float32/float16' }); continue; }
    const ex = excluded.find((e) => e.test(name) || e.test(node.name ?? ''));
    if (ex) { skipped.push({ node: label, reason: `excluded by --exclude ${ex.g}` }); continue; }
    const readers = [...new Set([...view.consumersOf(w), ...(layerReaders.get(w) ?? [])])].filter((n) => PRUNABLE_OPS.has(n.op_type ?? ''));
    // Unstructured: one weight that several layers read the same way (a merged decoder's two branches
    // share every weight) is pruned once, as the first reader's; its zeros serve them all.
    if (!structured && readers.length > 1 && readers[0] !== node && sameReading(readers, w)) continue;
    if ((readers.length > 1 && (structured || !sameReading(readers, w))) || view.graph.output?.some((o) => o.name === w)) { skipped.push({ node: label, reason: `its weight '${w}' is shared with ${readers.filter((r) => r !== node).map((r) => r.name).join(', ') || 'a graph output'}` }); continue; }
    // Structured: a bias that is not stored (computed, or behind an op nothing folded) could not lose the removed outputs.
    const bias = structured && op !== 'MatMul' ? node.input?.[2] : undefined;
    if (bias && !view.constant(bias)) { skipped.push({ node: label, reason: `its bias '${bias}' is computed, not stored` }); continue; }
    const dims = (t.dims ?? []).map(Number);
    const lay = layout(node, dims);
    if (typeof lay === 'string') { skipped.push({ node: label, reason: lay }); continue; }
    const outputs = dims[lay.outAxis];
    const numel = dims.reduce((a, b) => a * b, 1);
    if (numel === 0) { skipped.push({ node: label, reason: 'empty weight' }); continue; }
    layers.push({ node, name, opType: op, weight: w, dims, outAxis: lay.outAxis, inAxis: lay.inAxis, outputs, fanIn: numel / outputs });
  }
  return { layers, skipped };
}

/** Whether every one of `readers` takes `w` as its weight and nowhere else, in the same layout (the op, Gemm's transB, a conv's groups). */
function sameReading(readers: NodeProto[], w: string): boolean {
  const key = (n: NodeProto) => `${n.op_type}/${n.domain ?? ''}/${attrInt(n, 'transB', 0)}/${attrInt(n, 'group', 1)}`;
  return readers.every((n) => key(n) === key(readers[0]) && (n.input ?? []).every((x, i) => (i === 1) === (x === w)));
}

/** The float32 values of a layer's weight (float16 widened). */
export function readLayerWeight(view: GraphView, l: PrunableLayer, loc: ModelLocation, scratch?: ScratchBuffer): Float32Array {
  return floatWeight(view, l.weight, loc, true, scratch)!.data;
}

/** Stores new values (and dims) in a float tensor in place, in its own type, inline. */
export function writeFloatTensor(t: TensorProto, data: Float32Array, dims?: number[], copy = true): void {
  const half = t.data_type === DataType.FLOAT16;
  // copy = false: the caller hands `data` over (streamed pruning writes it out at once).
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const bytes = half ? new Uint8Array(Uint16Array.from(data, floatToHalf).buffer) : copy ? view.slice() : view;
  if (dims) t.dims = dims;
  t.raw_data = bytes;
  t.float_data = [];
  t.int32_data = [];
  t.external_data = [];
  t.data_location = 0;
}

/**
 * A MatMul/Gemm weight as W[K, N] (inputs × outputs), the layout the OBS update and refits work in, with
 * converters from and back to the stored layout (Gemm with transB stores [N, K]).
 */
export function readsRowsLayout(l: PrunableLayer): { K: number; N: number; toKN: <T extends Float32Array | Uint8Array>(a: T) => T; fromKN: <T extends Float32Array | Uint8Array>(a: T) => T } {
  const K = l.dims[l.inAxis], N = l.dims[l.outAxis];
  if (l.outAxis === 1) return { K, N, toKN: (a) => a, fromKN: (a) => a };
  const transpose = <T extends Float32Array | Uint8Array>(a: T, rows: number, cols: number): T => {
    const out = new (a.constructor as { new (n: number): T })(a.length);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
    return out;
  };
  return { K, N, toKN: (a) => transpose(a, N, K), fromKN: (a) => transpose(a, K, N) };
}
