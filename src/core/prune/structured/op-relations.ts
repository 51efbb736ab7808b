import { UNARY_ELEMENTWISE } from '../../onnx/unary-ops';
import { attrInt, attrInts } from '../../onnx/attributes';
import type { NodeProto } from '../../onnx/proto';
import { readTensor } from '../../onnx/tensor';
import { AXISWISE } from './axis-ops';
import { relateAxiswise, relateConstantOfShape, relateExpand, relateGather, relateReshape, relateSplit, splitsChannels } from './layout-relations';
import type { ChannelTies, Relate } from './relations';

/**
 * How each op type carries tracked channels (like Torch-Pruning's per-layer pruners, one entry per op):
 * the registry ChannelGraph consults for every op that is not a prunable layer. An op missing here pins
 * the channels it reads, with the reason.
 */

const axisOf = (g: ChannelTies, x: string) => g.tracks.get(x)!.axis;
const io = (node: NodeProto) => ({ input0: node.input?.[0] ?? '', output0: node.output?.[0] ?? '' });
const tieThrough = (g: ChannelTies, x: string, out: string, a: number, label: string) => (g.track(x, a) && g.track(out, a) && g.tie(x, out) ? undefined : `${label}: shapes unknown`);

/** Elementwise on one input: channel c stays channel c. */
const unary: Relate = (g, node, from, label) => {
  const { input0, output0 } = io(node);
  return tieThrough(g, from === output0 ? input0 : from, output0, axisOf(g, from), label);
};

/** Per-channel ops on axis 1, whose stored per-channel inputs lose the same channels. */
function perChannel(params: number[]): Relate {
  return (g, node, from, label) => {
    const { input0, output0 } = io(node);
    const a = axisOf(g, from);
    if (a !== 1) return `${label} works per channel on axis 1, not ${a}`;
    const why = tieThrough(g, from === output0 ? input0 : from, output0, a, label);
    if (why) return why;
    for (const i of params) if (node.input?.[i]) { const r = g.paramRelation(node, i, output0); if (r) return r; }
    return undefined;
  };
}

/**
 * GroupNormalization: its statistics run over groups of C / num_groups channels, so a group's channels are
 * tied and go together; what is kept is normalised exactly as before. Scale and bias are per channel
 * (opset 21) or per group (opset 18): the first are sliced with the channels, the second with the groups.
 */
const groupNorm: Relate = (g, node, from, label) => {
  const { input0, output0 } = io(node);
  const a = axisOf(g, from);
  if (a !== 1) return `${label} works per channel on axis 1, not ${a}`;
  const tied = tieThrough(g, input0, output0, a, label);
  if (tied) return tied;
  const channels = g.tracks.get(input0)!.size, groups = attrInt(node, 'num_groups', 0);
  if (groups <= 0 || channels % groups) return `${label}: ${channels} channels do not split into ${groups} groups`;
  const size = channels / groups;
  for (let c = 0; c < channels; c++) if (c % size) g.union(g.el(input0, c), g.el(input0, c - (c % size)));
  for (const i of [1, 2]) {
    const dims = (g.view.stored(node.input?.[i] ?? '')?.dims ?? []).map(Number);
    if (dims.length !== 1 || (dims[0] !== channels && dims[0] !== groups)) return `${label}: input ${i} is neither a stored per-channel nor a per-group vector`;
    const why = dims[0] === channels ? g.paramRelation(node, i, output0) : undefined; // per group: sliced with num_groups (see 'groups')
    if (why) return why;
  }
  g.relations.push({ kind: 'groups', node, tensor: input0, size });
  return undefined;
};

/** PRelu: elementwise, with a slope per channel where it has one. */
const prelu: Relate = (g, node, from, label) => unary(g, node, from, label) ?? g.paramRelation(node, 1, io(node).output0);

/** Broadcasting binary ops: operands that hold the channels tie, stored ones are sliced. */
const broadcast: Relate = (g, node, from, label) => {
  const out = node.output![0];
  const outRank = g.shapes.get(out)?.length;
  const fromRank = g.shapes.get(from)?.length;
  if (outRank === undefined || fromRank === undefined) return `${label}: shapes unknown`;
  const outAxis = from === out ? axisOf(g, from) : axisOf(g, from) + (outRank - fromRank);
  if (!g.track(out, outAxis)) return `${label}: shapes unknown`;
  const size = g.tracks.get(out)!.size;
  const inputs = node.op_type === 'Where' ? [1, 2] : (node.input ?? []).map((_, i) => i);
  if (node.op_type === 'Where' && node.input?.[0] && g.tracks.has(node.input[0])) return `${label} selects by these channels`;
  for (const i of inputs) {
    const x = node.input![i];
    if (!x) continue;
    if (g.view.stored(x)) {
      const r = g.paramRelation(node, i, out);
      if (r) return r;
      continue;
    }
    const dims = g.shapes.get(x);
    if (!dims) return `${label}: shapes unknown`;
    const a = outAxis - (outRank - dims.length);
    if (a < 0 || dims[a] === 1) continue; // broadcast along the channels: nothing to tie
    if (dims[a] !== size) return `${label}: operand sizes differ`;
    if (!g.track(x, a) || !g.tie(x, out)) return `${label}: shapes unknown`;
  }
  return undefined;
};

const transpose: Relate = (g, node, from, label) => {
  const { input0, output0 } = io(node);
  const rank = g.shapes.get(input0)?.length ?? 0;
  const perm = attrInts(node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const ok = from === input0 ? g.track(output0, perm.indexOf(axisOf(g, from))) : g.track(input0, perm[axisOf(g, from)]);
  return ok && g.tie(input0, output0) ? undefined : `${label}: shapes unknown`;
};

/** Concat along the channels shifts each input's channels by the sizes before it; along others, all tie. */
const concat: Relate = (g, node, from, label) => {
  const out = node.output![0];
  const rank = g.shapes.get(out)?.length ?? 0;
  let cat = attrInt(node, 'axis', 0);
  if (cat < 0) cat += rank;
  const a = axisOf(g, from);
  if (!g.track(out, a)) return `${label}: shapes unknown`;
  let offset = 0;
  for (const x of node.input ?? []) {
    if (!x) continue;
    if (g.view.constant(x)) return `${label} joins stored values into the channels`;
    if (!g.track(x, a)) return `${label}: shapes unknown`;
    const tx = g.tracks.get(x)!;
    if (a === cat) {
      for (let i = 0; i < tx.size; i++) g.union(tx.base + i, g.el(out, offset + i));
      offset += tx.size;
    } else if (!g.tie(x, out)) return `${label}: operand sizes differ`;
  }
  return undefined;
};

/** MatMul of two activations (attention): batch axes tie, a contracted axis ties both operands. */
const matMul: Relate = (g, node, from, label) => {
  const [A, B] = node.input!;
  const out = node.output![0];
  const da = g.shapes.get(A), db = g.shapes.get(B), dout = g.shapes.get(out);
  if (!da || !db || !dout || da.length < 2 || db.length < 2) return `${label}: shapes unknown`;
  const a = axisOf(g, from);
  const r = dout.length;
  // Axis positions relative to the end: -1 columns, -2 rows, ≤ -3 batch.
  const rel = a - (from === A ? da.length : from === B ? db.length : r);
  if (g.view.constant(A) || g.view.constant(B)) return `${label} multiplies by a stored matrix on the wrong side`;
  if (rel <= -3) {
    for (const [x, d] of [[A, da], [B, db], [out, dout]] as Array<[string, number[]]>) {
      const ax = d.length + rel;
      if (ax < 0 || d[ax] === 1) continue;
      if (!g.track(x, ax)) return `${label}: shapes unknown`;
    }
    for (const x of [A, B]) if (g.tracks.has(x) && !g.tie(x, out)) return `${label}: batch sizes differ`;
    return undefined;
  }
  // The contracted dimension: both operands lose the same entries and the product is unchanged in shape.
  if ((from === A && rel === -1) || (from === B && rel === -2)) return g.track(A, da.length - 1) && g.track(B, db.length - 2) && g.tie(A, B) ? undefined : `${label}: shapes unknown`;
  if ((from === A && rel === -2) || (from === out && rel === -2)) return g.track(A, da.length - 2) && g.track(out, r - 2) && g.tie(A, out) ? undefined : `${label}: shapes unknown`;
  if ((from === B && rel === -1) || (from === out && rel === -1)) return g.track(B, db.length - 1) && g.track(out, r - 1) && g.tie(B, out) ? undefined : `${label}: shapes unknown`;
  return `${label}: shapes unknown`;
};

/**
 * Softmax, LogSoftmax, LayerNormalization: channels on another axis pass through; over the normalised
 * axis they are pinned, except LayerNormalization's last axis under --prune-norm (scale, bias sliced).
 */
const normalize: Relate = (g, node, from, label) => {
  const op = node.op_type;
  const { input0, output0 } = io(node);
  const rank = g.shapes.get(input0)?.length ?? 0;
  let ax = attrInt(node, 'axis', -1);
  if (ax < 0) ax += rank;
  const a = axisOf(g, from);
  const over = op === 'LayerNormalization' ? a >= ax : a === ax;
  if (over && g.normalized && op === 'LayerNormalization' && ax === rank - 1 && a === ax) {
    if ((node.output ?? []).slice(1).some((x) => x)) return `${label} exposes its statistics`;
    const why = tieThrough(g, input0, output0, a, label);
    if (why) return why;
    for (const i of [1, 2]) if (node.input?.[i]) { const r = g.paramRelation(node, i, output0); if (r) return r; }
    g.relations.push({ kind: 'norm', node, tensor: input0 });
    return undefined;
  }
  if (over) return `${label} normalises over the channels${op === 'LayerNormalization' ? ' (--prune-norm allows it)' : ''}`;
  return tieThrough(g, input0, output0, a, label);
};

const MEAN_LIKE = new Set(['ReduceMean', 'ReduceSum', 'ReduceSumSquare', 'ReduceL2']);

/** Reductions over other axes carry the channels; over the channels, only a norm's broadcast statistics (--prune-norm). */
const reduce: Relate = (g, node, from, label) => {
  const op = node.op_type ?? '';
  const { input0, output0 } = io(node);
  const rank = g.shapes.get(input0)?.length ?? 0;
  const stored = node.input?.[1] ? g.view.stored(node.input[1]) : undefined;
  if (node.input?.[1] && !stored) return `${label}: its axes are computed`;
  const listed = (stored ? Array.from(readTensor(stored).data as BigInt64Array, Number) : (attrInts(node, 'axes') ?? [])).map((x) => (x < 0 ? x + rank : x));
  const axes = listed.length ? listed : Array.from({ length: rank }, (_, i) => i);
  const keep = attrInt(node, 'keepdims', 1);
  const a = axisOf(g, from);
  const outAxis = (x: number) => (keep ? x : x - axes.filter((r) => r < x).length);
  const inAxis = keep ? a : Array.from({ length: rank }, (_, i) => i).filter((i) => !axes.includes(i))[a];
  const inputSide = from === input0 ? a : inAxis;
  if (inputSide !== undefined && !axes.includes(inputSide)) {
    return g.track(input0, inputSide) && g.track(output0, outAxis(inputSide)) && g.tie(input0, output0) ? undefined : `${label}: shapes unknown`;
  }
  // A mean or sum over the channels broadcast back (keepdims), as a decomposed RMSNorm or LayerNorm
  // computes its statistics, now runs over the kept channels.
  if (g.normalized && MEAN_LIKE.has(op) && from === input0 && keep && axes.length === 1 && axes[0] === a) {
    g.relations.push({ kind: 'norm', node, tensor: from });
    return undefined;
  }
  return `${label} reduces over the channels${MEAN_LIKE.has(op) && keep ? ' (--prune-norm allows it where a norm broadcasts the result back)' : ''}`;
};

/** Gather from a stored [rows, channels] table (an embedding) writes the channels: the table loses columns. Otherwise a layout op. */
const gather: Relate = (g, node, from, label) => {
  const { input0, output0 } = io(node);
  const table = g.view.stored(input0);
  if (!table) return relateGather(g, node, from, label);
  if (from === output0 && attrInt(node, 'axis', 0) === 0 && (table.dims ?? []).length === 2 && axisOf(g, from) === (g.shapes.get(output0)?.length ?? 0) - 1) return g.paramRelation(node, 0, output0);
  return `${label} reads them`;
};

/** Split along the channels divides them among its outputs; along another axis, each output keeps them. */
const split: Relate = (g, node, from, label) => (splitsChannels(g, node, from) ? relateSplit(g, node, from, label) : relateAxiswise(g, node, from, label));

/** Readers of a tensor's shape only: nothing to tie. */
const shapeOnly: Relate = () => undefined;

const POOLS = ['MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool'];
const BINARY = ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Where', 'Equal', 'Greater', 'Less'];
const REDUCERS = [...MEAN_LIKE, 'ReduceMax', 'ReduceMin', 'ReduceL1', 'ReduceLogSumExp', 'ReduceProd'];

/** The relation of each op type the analysis knows (default domain; com.microsoft Gelu/FastGelu too). */
export const OP_RELATIONS: Readonly<Record<string, Relate>> = {
  ...Object.fromEntries(UNARY_ELEMENTWISE.map((op) => [op, unary])),
  PRelu: prelu,
  BatchNormalization: perChannel([1, 2, 3, 4]),
  InstanceNormalization: perChannel([1, 2]),
  GroupNormalization: groupNorm,
  ...Object.fromEntries(POOLS.map((op) => [op, perChannel([])])),
  ...Object.fromEntries(BINARY.map((op) => [op, broadcast])),
  Transpose: transpose,
  Concat: concat,
  ...Object.fromEntries(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze'].map((op) => [op, relateReshape])),
  MatMul: matMul,
  ...Object.fromEntries(['Softmax', 'LogSoftmax', 'LayerNormalization'].map((op) => [op, normalize])),
  ...Object.fromEntries(REDUCERS.map((op) => [op, reduce])),
  Gather: gather,
  Split: split,
  ...Object.fromEntries([...AXISWISE].filter((op) => op !== 'Split').map((op) => [op, relateAxiswise])),
  Expand: relateExpand,
  ConstantOfShape: relateConstantOfShape,
  Shape: shapeOnly,
  Size: shapeOnly,
};

/** Contrib ops analysed like their standard counterparts. */
// FastGelu's optional and BiasGelu's bias is a [channels] vector added first: sliced like an Add's operand.
export const CONTRIB_RELATIONS: Readonly<Record<string, Relate>> = { Gelu: unary, QuickGelu: unary, FastGelu: broadcast, BiasGelu: broadcast };
