import { dataTypeInfo } from '../../onnx/dtypes';
import type { ModelEditor } from '../../onnx/editor';
import type { ModelLocation } from '../../onnx/external-data';
import type { GraphView } from '../../onnx/graph';
import type { NodeProto, TensorProto } from '../../onnx/proto';
import { int64Tensor, readTensor, tensorDims, tensorRawBytes } from '../../onnx/tensor';
import { readLayerWeight, writeFloatTensor, type PrunableLayer } from '../layers';
import type { Relation } from './relations';
import { intAttr, intsAttr } from '../../onnx/attributes';

/** Copies `values` (laid out as dims) without the indices `drop` along `axis`; works on any element size. */
export function sliceAlong<T extends { length: number; subarray(a: number, b: number): T; set(src: T, offset: number): void }>(
  values: T, dims: number[], axis: number, drop: Set<number>, make: (n: number) => T, elementSize = 1,
): { values: T; dims: number[] } {
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1) * elementSize;
  const size = dims[axis];
  const keep = Array.from({ length: size }, (_, i) => i).filter((i) => !drop.has(i));
  const out = make(outer * keep.length * inner);
  let w = 0;
  for (let o = 0; o < outer; o++) {
    for (const k of keep) {
      const from = (o * size + k) * inner;
      out.set(values.subarray(from, from + inner), w);
      w += inner;
    }
  }
  const nd = dims.slice();
  nd[axis] = keep.length;
  return { values: out, dims: nd };
}

/** A stored tensor without the indices `drop` along `axis`, in its own type, under a fresh name. */
function slicedTensor(t: TensorProto, loc: ModelLocation, axis: number, drop: Set<number>): TensorProto {
  const info = dataTypeInfo(t.data_type ?? 0)!;
  const dims = tensorDims(t, loc);
  const bytes = tensorRawBytes(t, loc);
  const s = sliceAlong(bytes, dims, axis, drop, (n) => new Uint8Array(n), info.bits / 8);
  return { name: t.name, data_type: t.data_type, dims: s.dims, raw_data: s.values };
}

/**
 * Where a Reshape's target size at `index` is stored: a constant of its own, or one piece of a Concat
 * that only this Reshape reads (PyTorch builds targets from Shape→Gather pieces and constants). A
 * computed one-element piece is replaced by the new size itself: the channel count is fixed by the weights.
 */
export function shapeSlot(view: GraphView, node: NodeProto, index: number): { owner: NodeProto; input: number; offset: number; computed: boolean } | undefined {
  const shape = node.input?.[1];
  if (!shape) return undefined;
  if (view.constant(shape)) return { owner: node, input: 1, offset: index, computed: false };
  const p = view.producer.get(shape);
  if (p?.op_type !== 'Concat' || view.consumersOf(shape).length !== 1) return undefined;
  let at = 0;
  for (let i = 0; i < (p.input ?? []).length; i++) {
    const piece = p.input![i];
    const c = view.constant(piece);
    const len = c ? (c.dims ?? []).map(Number).reduce((a, b) => a * b, 1) : 1; // computed pieces: Unsqueeze'd scalars
    if (index < at + len) return { owner: p, input: i, offset: index - at, computed: !c };
    at += len;
  }
  return undefined;
}

/**
 * Applies the removals (element indices per tracked tensor) to every relation: weights lose output or
 * input slices, per-channel parameters are sliced (as new initializers, so shared ones stay intact),
 * depthwise group counts and Reshape targets follow.
 */
export function applyRemovals(editor: ModelEditor, view: GraphView, loc: ModelLocation, relations: Relation[], removed: Map<string, Set<number>>, sizes: Map<string, number>, emit?: (weight: TensorProto) => void): void {
  const edits = new Map<PrunableLayer, { out?: Set<number>; in?: Set<number>; depthwise?: boolean }>();
  const at = (l: PrunableLayer) => edits.get(l) ?? edits.set(l, {}).get(l)!;
  for (const r of relations) {
    const drop = removed.get(r.tensor);
    if (!drop?.size) continue;
    if (r.kind === 'source') at(r.layer).out = drop;
    else if (r.kind === 'absorb') at(r.layer).in = drop;
    else if (r.kind === 'depthwise') Object.assign(at(r.layer), { out: drop, depthwise: true });
    else if (r.kind === 'grouped') at(r.layer).in = new Set([...drop].map((c) => c % r.width)); // (every group lost the same positions)
    else if (r.kind === 'param') {
      // Read through Identity (a shared stored copy); the reader gets its own sliced initializer.
      const t = view.stored(r.node.input![r.input])!;
      r.node.input![r.input] = editor.addInitializer(slicedTensor(t, loc, r.axis, drop));
    } else if (r.kind === 'input') {
      // Readers of the model input now read its kept channels; the input itself keeps its shape.
      const keep = Array.from({ length: sizes.get(r.tensor)! }, (_, i) => i).filter((i) => !drop.has(i));
      const idx = editor.addInitializer(int64Tensor(`${r.tensor}.kept_channels`, keep));
      const out = editor.unique(`${r.tensor}_pruned`);
      const readers = view.consumersOf(r.tensor);
      for (const c of readers) c.input = (c.input ?? []).map((x) => (x === r.tensor ? out : x));
      editor.insertBefore(editor.graph.node?.[0], [{ name: `${r.tensor}_Gather`, op_type: 'Gather', input: [r.tensor, idx], output: [out], attribute: [intAttr('axis', r.axis)] }]);
    } else if (r.kind === 'split') {
      // Each output keeps what its range of channels keeps; sizes go where the node's opset reads them.
      let offset = 0;
      const sizes = r.sizes.map((n) => {
        let lost = 0;
        for (const d of drop) if (d >= offset && d < offset + n) lost++;
        offset += n;
        return n - lost;
      });
      const attrs = (r.node.attribute ?? []).filter((a) => a.name !== 'split' && a.name !== 'num_outputs');
      if (editor.opset('') >= 13) {
        const input = r.node.input!;
        input[1] = editor.addInitializer(int64Tensor(`${r.node.name || 'split'}.pruned_sizes`, sizes));
        r.node.attribute = attrs;
      } else r.node.attribute = [...attrs, intsAttr('split', sizes)];
    } else if (r.kind === 'slice') {
      // Both bounds move down by the removed channels before them.
      const before = (x: number) => x - [...drop].filter((d) => d < x).length;
      const starts = r.starts.slice(), ends = r.ends.slice();
      starts[r.entry] = before(r.start);
      ends[r.entry] = before(r.end);
      if (r.legacy) {
        r.node.attribute = [...(r.node.attribute ?? []).filter((a) => a.name !== 'starts' && a.name !== 'ends'), intsAttr('starts', starts), intsAttr('ends', ends)];
      } else {
        r.node.input![1] = editor.addInitializer(int64Tensor(`${r.node.name || 'slice'}.pruned_starts`, starts));
        r.node.input![2] = editor.addInitializer(int64Tensor(`${r.node.name || 'slice'}.pruned_ends`, ends));
      }
    } else if (r.kind === 'groups') {
      // Whole groups went: num_groups counts those kept, and per-group scale and bias (opset 18) lose theirs.
      const lost = new Set([...drop].map((c) => Math.floor(c / r.size)));
      const attr = r.node.attribute!.find((a) => a.name === 'num_groups')!;
      const groups = Number(attr.i);
      attr.i = groups - lost.size;
      if (groups === sizes.get(r.tensor)) continue; // one channel a group: the params were sliced per channel
      for (const i of [1, 2]) {
        const t = view.stored(r.node.input?.[i] ?? '');
        if (t && tensorDims(t, loc)[0] === groups) r.node.input![i] = editor.addInitializer(slicedTensor(t, loc, 0, lost));
      }
    } else if (r.kind === 'reshape') {
      const slot = shapeSlot(view, r.node, r.index)!;
      const size = BigInt(sizes.get(r.tensor)! - drop.size);
      if (slot.computed) {
        slot.owner.input![slot.input] = editor.addInitializer(int64Tensor(`${r.node.name || 'reshape'}.pruned_size`, [Number(size)]));
        continue;
      }
      const t = view.constant(slot.owner.input![slot.input])!;
      const v = readTensor(t, loc).data as BigInt64Array;
      const nv = BigInt64Array.from(v);
      if (nv[slot.offset] !== -1n) nv[slot.offset] = size;
      slot.owner.input![slot.input] = editor.addInitializer({ name: t.name, data_type: t.data_type, dims: t.dims, raw_data: new Uint8Array(nv.buffer) });
    }
  }
  for (const [l, e] of edits) {
    let w = readLayerWeight(view, l, loc);
    let dims = l.dims;
    if (e.out) ({ values: w, dims } = sliceAlong(w, dims, l.outAxis, e.out, (n) => new Float32Array(n)));
    if (e.in && !e.depthwise) ({ values: w, dims } = sliceAlong(w, dims, l.inAxis, e.in, (n) => new Float32Array(n)));
    const t = view.constant(l.weight)!;
    writeFloatTensor(t, w, dims, false);
    emit?.(t); // streamed saves write the sliced weight out at once
    const bias = l.node.input?.[2];
    const bt = bias ? view.constant(bias) : undefined;
    if (e.out && bt) {
      const bd = tensorDims(bt, loc);
      const axis = bd.length - 1;
      if (bd[axis] === l.dims[l.outAxis]) l.node.input![2] = editor.addInitializer(slicedTensor(bt, loc, axis, e.out));
    }
    if (e.depthwise) {
      const g = l.node.attribute!.find((a) => a.name === 'group')!;
      g.i = dims[0];
    }
  }
}
