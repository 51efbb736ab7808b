import type { GraphView } from '../../onnx/graph';
import type { NodeProto } from '../../onnx/proto';
import { readTensor } from '../../onnx/tensor';

/**
 * Ops that change some axes of their data input and carry every other axis through element for element
 * (an FPN's Resize over height and width, a Slice or Split over tokens, a Pad of the borders). Channels on
 * an axis they leave alone can be pruned through them.
 */
export const AXISWISE = new Set(['Resize', 'Upsample', 'Slice', 'Split', 'Pad', 'Tile']);

const ints = (node: NodeProto, name: string) => node.attribute?.find((a) => a.name === name)?.ints?.map(Number);
const floats = (node: NodeProto, name: string) => node.attribute?.find((a) => a.name === name)?.floats?.map(Number);

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
  if (op === 'Split') return new Set(norm([Number(node.attribute?.find((a) => a.name === 'axis')?.i ?? 0)], rank));
  if (op === 'Resize' || op === 'Upsample') {
    // Upsample-7 holds its scales in an attribute, Resize-10/Upsample-9 take them second, Resize-11+ third
    // (after roi), with sizes fourth; Resize-18 may name the axes they cover.
    const many = (node.input ?? []).length >= 3;
    const sizes = many ? storedValues(view, input(3)) : [];
    const scales = floats(node, 'scales') ?? storedValues(view, many ? input(2) : input(1));
    const axes = norm(ints(node, 'axes') ?? Array.from({ length: rank }, (_, i) => i), rank);
    if (sizes === undefined) return 'it resizes to a computed size';
    // A stored size would keep an axis's old count after pruning: every axis it covers counts as changed.
    if (sizes.length) return new Set(axes);
    if (!scales) return 'its scales are computed';
    axes.forEach((a, i) => { if (scales[i] !== 1) changed.add(a); });
    return changed;
  }
  if (op === 'Slice') {
    const legacy = !!ints(node, 'starts');
    const starts = legacy ? ints(node, 'starts') : storedValues(view, input(1));
    const ends = legacy ? ints(node, 'ends') : storedValues(view, input(2));
    const given = legacy ? ints(node, 'axes') : input(3) ? storedValues(view, input(3)) : undefined;
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
    const pads = ints(node, 'pads') ?? ints(node, 'paddings') ?? storedValues(view, input(1));
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
