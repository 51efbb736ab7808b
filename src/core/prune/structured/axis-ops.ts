import type { GraphView } from '../../onnx/graph';
import type { NodeProto } from '../../onnx/proto';
import { readTensor } from '../../onnx/tensor';
import { attrFloats, attrInt, attrInts, attrTensor } from '../../onnx/attributes';

/**
 * Ops that change some axes of their data input and carry every other axis through element for element
 * (an FPN's Resize over height and width, a Slice or Split over tokens, a Pad of the borders). Channels on
 * an axis they leave alone can be pruned through them.
 */
export const AXISWISE = new Set(['Resize', 'Upsample', 'Slice', 'Split', 'Pad', 'Tile']);


/** changedAxes' answer for a Resize to sizes the graph computes (see shapeEntrySource). */
export const COMPUTED_SIZE = 'it resizes to a computed size';

/** Values of a stored input, or undefined when it is computed; [] for an absent (empty-named) input. */
function storedValues(view: GraphView, name: string | undefined): number[] | undefined {
  if (!name) return [];
  const t = view.stored(name);
  if (!t) return undefined;
  return Array.from(readTensor(t).data as ArrayLike<number | bigint>, Number);
}

const norm = (axes: number[], rank: number) => axes.map((a) => (a < 0 ? a + rank : a));

/** Axes of input 0 that `node` changes; the rest pass through unchanged. A string says why it cannot tell. */
export function changedAxes(node: NodeProto, view: GraphView, dims: number[]): Set<number> | string {
  const rank = dims.length;
  const op = node.op_type ?? '';
  const input = (i: number) => node.input?.[i];
  const changed = new Set<number>();
  if (op === 'Split') return new Set(norm([attrInt(node, 'axis', 0)], rank));
  if (op === 'Resize' || op === 'Upsample') {
    // Upsample-7 holds its scales in an attribute, Resize-10/Upsample-9 take them second, Resize-11+ third
    // (after roi), with sizes fourth; Resize-18 may name the axes they cover.
    const many = (node.input ?? []).length >= 3;
    const sizes = many ? storedValues(view, input(3)) : [];
    const scales = attrFloats(node, 'scales') ?? storedValues(view, many ? input(2) : input(1));
    const axes = norm(attrInts(node, 'axes') ?? Array.from({ length: rank }, (_, i) => i), rank);
    if (sizes === undefined) return COMPUTED_SIZE;
    // A stored size would keep an axis's old count after pruning: every axis it covers counts as changed.
    if (sizes.length) return new Set(axes);
    if (!scales) return 'its scales are computed';
    axes.forEach((a, i) => { if (scales[i] !== 1) changed.add(a); });
    return changed;
  }
  if (op === 'Slice') {
    const legacy = !!attrInts(node, 'starts');
    const starts = legacy ? attrInts(node, 'starts') : storedValues(view, input(1));
    const ends = legacy ? attrInts(node, 'ends') : storedValues(view, input(2));
    const given = legacy ? attrInts(node, 'axes') : input(3) ? storedValues(view, input(3)) : undefined;
    const steps = legacy ? [] : storedValues(view, input(4));
    const count = starts?.length ?? ends?.length;
    if (given === undefined && (input(3) || count === undefined)) return 'its axes are computed';
    const axes = norm(given ?? Array.from({ length: count! }, (_, i) => i), rank);
    axes.forEach((a, i) => {
      const full = starts?.[i] === 0 && ends !== undefined && ends[i] >= dims[a] && (steps?.[i] ?? 1) === 1;
      if (!full) changed.add(a);
    });
    return changed;
  }
  if (op === 'Pad') {
    const pads = attrInts(node, 'pads') ?? attrInts(node, 'paddings') ?? storedValues(view, input(1));
    if (!pads) return 'its pads are computed';
    const axes = input(3) ? storedValues(view, input(3)) : undefined;
    if (input(3) && !axes) return 'its axes are computed';
    const list = norm(axes ?? Array.from({ length: rank }, (_, i) => i), rank);
    list.forEach((a, i) => { if (pads[i] || pads[i + list.length]) changed.add(a); });
    return changed;
  }
  if (op === 'Tile') {
    const repeats = storedValues(view, input(1));
    if (!repeats) return 'its repeats are computed';
    repeats.forEach((r, a) => { if (r !== 1) changed.add(a); });
    return changed;
  }
  return `${op} is not axis-wise`;
}

/**
 * Entry `index` of a small integer value (a shape), followed through the ops exporters build shapes with:
 * stored pieces, Concat, Reshape/Cast/Unsqueeze/Squeeze/Identity, ConstantOfShape, Equal, Where and
 * arithmetic. torch.onnx writes `expand(B, -1, -1)` as Where(Equal(shape, -1), ones, shape). Undefined
 * where an entry depends on runtime values (Shape→Gather pieces). `lengthOf` gives a value's length.
 */
export function shapeValueAt(view: GraphView, name: string, index: number, lengthOf: (name: string) => number | undefined, dimsOf?: (name: string) => number[] | undefined, depth = 0): number | undefined {
  if (index < 0 || depth > 24 || !name) return undefined;
  const stored = storedValues(view, name);
  if (stored) return stored.length === 1 ? stored[0] : stored[index];
  const p = view.producer.get(name);
  if (!p || (p.domain ?? '') !== '') return undefined;
  const at = (x: string | undefined, i = index) => (x ? shapeValueAt(view, x, lengthOf(x) === 1 ? 0 : i, lengthOf, dimsOf, depth + 1) : undefined);
  const ins = p.input ?? [];
  switch (p.op_type) {
    case 'Concat': {
      const c = concatPiece(ins, index, lengthOf);
      return c && at(c.piece, c.index);
    }
    case 'Reshape': case 'Cast': case 'Identity': case 'Unsqueeze': case 'Squeeze':
      return at(ins[0]);
    case 'ConstantOfShape': {
      const t = attrTensor(p, 'value');
      return t ? Number((readTensor(t).data as ArrayLike<number | bigint>)[0]) : 0;
    }
    case 'Where': {
      const c = at(ins[0]);
      return c === undefined ? undefined : at(c ? ins[1] : ins[2]);
    }
    case 'Equal': case 'Mul': case 'Add': case 'Sub': case 'Div': {
      const [x, y] = [at(ins[0]), at(ins[1])];
      if (x === undefined || y === undefined) return undefined;
      // Shapes are integers: ONNX's integer Div truncates.
      return p.op_type === 'Equal' ? Number(x === y) : p.op_type === 'Mul' ? x * y : p.op_type === 'Add' ? x + y : p.op_type === 'Sub' ? x - y : y ? Math.trunc(x / y) : undefined;
    }
    // With the probe's shapes (dimsOf): sizes the graph reads at run time, as they were when it was probed.
    case 'Shape': {
      const dims = dimsOf?.(ins[0]);
      const start = attrInt(p, 'start', 0);
      return dims?.[(start < 0 ? start + dims.length : start) + index];
    }
    case 'Gather': {
      const idx = storedValues(view, ins[1]);
      if (!idx || attrInt(p, 'axis', 0) !== 0) return undefined;
      const len = lengthOf(ins[0]) ?? 0;
      const i = idx.length === 1 ? idx[0] : idx[index];
      return at(ins[0], i < 0 ? i + len : i);
    }
    default:
      return undefined;
  }
}

/**
 * Which tensor's size entry `index` of a computed shape value is, when it is one unchanged: followed
 * through Concat, Cast/Identity/Reshape/Unsqueeze/Squeeze, a step-1 Slice or a Gather of a Shape, to
 * Shape(x)[axis]. torchvision's FPN resizes to Concat(Shape(x)[0:2], Shape(lateral)[2:]): the channel
 * entry is x's own, so channels pass through the Resize.
 */
export function shapeEntrySource(view: GraphView, name: string, index: number, lengthOf: (name: string) => number | undefined, depth = 0): { tensor: string; axis: number } | undefined {
  if (index < 0 || depth > 24 || !name) return undefined;
  const p = view.producer.get(name);
  if (!p || (p.domain ?? '') !== '') return undefined;
  const ins = p.input ?? [];
  const at = (x: string | undefined, i: number) => (x ? shapeEntrySource(view, x, i, lengthOf, depth + 1) : undefined);
  switch (p.op_type) {
    case 'Concat': {
      const c = concatPiece(ins, index, lengthOf);
      return c && at(c.piece, c.index);
    }
    case 'Reshape': case 'Cast': case 'Identity': case 'Unsqueeze': case 'Squeeze':
      return at(ins[0], lengthOf(ins[0]) === 1 ? 0 : index);
    case 'Slice': {
      const l = sliceLists(p, view);
      if (!l.starts || (l.axes && norm(l.axes, 1)[0] !== 0) || (l.steps?.[0] ?? 1) !== 1) return undefined;
      return at(ins[0], Math.max(0, l.starts[0]) + index);
    }
    case 'Gather': {
      const idx = storedValues(view, ins[1]);
      if (!idx || attrInt(p, 'axis', 0) !== 0) return undefined;
      const i = idx.length === 1 ? idx[0] : idx[index];
      return i === undefined || i < 0 ? undefined : at(ins[0], i);
    }
    case 'Shape': {
      const start = attrInt(p, 'start', 0);
      return start < 0 ? undefined : { tensor: ins[0], axis: start + index };
    }
    default:
      return undefined;
  }
}

/** The piece of a 1-D Concat that holds entry `index`, and the entry's index within it. */
function concatPiece(pieces: string[], index: number, lengthOf: (name: string) => number | undefined): { piece: string; index: number } | undefined {
  let off = 0;
  for (const piece of pieces) {
    const len = lengthOf(piece);
    if (len === undefined) return undefined;
    if (index < off + len) return { piece, index: index - off };
    off += len;
  }
  return undefined;
}

/** Where a Slice's lists are: attributes (opset < 10) or stored inputs. */
export function sliceLists(node: NodeProto, view: GraphView): { starts?: number[]; ends?: number[]; axes?: number[]; steps?: number[]; legacy: boolean } {
  const legacy = !!attrInts(node, 'starts');
  const input = (i: number) => node.input?.[i];
  if (legacy) return { starts: attrInts(node, 'starts'), ends: attrInts(node, 'ends'), axes: attrInts(node, 'axes'), legacy };
  return { starts: storedValues(view, input(1)), ends: storedValues(view, input(2)), axes: input(3) ? storedValues(view, input(3)) : undefined, steps: input(4) ? storedValues(view, input(4)) : undefined, legacy };
}

/**
 * The step-1 range a Slice takes along `axis`, its entry in the lists and the lists themselves; or why
 * not. Bounds computed from sizes (torch's chunk: (C + 1) / 2 from Shape) are evaluated with the probe's
 * shapes (`value`) when the lists have that one entry: pruning writes them as constants.
 */
export function sliceRange(node: NodeProto, view: GraphView, dims: number[], axis: number, value?: (name: string) => number | undefined): { entry: number; start: number; end: number; starts: number[]; ends: number[]; legacy: boolean } | string {
  const l = sliceLists(node, view);
  if ((!l.starts || !l.ends) && !l.legacy && value) {
    const one = (i: number) => { const v = value(node.input?.[i] ?? ''); return v === undefined ? undefined : [v]; };
    l.starts ??= one(1);
    l.ends ??= one(2);
  }
  if (!l.starts || !l.ends) return 'its bounds are computed';
  const axes = norm(l.axes ?? l.starts.map((_, i) => i), dims.length);
  const entry = axes.indexOf(axis);
  if (entry < 0) return 'its axes are computed';
  if ((l.steps?.[entry] ?? 1) !== 1) return 'it steps over the channels';
  const size = dims[axis];
  const clamp = (v: number) => Math.max(0, Math.min(size, v < 0 ? v + size : v));
  const start = clamp(l.starts[entry]), end = clamp(l.ends[entry]);
  return end > start ? { entry, start, end, starts: l.starts, ends: l.ends, legacy: l.legacy } : 'it takes no channels';
}
