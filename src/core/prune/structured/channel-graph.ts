import type { GraphView } from '../../onnx/graph';
import type { NodeProto } from '../../onnx/proto';
import { readTensor } from '../../onnx/tensor';
import { walkNodes } from '../../onnx/walk';
import { isConvLike, type PrunableLayer } from '../layers';
import { shapeSlot } from './apply';
import { AXISWISE, changedAxes, shapeValueAt, sliceRange } from './axis-ops';

/**
 * The dependency analysis behind structured pruning (the idea of Torch-Pruning's DepGraph, built here on
 * ONNX graphs). Every channel of every tensor on a path from a layer's output to the layers that read it
 * is an element; ops tie elements that must go together (an activation keeps channel c in place, a
 * residual Add ties channel c of both operands, a Concat shifts them, a Reshape into heads gathers a
 * head's channels into one element). Union-find then yields coupled sets: removing one set removes
 * exactly those slices of every weight involved. Anything the analysis cannot prove safe pins the sets
 * it touches, with the reason.
 */

/** Which axis of a tensor carries the tracked channels, and where its elements start in the union-find. */
interface Track { axis: number; size: number; base: number }

export type Relation =
  /** Output channel c of `layer` is element c of `tensor` (the layer's weight loses output slices). */
  | { kind: 'source'; layer: PrunableLayer; tensor: string }
  /** Input channel c of `layer` reads element c of `tensor` (the weight loses input slices). */
  | { kind: 'absorb'; layer: PrunableLayer; tensor: string }
  /** A depthwise Conv: its weight and bias lose output slices with `tensor`, and its group count follows. */
  | { kind: 'depthwise'; layer: PrunableLayer; tensor: string }
  /** A stored per-channel tensor (bias, BatchNorm statistics, scale) sliced along `axis` with `tensor`. */
  | { kind: 'param'; node: NodeProto; input: number; axis: number; tensor: string }
  /** A Reshape (or Expand) whose target shape holds `tensor`'s tracked size at `index`. */
  | { kind: 'reshape'; node: NodeProto; index: number; tensor: string }
  /** A model input whose kept channels a Gather selects (its shape stays; see pruneNormalized). */
  | { kind: 'input'; tensor: string; axis: number }
  /** A normalisation whose statistics run over `tensor`'s channels: after pruning, over the kept ones. */
  | { kind: 'norm'; node: NodeProto; tensor: string }
  /** A Split along the channels of `tensor` (its input): each output's size shrinks by what it loses. */
  | { kind: 'split'; node: NodeProto; tensor: string; sizes: number[] }
  /** A Slice of channels [start, end) of `tensor` (entry `entry` of its lists): both bounds move down. */
  | { kind: 'slice'; node: NodeProto; tensor: string; entry: number; start: number; end: number; starts: number[]; ends: number[]; legacy: boolean };

export interface ChannelSet {
  /** Union-find root: the id of the set. */
  id: number;
  /** (tensor, element) pairs in the set. */
  members: Array<[string, number]>;
  pinned?: string;
  /** Sets of one family share their tensors (e.g. the 128 hidden units of one MLP). */
  family: string;
}

const UNARY = new Set([
  'Relu', 'LeakyRelu', 'PRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Elu', 'Selu', 'Celu', 'Softplus', 'Softsign', 'Mish', 'Gelu', 'FastGelu',
  'Erf', 'Abs', 'Neg', 'Sqrt', 'Exp', 'Log', 'Reciprocal', 'Identity', 'Dropout', 'Cast', 'Floor', 'Ceil', 'Round', 'Clip', 'Sin', 'Cos', 'Not',
]);
const CHANNEL_OPS = new Set(['BatchNormalization', 'InstanceNormalization', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool']);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Where', 'Equal', 'Greater', 'Less']);
const SHAPE_OPS = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);
const IGNORED_READERS = new Set(['Shape', 'Size']);
const REDUCERS = new Set(['ReduceMean', 'ReduceSum', 'ReduceSumSquare', 'ReduceL2']);
const ALL_REDUCERS = new Set([...REDUCERS, 'ReduceMax', 'ReduceMin', 'ReduceL1', 'ReduceLogSumExp', 'ReduceProd']);

export class ChannelGraph {
  private readonly tracks = new Map<string, Track>();
  private parent: number[] = [];
  private readonly pins = new Map<number, string>();
  private readonly done = new Set<NodeProto>();
  private readonly queue: string[] = [];
  readonly relations: Relation[] = [];
  private readonly layerOf = new Map<NodeProto, PrunableLayer>();
  private readonly captured = new Set<string>();
  private readonly outputs: Set<string>;

  /** `normalized`: LayerNormalization dimensions and model inputs may be pruned (PruneOptions.pruneNormalized). */
  constructor(private readonly view: GraphView, private readonly shapes: Map<string, number[]>, layers: PrunableLayer[], private readonly normalized = false) {
    for (const l of layers) this.layerOf.set(l.node, l);
    this.outputs = new Set((view.graph.output ?? []).map((o) => o.name ?? ''));
    // Values read inside If/Loop/Scan bodies: their readers are out of sight, so their channels stay.
    for (const n of view.graph.node ?? []) {
      for (const a of n.attribute ?? []) {
        for (const g of [a.g, ...(a.graphs ?? [])]) {
          if (!g) continue;
          for (const { node } of walkNodes(g)) for (const i of node.input ?? []) if (i) this.captured.add(i);
        }
      }
    }
  }

  /** Tracks every prunable layer's output channels and follows them through the graph. */
  analyze(): void {
    for (const l of this.layerOf.values()) {
      if (l.opType === 'Conv' && this.isDepthwise(l)) continue; // tied to its input: reached from there
      const out = l.node.output![0];
      const dims = this.shapes.get(out);
      if (!dims) continue;
      const axis = isConvLike(l) ? 1 : dims.length - 1;
      if (this.track(out, axis)) this.relations.push({ kind: 'source', layer: l, tensor: out });
    }
    while (this.queue.length) this.visit(this.queue.shift()!);
  }

  private isDepthwise(l: PrunableLayer): boolean {
    const group = Number(l.node.attribute?.find((a) => a.name === 'group')?.i ?? 1);
    return group > 1 && l.dims[1] === 1;
  }

  // --- union-find over elements -------------------------------------------------------------

  private find(x: number): number {
    while (this.parent[x] !== x) x = this.parent[x] = this.parent[this.parent[x]];
    return x;
  }

  private union(a: number, b: number): void {
    const ra = this.find(a), rb = this.find(b);
    if (ra !== rb) this.parent[ra] = rb;
  }

  private el(tensor: string, i: number): number {
    return this.tracks.get(tensor)!.base + i;
  }

  /** Starts tracking `tensor` on `axis`; false (and the tensor pinned) when it is tracked on another. */
  private track(tensor: string, axis: number): boolean {
    const dims = this.shapes.get(tensor);
    if (!dims || axis < 0 || axis >= dims.length) return false;
    const t = this.tracks.get(tensor);
    if (t) {
      if (t.axis !== axis) this.pinTensor(tensor, `channels are read along two different axes of '${tensor}'`);
      return t.axis === axis;
    }
    const base = this.parent.length;
    for (let i = 0; i < dims[axis]; i++) this.parent.push(base + i);
    this.tracks.set(tensor, { axis, size: dims[axis], base });
    this.queue.push(tensor);
    return true;
  }

  private pinTensor(tensor: string, reason: string): void {
    const t = this.tracks.get(tensor);
    if (!t) return;
    for (let i = 0; i < t.size; i++) if (!this.pins.has(t.base + i)) this.pins.set(t.base + i, reason);
  }

  /** Ties element i of `a` to element i of `b` for all i (same size required). */
  private tie(a: string, b: string): boolean {
    const ta = this.tracks.get(a), tb = this.tracks.get(b);
    if (!ta || !tb || ta.size !== tb.size) return false;
    for (let i = 0; i < ta.size; i++) this.union(ta.base + i, tb.base + i);
    return true;
  }

  // --- walking the graph ---------------------------------------------------------------------

  private visit(tensor: string): void {
    const t = this.tracks.get(tensor)!;
    if (this.outputs.has(tensor)) this.pinTensor(tensor, `'${tensor}' is a model output`);
    if (this.view.graphInputs.has(tensor) && !this.view.constant(tensor)) {
      // A model input keeps its shape; with normalized dimensions on, a Gather picks the kept channels.
      if (!this.normalized || this.outputs.has(tensor)) this.pinTensor(tensor, `'${tensor}' is a model input${this.normalized ? '' : ' (--prune-norm selects its kept channels instead)'}`);
      else if (!this.relations.some((r) => r.kind === 'input' && r.tensor === tensor)) this.relations.push({ kind: 'input', tensor, axis: t.axis });
    }
    if (this.captured.has(tensor)) this.pinTensor(tensor, `'${tensor}' is read inside a control-flow subgraph`);
    const producer = this.view.producer.get(tensor);
    const pl = producer ? this.layerOf.get(producer) : undefined;
    if (producer && pl && !(pl.opType === 'Conv' && this.isDepthwise(pl))) {
      // A layer's output, also when reached from downstream (a residual operand): its channels are a source.
      const axis = isConvLike(pl) ? 1 : this.shapes.get(tensor)!.length - 1;
      if (producer.output![0] === tensor && t.axis === axis) {
        if (!this.relations.some((r) => r.kind === 'source' && r.tensor === tensor)) this.relations.push({ kind: 'source', layer: pl, tensor });
      } else this.pinTensor(tensor, `${producer.name || producer.op_type} writes '${tensor}' along another axis`);
    } else if (producer) {
      if (!this.done.has(producer)) this.handle(producer, tensor);
    } else if (!this.view.graphInputs.has(tensor) && !this.view.constant(tensor)) {
      this.pinTensor(tensor, `'${tensor}' has no producer in this graph`);
    }
    for (const c of this.view.consumersOf(tensor)) if (!this.done.has(c)) this.handle(c, tensor);
  }

  /** Establishes `node`'s ties once, starting from its tracked input or output `from`. */
  private handle(node: NodeProto, from: string): void {
    this.done.add(node);
    const op = node.op_type ?? '';
    const why = this.relate(node, from, op);
    if (why) for (const x of [...(node.input ?? []), ...(node.output ?? [])]) if (x && this.tracks.has(x)) this.pinTensor(x, why);
  }

  /** Returns a reason when the op cannot carry the channels safely. */
  private relate(node: NodeProto, from: string, op: string): string | undefined {
    const label = `${op} '${node.name || node.output?.[0]}'`;
    if ((node.domain ?? '') !== '' && !(node.domain === 'com.microsoft' && (op === 'Gelu' || op === 'FastGelu'))) return `${label} (domain ${node.domain}) is not analysed`;
    const axisOf = (x: string) => this.tracks.get(x)!.axis;
    const input0 = node.input?.[0] ?? '';
    const output0 = node.output?.[0] ?? '';
    const layer = this.layerOf.get(node);

    if (IGNORED_READERS.has(op)) return undefined;
    if (layer && op === 'Conv' && this.isDepthwise(layer)) {
      const a = axisOf(from);
      const inC = this.shapes.get(input0)?.[1], outC = layer.dims[0];
      if (a !== 1 || outC !== inC) return `${label}: depthwise with a channel multiplier is not pruned`;
      if (!this.track(input0, 1) || !this.track(output0, 1) || !this.tie(input0, output0)) return `${label}: shapes unknown`;
      this.relations.push({ kind: 'depthwise', layer, tensor: output0 });
      return undefined;
    }
    if (layer && from === input0) {
      const a = axisOf(from);
      const group = Number(node.attribute?.find((x) => x.name === 'group')?.i ?? 1);
      if (op === 'Conv' && group > 1) return `${label} is a grouped convolution (${group} groups)`;
      const want = isConvLike(layer) ? 1 : this.shapes.get(from)!.length - 1;
      if (op === 'Gemm' && Number(node.attribute?.find((x) => x.name === 'transA')?.i ?? 0)) return `${label} reads its input transposed`;
      if (a !== want) return `${label} reads the channels along axis ${a}, not its input axis`;
      this.relations.push({ kind: 'absorb', layer, tensor: from });
      return undefined;
    }
    if (UNARY.has(op) || CHANNEL_OPS.has(op)) {
      const x = from === output0 ? input0 : from;
      const a = axisOf(from);
      if (CHANNEL_OPS.has(op) && a !== 1) return `${label} works per channel on axis 1, not ${a}`;
      if (!this.track(x, a) || !this.track(output0, a) || !this.tie(x, output0)) return `${label}: shapes unknown`;
      // Per-channel parameters: BatchNorm's four, InstanceNorm's two, PRelu's slope.
      const params = op === 'BatchNormalization' ? [1, 2, 3, 4] : op === 'InstanceNormalization' ? [1, 2] : op === 'PRelu' ? [1] : [];
      for (const i of params) {
        const p = node.input?.[i];
        if (!p) continue;
        const r = this.paramRelation(node, i, output0);
        if (typeof r === 'string') return r;
      }
      return undefined;
    }
    if (BINARY.has(op)) return this.relateBroadcast(node, from, label);
    if (op === 'Transpose') {
      const perm = (node.attribute?.find((x) => x.name === 'perm')?.ints ?? []).map(Number);
      const rank = this.shapes.get(input0)?.length ?? 0;
      const p = perm.length ? perm : Array.from({ length: rank }, (_, i) => rank - 1 - i);
      const ok = from === input0 ? this.track(output0, p.indexOf(axisOf(from))) : this.track(input0, p[axisOf(from)]);
      return ok && this.tie(input0, output0) ? undefined : `${label}: shapes unknown`;
    }
    if (op === 'Concat') return this.relateConcat(node, from, label);
    if (SHAPE_OPS.has(op)) return this.relateReshape(node, from, label);
    if (op === 'MatMul') return this.relateMatMul(node, from, label);
    if (op === 'Softmax' || op === 'LogSoftmax' || op === 'LayerNormalization') {
      const rank = this.shapes.get(input0)?.length ?? 0;
      let ax = Number(node.attribute?.find((x) => x.name === 'axis')?.i ?? -1);
      if (ax < 0) ax += rank;
      const a = axisOf(from);
      const over = op === 'LayerNormalization' ? a >= ax : a === ax;
      // LayerNormalization over the last axis alone may lose channels (opt-in): scale and bias are sliced.
      if (over && this.normalized && op === 'LayerNormalization' && ax === rank - 1 && a === ax) {
        if ((node.output ?? []).slice(1).some((x) => x)) return `${label} exposes its statistics`;
        if (!this.track(input0, a) || !this.track(output0, a) || !this.tie(input0, output0)) return `${label}: shapes unknown`;
        for (const i of [1, 2]) if (node.input?.[i]) { const r = this.paramRelation(node, i, output0); if (r) return r; }
        this.relations.push({ kind: 'norm', node, tensor: input0 });
        return undefined;
      }
      if (over) return `${label} normalises over the channels${op === 'LayerNormalization' ? ' (--prune-norm allows it)' : ''}`;
      return this.track(input0, a) && this.track(output0, a) && this.tie(input0, output0) ? undefined : `${label}: shapes unknown`;
    }
    if (ALL_REDUCERS.has(op)) {
      const rank = this.shapes.get(input0)?.length ?? 0;
      const stored = node.input?.[1] ? this.view.stored(node.input[1]) : undefined;
      if (node.input?.[1] && !stored) return `${label}: its axes are computed`;
      const listed = (stored ? Array.from(readTensor(stored).data as BigInt64Array, Number) : (node.attribute?.find((x) => x.name === 'axes')?.ints ?? []).map(Number)).map((x) => (x < 0 ? x + rank : x));
      const axes = listed.length ? listed : Array.from({ length: rank }, (_, i) => i);
      const keep = Number(node.attribute?.find((x) => x.name === 'keepdims')?.i ?? 1);
      const a = axisOf(from);
      // A reduction over other axes (a mean over tokens or positions) carries the channels through.
      const outAxis = (x: number) => (keep ? x : x - axes.filter((r) => r < x).length);
      const inAxis = keep ? a : Array.from({ length: rank }, (_, i) => i).filter((i) => !axes.includes(i))[a];
      const inputSide = from === input0 ? a : inAxis;
      if (inputSide !== undefined && !axes.includes(inputSide)) {
        return this.track(input0, inputSide) && this.track(output0, outAxis(inputSide)) && this.tie(input0, output0) ? undefined : `${label}: shapes unknown`;
      }
      // --prune-norm: a mean or sum over the channels that is broadcast back (keepdims), as a decomposed
      // RMSNorm or LayerNorm computes its statistics, now runs over the kept channels.
      if (this.normalized && REDUCERS.has(op) && from === input0 && keep && axes.length === 1 && axes[0] === a) {
        this.relations.push({ kind: 'norm', node, tensor: from });
        return undefined;
      }
      return `${label} reduces over the channels${REDUCERS.has(op) && keep ? ' (--prune-norm allows it where a norm broadcasts the result back)' : ''}`;
    }
    // An embedding lookup (Gather on axis 0 of a stored [rows, channels] table) writes the channels: the
    // table loses the same columns.
    if (op === 'Gather' && from === output0 && this.view.stored(input0)) {
      const tableRank = (this.view.stored(input0)!.dims ?? []).length;
      const axis = Number(node.attribute?.find((x) => x.name === 'axis')?.i ?? 0);
      if (axis === 0 && tableRank === 2 && axisOf(from) === (this.shapes.get(output0)?.length ?? 0) - 1) return this.paramRelation(node, 0, output0);
    }
    if (op === 'Gather' && !this.view.stored(input0)) return this.relateGather(node, from, label);
    if (op === 'Split' && this.splitsChannels(node, from)) return this.relateSplit(node, from, label);
    if (AXISWISE.has(op)) return this.relateAxiswise(node, from, label);
    if (op === 'Expand') return this.relateExpand(node, from, label);
    return `${label} reads them`;
  }

  private splitsChannels(node: NodeProto, from: string): boolean {
    const rank = this.shapes.get(node.input![0])?.length ?? 0;
    let axis = Number(node.attribute?.find((x) => x.name === 'axis')?.i ?? 0);
    if (axis < 0) axis += rank;
    return (from === node.input![0] || (node.output ?? []).includes(from)) && this.tracks.get(from)!.axis === axis;
  }

  /** Split along the channels: output i holds the input's channels [offset_i, offset_i + size_i). */
  private relateSplit(node: NodeProto, from: string, label: string): string | undefined {
    const input0 = node.input![0];
    const outs = (node.output ?? []).filter(Boolean);
    if (outs.length !== (node.output ?? []).length) return `${label} has unnamed outputs`;
    const a = this.tracks.get(from)!.axis;
    const sizes = outs.map((o) => this.shapes.get(o)?.[a]);
    if (sizes.some((x) => x === undefined) || !this.track(input0, a) || sizes.reduce((x, y) => x! + y!, 0) !== this.tracks.get(input0)!.size) return `${label}: shapes unknown`;
    let offset = 0;
    for (const o of outs) {
      if (!this.track(o, a)) return `${label}: shapes unknown`;
      const to = this.tracks.get(o)!;
      for (let j = 0; j < to.size; j++) this.union(this.el(input0, offset + j), to.base + j);
      offset += to.size;
    }
    this.relations.push({ kind: 'split', node, tensor: input0, sizes: sizes as number[] });
    return undefined;
  }

  /**
   * Expand keeps the channels of its input where the target shape says 1 there (broadcast keeps the
   * input's size): a class token expanded over the batch, a stored tensor expanded over the tokens.
   */
  private relateExpand(node: NodeProto, from: string, label: string): string | undefined {
    const [data, shape] = node.input!;
    const out = node.output![0];
    const dd = this.shapes.get(data) ?? (this.view.stored(data)?.dims ?? []).map(Number), dout = this.shapes.get(out);
    if (from === shape) return `${label} reads them as a shape`;
    if (!dout || !dd.length) return `${label}: shapes unknown`;
    const shift = dout.length - dd.length;
    const outAxis = from === out ? this.tracks.get(from)!.axis : this.tracks.get(from)!.axis + shift;
    const dataAxis = outAxis - shift;
    if (dataAxis < 0 || dd[dataAxis] !== dout[outAxis]) return `${label} makes the channels by broadcasting`;
    const index = outAxis - (dout.length - this.shapeLength(shape));
    const target = shapeValueAt(this.view, shape, index, (x) => this.lengthOf(x));
    // 1 keeps the input's size; the size itself is written anew after pruning, as in a Reshape target.
    const rewrite = target === dout[outAxis] && target !== 1 && !!shapeSlot(this.view, node, index);
    if (target !== 1 && !rewrite) return `${label}: its target shape ${target === undefined ? 'is computed' : `holds ${target}`} where the channels are`;
    if (!this.track(out, outAxis)) return `${label}: shapes unknown`;
    if (rewrite) this.relations.push({ kind: 'reshape', node, index, tensor: out });
    if (this.view.stored(data)) return this.paramRelation(node, 0, out);
    return this.track(data, dataAxis) && this.tie(data, out) ? undefined : `${label}: shapes unknown`;
  }

  /** Elements of a (small) value: stored, or as probed. */
  private lengthOf(x: string): number | undefined {
    const t = this.view.stored(x);
    return t ? (t.dims ?? []).reduce((m, d) => m * Number(d), 1) : this.shapes.get(x)?.reduce((m, d) => m * d, 1);
  }

  private shapeLength(name: string): number {
    return Number(this.view.stored(name)?.dims?.[0] ?? this.shapes.get(name)?.[0] ?? 0);
  }

  /** Resize/Slice/Split/Pad/Tile: channels on an axis the op leaves alone pass through in place. */
  private relateAxiswise(node: NodeProto, from: string, label: string): string | undefined {
    const input0 = node.input![0];
    const outs = (node.output ?? []).filter(Boolean);
    if (from !== input0 && !outs.includes(from)) return `${label} reads them as a parameter`;
    const dims = this.shapes.get(input0);
    if (!dims || outs.some((o) => this.shapes.get(o)?.length !== dims.length)) return `${label}: shapes unknown`;
    const a = this.tracks.get(from)!.axis;
    const changed = changedAxes(node, this.view, dims);
    if (typeof changed === 'string') return `${label}: ${changed}`;
    if (changed.has(a) && node.op_type === 'Slice') return this.relateChannelSlice(node, from, label, dims);
    if (changed.has(a)) return `${label} changes the channel axis`;
    for (const x of [input0, ...outs]) if (!this.track(x, a)) return `${label}: shapes unknown`;
    for (const o of outs) if (!this.tie(input0, o)) return `${label}: sizes differ`;
    return undefined;
  }

  /** A Slice of a contiguous range of channels (torch's chunk): output channel j is input channel start + j. */
  private relateChannelSlice(node: NodeProto, from: string, label: string, dims: number[]): string | undefined {
    const input0 = node.input![0], out = node.output![0];
    const a = this.tracks.get(from)!.axis;
    const r = sliceRange(node, this.view, dims, a, (x) => (this.lengthOf(x) === 1 ? shapeValueAt(this.view, x, 0, (y) => this.lengthOf(y), (y) => this.shapes.get(y)) : undefined));
    if (typeof r === 'string') return `${label}: ${r}`;
    if (!this.track(input0, a) || !this.track(out, a)) return `${label}: shapes unknown`;
    const to = this.tracks.get(out)!;
    if (to.size !== r.end - r.start) return `${label}: shapes unknown`;
    for (let j = 0; j < to.size; j++) this.union(this.el(input0, r.start + j), to.base + j);
    this.relations.push({ kind: 'slice', node, tensor: input0, ...r });
    return undefined;
  }

  /** Gather along another axis: the channel axis moves by the rank the indices add or remove. */
  private relateGather(node: NodeProto, from: string, label: string): string | undefined {
    const [data, indices] = node.input!;
    const out = node.output![0];
    const dd = this.shapes.get(data), di = this.view.stored(indices) ? (this.view.stored(indices)!.dims ?? []).map(Number) : this.shapes.get(indices);
    if (!dd || !di || from === indices) return from === indices ? `${label} indexes by them` : `${label}: shapes unknown`;
    let g = Number(node.attribute?.find((x) => x.name === 'axis')?.i ?? 0);
    if (g < 0) g += dd.length;
    const a = this.tracks.get(from)!.axis;
    let inAxis: number, outAxis: number;
    if (from === data) {
      if (a === g) return `${label} picks among the channels`;
      [inAxis, outAxis] = [a, a < g ? a : a - 1 + di.length];
    } else {
      if (a >= g && a < g + di.length) return `${label} picks among the channels`;
      [inAxis, outAxis] = [a < g ? a : a - di.length + 1, a];
    }
    return this.track(data, inAxis) && this.track(out, outAxis) && this.tie(data, out) ? undefined : `${label}: shapes unknown`;
  }

  /** Relation for a stored per-channel input `i` of `node`, aligned (from the right) with `tensor`. */
  private paramRelation(node: NodeProto, i: number, tensor: string): string | undefined {
    const name = node.input![i];
    const c = this.view.stored(name);
    const dims = c ? (c.dims ?? []).map(Number) : undefined;
    const t = this.tracks.get(tensor)!;
    const rank = this.shapes.get(tensor)!.length;
    if (!dims) return `input '${name}' of ${node.op_type} is computed, not stored`;
    // BatchNorm/InstanceNorm parameters are [C]; everything else broadcasts from the right.
    const perChannel = node.op_type === 'BatchNormalization' || node.op_type === 'InstanceNormalization';
    const axis = perChannel ? 0 : t.axis - (rank - dims.length);
    if (axis < 0 || dims[axis] === 1) return undefined; // broadcast along the channels
    if (dims[axis] !== t.size) return `input '${name}' of ${node.op_type} does not match the channels`;
    this.relations.push({ kind: 'param', node, input: i, axis, tensor });
    return undefined;
  }

  private relateBroadcast(node: NodeProto, from: string, label: string): string | undefined {
    const out = node.output![0];
    const outRank = this.shapes.get(out)?.length;
    const fromRank = this.shapes.get(from)?.length;
    if (outRank === undefined || fromRank === undefined) return `${label}: shapes unknown`;
    const outAxis = from === out ? this.tracks.get(from)!.axis : this.tracks.get(from)!.axis + (outRank - fromRank);
    if (!this.track(out, outAxis)) return `${label}: shapes unknown`;
    const size = this.tracks.get(out)!.size;
    const inputs = node.op_type === 'Where' ? [1, 2] : (node.input ?? []).map((_, i) => i);
    if (node.op_type === 'Where' && node.input?.[0] && this.tracks.has(node.input[0])) return `${label} selects by these channels`;
    for (const i of inputs) {
      const x = node.input![i];
      if (!x) continue;
      if (this.view.stored(x)) {
        const r = this.paramRelation(node, i, out);
        if (r) return r;
        continue;
      }
      const dims = this.shapes.get(x);
      if (!dims) return `${label}: shapes unknown`;
      const a = outAxis - (outRank - dims.length);
      if (a < 0 || dims[a] === 1) continue; // broadcast along the channels: nothing to tie
      if (dims[a] !== size) return `${label}: operand sizes differ`;
      if (!this.track(x, a) || !this.tie(x, out)) return `${label}: shapes unknown`;
    }
    return undefined;
  }

  private relateConcat(node: NodeProto, from: string, label: string): string | undefined {
    const out = node.output![0];
    const rank = this.shapes.get(out)?.length ?? 0;
    let cat = Number(node.attribute?.find((x) => x.name === 'axis')?.i ?? 0);
    if (cat < 0) cat += rank;
    const a = this.tracks.get(from)!.axis;
    if (!this.track(out, a)) return `${label}: shapes unknown`;
    let offset = 0;
    for (const x of node.input ?? []) {
      if (!x) continue;
      if (this.view.constant(x)) return `${label} joins stored values into the channels`;
      if (!this.track(x, a)) return `${label}: shapes unknown`;
      const tx = this.tracks.get(x)!;
      if (a === cat) {
        for (let i = 0; i < tx.size; i++) this.union(tx.base + i, this.el(out, offset + i));
        offset += tx.size;
      } else if (!this.tie(x, out)) return `${label}: operand sizes differ`;
    }
    return undefined;
  }

  /**
   * Reshape/Flatten/Squeeze/Unsqueeze: the tracked axis keeps its elements (same block), is merged with
   * the axes after it (each channel becomes a run of elements: Flatten before a Gemm), or is split so
   * that runs of channels become one element (channels into attention heads).
   */
  private relateReshape(node: NodeProto, from: string, label: string): string | undefined {
    const inp = node.input![0], out = node.output![0];
    const di = this.shapes.get(inp), dout = this.shapes.get(out);
    if (!di || !dout) return `${label}: shapes unknown`;
    const prod = (d: number[], a: number, b: number) => d.slice(a, b).reduce((x, y) => x * y, 1);
    // Map an axis on one side to the other: the first axis there whose prefix product is the same.
    const forward = from === inp;
    const [src, dst] = forward ? [di, dout] : [dout, di];
    const a = this.tracks.get(from)!.axis;
    const pre = prod(src, 0, a), post = prod(src, a + 1, src.length);
    let b = -1;
    for (let j = 0; j < dst.length; j++) if (prod(dst, 0, j) === pre && dst[j] > 1) { b = j; break; }
    if (b < 0) return `${label} scatters the channels`;
    // A fused projection split into [parts, heads, head size] (q/k/v or k/v in one MatMul): the heads axis
    // carries the channels, so whole heads go from every part; the parts axis stays whole.
    if (forward && dst[b] <= 3 && b + 2 < dst.length && dst[b + 1] > 1 && post === 1 && src[a] === prod(dst, b, dst.length) && this.tracks.get(out)?.axis !== b) {
      const parts = dst[b], heads = dst[b + 1], size = prod(dst, b + 2, dst.length);
      if (!this.track(out, b + 1)) return `${label}: shapes unknown`;
      const ts = this.tracks.get(from)!, td = this.tracks.get(out)!;
      for (let c = 0; c < parts * heads * size; c++) this.union(ts.base + c, td.base + Math.floor((c % (heads * size)) / size));
      if (!shapeSlot(this.view, node, b + 1) || node.op_type !== 'Reshape') return `${label}: its target shape is computed in a way the new size cannot be written into`;
      this.relations.push({ kind: 'reshape', node, index: b + 1, tensor: out });
      return undefined;
    }
    const postDst = prod(dst, b + 1, dst.length);
    const other = forward ? out : inp;
    if (!this.track(other, b)) return `${label}: shapes unknown`;
    const ts = this.tracks.get(from)!, td = this.tracks.get(other)!;
    if (postDst === post && dst[b] === src[a]) this.tie(from, other);
    else if (postDst < post && post % postDst === 0 && dst[b] === src[a] * (post / postDst)) {
      const r = post / postDst; // each source element spans r elements here
      for (let i = 0; i < ts.size; i++) for (let k = 0; k < r; k++) this.union(ts.base + i, td.base + i * r + k);
    } else if (postDst > post && postDst % post === 0 && src[a] === dst[b] * (postDst / post)) {
      const r = postDst / post; // r source elements make one element here
      for (let i = 0; i < ts.size; i++) this.union(ts.base + i, td.base + Math.floor(i / r));
    } else return `${label} regroups the channels`;
    if (node.op_type === 'Reshape') {
      const index = forward ? b : a;
      if (!shapeSlot(this.view, node, index)) return `${label}: its target shape is computed in a way the new size cannot be written into`;
      this.relations.push({ kind: 'reshape', node, index: forward ? b : a, tensor: out });
    }
    return undefined;
  }

  /** MatMul of two activations (attention): batch axes tie, a contracted axis ties both operands. */
  private relateMatMul(node: NodeProto, from: string, label: string): string | undefined {
    const [A, B] = node.input!;
    const out = node.output![0];
    const da = this.shapes.get(A), db = this.shapes.get(B), dout = this.shapes.get(out);
    if (!da || !db || !dout || da.length < 2 || db.length < 2) return `${label}: shapes unknown`;
    const a = this.tracks.get(from)!.axis;
    const r = dout.length;
    // Axis positions relative to the end: -1 columns, -2 rows, ≤ -3 batch.
    const rel = a - (from === A ? da.length : from === B ? db.length : r);
    if (this.view.constant(A) || this.view.constant(B)) return `${label} multiplies by a stored matrix on the wrong side`;
    if (rel <= -3) {
      for (const [x, d] of [[A, da], [B, db], [out, dout]] as Array<[string, number[]]>) {
        const ax = d.length + rel;
        if (ax < 0 || d[ax] === 1) continue;
        if (!this.track(x, ax)) return `${label}: shapes unknown`;
      }
      for (const x of [A, B]) if (this.tracks.has(x) && !this.tie(x, out)) return `${label}: batch sizes differ`;
      return undefined;
    }
    if ((from === A && rel === -1) || (from === B && rel === -2)) {
      // The contracted dimension: both operands lose the same entries and the product is unchanged in shape.
      if (!this.track(A, da.length - 1) || !this.track(B, db.length - 2) || !this.tie(A, B)) return `${label}: shapes unknown`;
      return undefined;
    }
    if ((from === A && rel === -2) || (from === out && rel === -2)) {
      return this.track(A, da.length - 2) && this.track(out, r - 2) && this.tie(A, out) ? undefined : `${label}: shapes unknown`;
    }
    if ((from === B && rel === -1) || (from === out && rel === -1)) {
      return this.track(B, db.length - 1) && this.track(out, r - 1) && this.tie(B, out) ? undefined : `${label}: shapes unknown`;
    }
    return `${label}: shapes unknown`;
  }

  // --- results -------------------------------------------------------------------------------

  /** The coupled sets, each with its members, pin reason and family. */
  sets(): ChannelSet[] {
    const byRoot = new Map<number, ChannelSet>();
    for (const [tensor, t] of this.tracks) {
      for (let i = 0; i < t.size; i++) {
        const root = this.find(t.base + i);
        let s = byRoot.get(root);
        if (!s) byRoot.set(root, (s = { id: root, members: [], family: '' }));
        s.members.push([tensor, i]);
        const pin = this.pins.get(t.base + i);
        if (pin && !s.pinned) s.pinned = pin;
      }
    }
    const sources = new Set(this.relations.filter((r) => r.kind === 'source').map((r) => r.tensor));
    for (const s of byRoot.values()) {
      const tensors = [...new Set(s.members.map(([t]) => t))].sort();
      s.family = tensors.join('|');
      if (!s.pinned && !tensors.some((t) => sources.has(t))) s.pinned = 'no layer writes these channels';
    }
    return [...byRoot.values()];
  }

  trackOf(tensor: string): { axis: number; size: number } | undefined {
    return this.tracks.get(tensor);
  }

  elementRoot(tensor: string, i: number): number {
    return this.find(this.el(tensor, i));
  }
}
