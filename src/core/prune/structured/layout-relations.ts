import type { NodeProto } from '../../onnx/proto';
import { shapeSlot } from './apply';
import { changedAxes, COMPUTED_SIZE, shapeEntrySource, shapeValueAt, sliceRange } from './axis-ops';
import type { ChannelTies } from './relations';
import { attrInt, attrInts } from '../../onnx/attributes';

/**
 * How channels travel through ops that move, cut or regroup axes (Reshape and friends, Split and chunks,
 * Slice, Gather, Expand, Resize/Pad/Tile): each function ties the elements of `from` to those of the
 * op's other tensors on the channel graph, or returns why it cannot.
 */

/** Whether `node` (a Split) cuts along the axis that carries `from`'s channels. */
export function splitsChannels(g: ChannelTies, node: NodeProto, from: string): boolean {
  const rank = g.shapes.get(node.input![0])?.length ?? 0;
  let axis = attrInt(node, 'axis', 0);
  if (axis < 0) axis += rank;
  return (from === node.input![0] || (node.output ?? []).includes(from)) && g.tracks.get(from)!.axis === axis;
}

/** Split along the channels: output i holds the input's channels [offset_i, offset_i + size_i). */
export function relateSplit(g: ChannelTies, node: NodeProto, from: string, label: string): string | undefined {
  const input0 = node.input![0];
  const outs = (node.output ?? []).filter(Boolean);
  if (outs.length !== (node.output ?? []).length) return `${label} has unnamed outputs`;
  const a = g.tracks.get(from)!.axis;
  const sizes = outs.map((o) => g.shapes.get(o)?.[a]);
  if (sizes.some((x) => x === undefined) || !g.track(input0, a) || sizes.reduce((x, y) => x! + y!, 0) !== g.tracks.get(input0)!.size) return `${label}: shapes unknown`;
  let offset = 0;
  for (const o of outs) {
    if (!g.track(o, a)) return `${label}: shapes unknown`;
    const to = g.tracks.get(o)!;
    for (let j = 0; j < to.size; j++) g.union(g.el(input0, offset + j), to.base + j);
    offset += to.size;
  }
  g.relations.push({ kind: 'split', node, tensor: input0, sizes: sizes as number[] });
  return undefined;
}

/**
 * Expand keeps the channels of its input where the target shape says 1 there (broadcast keeps the
 * input's size): a class token expanded over the batch, a stored tensor expanded over the tokens.
 */
export function relateExpand(g: ChannelTies, node: NodeProto, from: string, label: string): string | undefined {
  const [data, shape] = node.input!;
  const out = node.output![0];
  const dd = g.shapes.get(data) ?? (g.view.stored(data)?.dims ?? []).map(Number), dout = g.shapes.get(out);
  if (from === shape) return `${label} reads them as a shape`;
  if (!dout || !dd.length) return `${label}: shapes unknown`;
  const shift = dout.length - dd.length;
  const outAxis = from === out ? g.tracks.get(from)!.axis : g.tracks.get(from)!.axis + shift;
  const dataAxis = outAxis - shift;
  if (dataAxis < 0 || dd[dataAxis] !== dout[outAxis]) return `${label} makes the channels by broadcasting`;
  const index = outAxis - (dout.length - shapeLength(g, shape));
  const target = shapeValueAt(g.view, shape, index, (x) => lengthOf(g, x));
  // 1 keeps the input's size; the size itself is written anew after pruning, as in a Reshape target.
  const rewrite = target === dout[outAxis] && target !== 1 && !!shapeSlot(g.view, node, index);
  if (target !== 1 && !rewrite) return `${label}: its target shape ${target === undefined ? 'is computed' : `holds ${target}`} where the channels are`;
  if (!g.track(out, outAxis)) return `${label}: shapes unknown`;
  if (rewrite) g.relations.push({ kind: 'reshape', node, index, tensor: out });
  if (g.view.stored(data)) return g.paramRelation(node, 0, out);
  return g.track(data, dataAxis) && g.tie(data, out) ? undefined : `${label}: shapes unknown`;
}

/** Elements of a (small) value: stored, or as probed. */
function lengthOf(g: ChannelTies, x: string): number | undefined {
  const t = g.view.stored(x);
  return t ? (t.dims ?? []).reduce((m, d) => m * Number(d), 1) : g.shapes.get(x)?.reduce((m, d) => m * d, 1);
}

function shapeLength(g: ChannelTies, name: string): number {
  return Number(g.view.stored(name)?.dims?.[0] ?? g.shapes.get(name)?.[0] ?? 0);
}

/** Resize/Slice/Split/Pad/Tile: channels on an axis the op leaves alone pass through in place. */
export function relateAxiswise(g: ChannelTies, node: NodeProto, from: string, label: string): string | undefined {
  const input0 = node.input![0];
  const outs = (node.output ?? []).filter(Boolean);
  if (from !== input0 && !outs.includes(from)) return `${label} reads them as a parameter`;
  const dims = g.shapes.get(input0);
  if (!dims || outs.some((o) => g.shapes.get(o)?.length !== dims.length)) return `${label}: shapes unknown`;
  const a = g.tracks.get(from)!.axis;
  let changed = changedAxes(node, g.view, dims);
  // Computed sizes whose channel entry is the input's own channel count: that axis passes through.
  const own = changed === COMPUTED_SIZE ? shapeEntrySource(g.view, node.input?.[3] ?? '', a, (x) => lengthOf(g, x)) : undefined;
  if (own?.tensor === input0 && own.axis === a) changed = new Set();
  if (typeof changed === 'string') return `${label}: ${changed}`;
  if (changed.has(a) && node.op_type === 'Slice') return relateChannelSlice(g, node, from, label, dims);
  if (changed.has(a)) return `${label} changes the channel axis`;
  for (const x of [input0, ...outs]) if (!g.track(x, a)) return `${label}: shapes unknown`;
  for (const o of outs) if (!g.tie(input0, o)) return `${label}: sizes differ`;
  return undefined;
}

/** A Slice of a contiguous range of channels (torch's chunk): output channel j is input channel start + j. */
function relateChannelSlice(g: ChannelTies, node: NodeProto, from: string, label: string, dims: number[]): string | undefined {
  const input0 = node.input![0], out = node.output![0];
  const a = g.tracks.get(from)!.axis;
  const r = sliceRange(node, g.view, dims, a, (x) => (lengthOf(g, x) === 1 ? shapeValueAt(g.view, x, 0, (y) => lengthOf(g, y), (y) => g.shapes.get(y)) : undefined));
  if (typeof r === 'string') return `${label}: ${r}`;
  if (!g.track(input0, a) || !g.track(out, a)) return `${label}: shapes unknown`;
  const to = g.tracks.get(out)!;
  if (to.size !== r.end - r.start) return `${label}: shapes unknown`;
  for (let j = 0; j < to.size; j++) g.union(g.el(input0, r.start + j), to.base + j);
  g.relations.push({ kind: 'slice', node, tensor: input0, ...r });
  return undefined;
}

/** Gather along another axis: the channel axis moves by the rank the indices add or remove. */
export function relateGather(g: ChannelTies, node: NodeProto, from: string, label: string): string | undefined {
  const [data, indices] = node.input!;
  const out = node.output![0];
  const dd = g.shapes.get(data), di = g.view.stored(indices) ? (g.view.stored(indices)!.dims ?? []).map(Number) : g.shapes.get(indices);
  if (!dd || !di || from === indices) return from === indices ? `${label} indexes by them` : `${label}: shapes unknown`;
  let ga = attrInt(node, 'axis', 0);
  if (ga < 0) ga += dd.length;
  const a = g.tracks.get(from)!.axis;
  let inAxis: number, outAxis: number;
  if (from === data) {
    if (a === ga) return `${label} picks among the channels`;
    [inAxis, outAxis] = [a, a < ga ? a : a - 1 + di.length];
  } else {
    if (a >= ga && a < ga + di.length) return `${label} picks among the channels`;
    [inAxis, outAxis] = [a < ga ? a : a - di.length + 1, a];
  }
  return g.track(data, inAxis) && g.track(out, outAxis) && g.tie(data, out) ? undefined : `${label}: shapes unknown`;
}

/**
 * Reshape/Flatten/Squeeze/Unsqueeze: the tracked axis keeps its elements (same block), is merged with
 * the axes after it (each channel becomes a run of elements: Flatten before a Gemm), or is split so
 * that runs of channels become one element (channels into attention heads).
 */
export function relateReshape(g: ChannelTies, node: NodeProto, from: string, label: string): string | undefined {
  const inp = node.input![0], out = node.output![0];
  const di = g.shapes.get(inp), dout = g.shapes.get(out);
  if (!di || !dout) return `${label}: shapes unknown`;
  const prod = (d: number[], a: number, b: number) => d.slice(a, b).reduce((x, y) => x * y, 1);
  // Map an axis on one side to the other: the first axis there whose prefix product is the same.
  const forward = from === inp;
  const [src, dst] = forward ? [di, dout] : [dout, di];
  const a = g.tracks.get(from)!.axis;
  const pre = prod(src, 0, a), post = prod(src, a + 1, src.length);
  let b = -1;
  for (let j = 0; j < dst.length; j++) if (prod(dst, 0, j) === pre && dst[j] > 1) { b = j; break; }
  if (b < 0) return `${label} scatters the channels`;
  // The channels split into [parts, heads, size] with the heads axis carrying them, the parts axis whole:
  // a fused projection split into q/k/v (or k/v) parts, whole heads going from every part; or a channel
  // shuffle (ShuffleNet: [N, C, H, W] viewed as [N, G, C/G, H, W], its only readers swapping the two), a
  // position going from every group with its shuffled channels (size 1).
  if (forward && b + 2 < dst.length) {
    const tail = prod(dst, b + 2, dst.length);
    const fused = post === 1 && dst[b] <= 3 && dst[b + 1] > 1 && g.tracks.get(out)?.axis !== b;
    const size = tail / post, heads = dst[b + 1];
    if ((fused || (tail === post && shuffled(g, out, b))) && src[a] === dst[b] * heads * size) {
      if (!g.track(out, b + 1)) return `${label}: shapes unknown`;
      const ts = g.tracks.get(from)!, td = g.tracks.get(out)!;
      for (let c = 0; c < src[a]; c++) g.union(ts.base + c, td.base + Math.floor((c % (heads * size)) / size));
      if (!shapeSlot(g.view, node, b + 1) || node.op_type !== 'Reshape') return `${label}: its target shape is computed in a way the new size cannot be written into`;
      g.relations.push({ kind: 'reshape', node, index: b + 1, tensor: out });
      return undefined;
    }
  }
  const postDst = prod(dst, b + 1, dst.length);
  const other = forward ? out : inp;
  if (!g.track(other, b)) return `${label}: shapes unknown`;
  const ts = g.tracks.get(from)!, td = g.tracks.get(other)!;
  if (postDst === post && dst[b] === src[a]) g.tie(from, other);
  else if (postDst < post && post % postDst === 0 && dst[b] === src[a] * (post / postDst)) {
    const r = post / postDst; // each source element spans r elements here
    for (let i = 0; i < ts.size; i++) for (let k = 0; k < r; k++) g.union(ts.base + i, td.base + i * r + k);
  } else if (postDst > post && postDst % post === 0 && src[a] === dst[b] * (postDst / post)) {
    const r = postDst / post; // r source elements make one element here
    for (let i = 0; i < ts.size; i++) g.union(ts.base + i, td.base + Math.floor(i / r));
  } else return `${label} regroups the channels`;
  if (node.op_type === 'Reshape') {
    const index = forward ? b : a;
    if (shapeSlot(g.view, node, index)) g.relations.push({ kind: 'reshape', node, index, tensor: out });
    else if (!tieToSizeSource(g, node.input?.[1] ?? '', index, out)) return `${label}: its target shape is computed in a way the new size cannot be written into`;
  }
  return undefined;
}

/** Whether every reader of `t` is a Transpose that swaps axes `b` and `b + 1` alone (a channel shuffle's). */
function shuffled(g: ChannelTies, t: string, b: number): boolean {
  const readers = g.view.consumersOf(t);
  return readers.length > 0 && readers.every((r) => {
    const perm = attrInts(r, 'perm');
    return r.op_type === 'Transpose' && !!perm && perm.every((p, i) => p === (i === b ? b + 1 : i === b + 1 ? b : i));
  });
}

/**
 * Entry `index` of a computed shape (`out`'s size on its tracked axis) read at run time from another
 * tensor's size, as torch writes GroupNorm's Reshape back to Shape(x): it follows that tensor, so nothing
 * is rewritten. That tensor's channels are tied to out's, one for one, so both lose the same ones.
 */
function tieToSizeSource(g: ChannelTies, shape: string, index: number, out: string): boolean {
  const own = shapeEntrySource(g.view, shape, index, (x) => lengthOf(g, x));
  return !!own && own.tensor !== out && g.track(own.tensor, own.axis) && g.tie(own.tensor, out);
}

/**
 * ConstantOfShape whose size on the channel axis is read from another tensor's (diffusers' attention
 * scores, baddbmm over torch.empty(q.shape[0], q.shape[1], k.shape[1]) with beta 0): it follows that tensor.
 */
export function relateConstantOfShape(g: ChannelTies, node: NodeProto, from: string, label: string): string | undefined {
  const out = node.output![0];
  if (from !== out) return `${label} reads them as a shape`;
  return tieToSizeSource(g, node.input?.[0] ?? '', g.tracks.get(out)!.axis, out) ? undefined : `${label}: its shape holds the channel count where it cannot follow them`;
}
