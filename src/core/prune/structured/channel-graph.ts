import type { GraphView } from '../../onnx/graph';
import type { NodeProto } from '../../onnx/proto';
import { readTensor } from '../../onnx/tensor';
import { walkNodes } from '../../onnx/walk';
import { isConvLike, type PrunableLayer } from '../layers';
import { AXISWISE } from './axis-ops';
import { relateAxiswise, relateExpand, relateGather, relateReshape, relateSplit, splitsChannels } from './layout-relations';

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
  readonly tracks = new Map<string, Track>();
  private parent: number[] = [];
  private readonly pins = new Map<number, string>();
  private readonly done = new Set<NodeProto>();
  private readonly queue: string[] = [];
  readonly relations: Relation[] = [];
  private readonly layerOf = new Map<NodeProto, PrunableLayer>();
  private readonly captured = new Set<string>();
  private readonly outputs: Set<string>;

  /** `normalized`: LayerNormalization dimensions and model inputs may be pruned (PruneOptions.pruneNormalized). */
  constructor(readonly view: GraphView, readonly shapes: Map<string, number[]>, layers: PrunableLayer[], private readonly normalized = false) {
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

  // --- union-find over elements (public to layout-relations.ts, which relates the layout ops) ---

  private find(x: number): number {
    while (this.parent[x] !== x) x = this.parent[x] = this.parent[this.parent[x]];
    return x;
  }

  union(a: number, b: number): void {
    const ra = this.find(a), rb = this.find(b);
    if (ra !== rb) this.parent[ra] = rb;
  }

  el(tensor: string, i: number): number {
    return this.tracks.get(tensor)!.base + i;
  }

  /** Starts tracking `tensor` on `axis`; false (and the tensor pinned) when it is tracked on another. */
  track(tensor: string, axis: number): boolean {
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
  tie(a: string, b: string): boolean {
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
    if (SHAPE_OPS.has(op)) return relateReshape(this, node, from, label);
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
    if (op === 'Gather' && !this.view.stored(input0)) return relateGather(this, node, from, label);
    if (op === 'Split' && splitsChannels(this, node, from)) return relateSplit(this, node, from, label);
    if (AXISWISE.has(op)) return relateAxiswise(this, node, from, label);
    if (op === 'Expand') return relateExpand(this, node, from, label);
    return `${label} reads them`;
  }

  /** Relation for a stored per-channel input `i` of `node`, aligned (from the right) with `tensor`. */
  paramRelation(node: NodeProto, i: number, tensor: string): string | undefined {
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
