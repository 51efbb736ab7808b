import type { GraphView } from '../../onnx/graph';
import type { NodeProto } from '../../onnx/proto';
import { walkNodes } from '../../onnx/walk';
import { isConvLike, type PrunableLayer } from '../layers';
import { CONTRIB_RELATIONS, OP_RELATIONS } from './op-relations';
import type { ChannelSet, ChannelTies, Relation, Track } from './relations';
import { attrInt } from '../../onnx/attributes';

/**
 * The dependency analysis behind structured pruning (the idea of Torch-Pruning's DepGraph, built here on
 * ONNX graphs). Every channel of every tensor on a path from a layer's output to the layers that read it
 * is an element; ops tie elements that must go together (an activation keeps channel c in place, a
 * residual Add ties channel c of both operands, a Concat shifts them, a Reshape into heads gathers a
 * head's channels into one element). Union-find then yields coupled sets: removing one set removes
 * exactly those slices of every weight involved. Anything the analysis cannot prove safe pins the sets
 * it touches, with the reason.
 */

export class ChannelGraph implements ChannelTies {
  readonly tracks = new Map<string, Track>();
  private parent: number[] = [];
  private readonly pins = new Map<number, string>();
  private readonly done = new Set<NodeProto>();
  /** Nodes that could not carry channels, and why: a tensor tracked to one of them later is pinned too. */
  private readonly failed = new Map<NodeProto, string>();
  private readonly queue: string[] = [];
  readonly relations: Relation[] = [];
  private readonly layerOf = new Map<NodeProto, PrunableLayer>();
  private readonly captured = new Set<string>();
  private readonly outputs: Set<string>;

  /** `normalized`: LayerNormalization dimensions and model inputs may be pruned (PruneOptions.pruneNormalized). */
  constructor(readonly view: GraphView, readonly shapes: Map<string, number[]>, layers: PrunableLayer[], readonly normalized = false) {
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
      if (!this.track(out, axis)) continue;
      this.relations.push({ kind: 'source', layer: l, tensor: out });
      // A grouped conv's outputs go a position of every group at once, so each group keeps as many.
      const group = l.opType === 'Conv' ? attrInt(l.node, 'group', 1) : 1;
      if (group > 1) this.tieAcrossGroups(out, group);
    }
    while (this.queue.length) this.visit(this.queue.shift()!);
  }

  /** Ties channel p of each of `tensor`'s `groups` consecutive groups to p of the first (false: they do not divide evenly). */
  private tieAcrossGroups(tensor: string, groups: number): boolean {
    const size = this.tracks.get(tensor)!.size;
    if (size % groups) return false;
    const width = size / groups;
    for (let g = 1; g < groups; g++) for (let p = 0; p < width; p++) this.union(this.el(tensor, p), this.el(tensor, g * width + p));
    return true;
  }

  private isDepthwise(l: PrunableLayer): boolean {
    const group = attrInt(l.node, 'group', 1);
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
      this.meet(producer, tensor);
    } else if (!this.view.graphInputs.has(tensor) && !this.view.constant(tensor)) {
      this.pinTensor(tensor, `'${tensor}' has no producer in this graph`);
    }
    for (const c of this.view.consumersOf(tensor)) this.meet(c, tensor);
  }

  /**
   * `node` reached from `tensor`: related the first time; after that, a node that failed pins every tensor
   * that reaches it later (an Add can tie a Resize's output to another family after the Resize failed).
   */
  private meet(node: NodeProto, tensor: string): void {
    if (!this.done.has(node)) this.handle(node, tensor);
    else if (this.failed.has(node)) this.pinTensor(tensor, this.failed.get(node)!);
  }

  /** Establishes `node`'s ties once, starting from its tracked input or output `from`. */
  private handle(node: NodeProto, from: string): void {
    this.done.add(node);
    const op = node.op_type ?? '';
    const why = this.relate(node, from, op);
    if (why) this.failed.set(node, why);
    if (why) for (const x of [...(node.input ?? []), ...(node.output ?? [])]) if (x && this.tracks.has(x)) this.pinTensor(x, why);
  }

  /** Returns a reason when the op cannot carry the channels safely. */
  private relate(node: NodeProto, from: string, op: string): string | undefined {
    const label = `${op} '${node.name || node.output?.[0]}'`;
    const domain = node.domain ?? '';
    const relation = domain === '' ? OP_RELATIONS[op] : domain === 'com.microsoft' ? CONTRIB_RELATIONS[op] : undefined;
    if (domain !== '' && !relation) return `${label} (domain ${domain}) is not analysed`;
    const layer = this.layerOf.get(node);
    if (layer) {
      const why = this.relateLayer(node, layer, from, label);
      if (why !== false) return why;
    }
    return relation ? relation(this, node, from, label) : `${label} reads them`;
  }

  /**
   * A prunable layer met on the way: a depthwise Conv carries its input's channels to its output; any
   * other layer absorbs them into its weight's input slices. false: met at its output (handled as a source).
   */
  private relateLayer(node: NodeProto, layer: PrunableLayer, from: string, label: string): string | undefined | false {
    const input0 = node.input?.[0] ?? '';
    const output0 = node.output?.[0] ?? '';
    const a = this.tracks.get(from)!.axis;
    if (node.op_type === 'Conv' && this.isDepthwise(layer)) {
      const inC = this.shapes.get(input0)?.[1], outC = layer.dims[0];
      if (a !== 1 || outC !== inC) return `${label}: depthwise with a channel multiplier is not pruned`;
      if (!this.track(input0, 1) || !this.track(output0, 1) || !this.tie(input0, output0)) return `${label}: shapes unknown`;
      this.relations.push({ kind: 'depthwise', layer, tensor: output0 });
      return undefined;
    }
    if (from !== input0) return false;
    const group = attrInt(node, 'group', 1);
    const want = isConvLike(layer) ? 1 : this.shapes.get(from)!.length - 1;
    if (node.op_type === 'Conv' && group > 1) {
      // Each group reads its own run of channels through the same weight columns: a position goes from
      // every group at once (RegNet's and ResNeXt's grouped 3x3 convs).
      if (a !== 1 || !this.tieAcrossGroups(from, group)) return `${label} is a grouped convolution (${group} groups) whose channels do not split into them`;
      this.relations.push({ kind: 'grouped', layer, tensor: from, width: this.tracks.get(from)!.size / group });
      return undefined;
    }
    if (node.op_type === 'Gemm' && attrInt(node, 'transA', 0)) return `${label} reads its input transposed`;
    if (a !== want) return `${label} reads the channels along axis ${a}, not its input axis`;
    this.relations.push({ kind: 'absorb', layer, tensor: from });
    return undefined;
  }

  /** Relation for a stored per-channel input `i` of `node`, aligned (from the right) with `tensor`. */
  paramRelation(node: NodeProto, i: number, tensor: string): string | undefined {
    const name = node.input![i];
    const c = this.view.stored(name);
    const dims = c ? (c.dims ?? []).map(Number) : undefined;
    const t = this.tracks.get(tensor)!;
    const rank = this.shapes.get(tensor)!.length;
    if (!dims) return `input '${name}' of ${node.op_type} is computed, not stored`;
    // BatchNorm/InstanceNorm (and opset-21 GroupNorm) parameters are [C]; everything else broadcasts from the right.
    const perChannel = node.op_type === 'BatchNormalization' || node.op_type === 'InstanceNormalization' || node.op_type === 'GroupNormalization';
    const axis = perChannel ? 0 : t.axis - (rank - dims.length);
    if (axis < 0 || dims[axis] === 1) return undefined; // broadcast along the channels
    if (dims[axis] !== t.size) return `input '${name}' of ${node.op_type} does not match the channels`;
    this.relations.push({ kind: 'param', node, input: i, axis, tensor });
    return undefined;
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
