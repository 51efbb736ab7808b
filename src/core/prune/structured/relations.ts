import type { GraphView } from '../../onnx/graph';
import type { NodeProto } from '../../onnx/proto';
import type { PrunableLayer } from '../layers';

/** Which axis of a tensor carries the tracked channels, and where its elements start in the union-find. */
export interface Track { axis: number; size: number; base: number }

export type Relation =
  /** Output channel c of `layer` is element c of `tensor` (the layer's weight loses output slices). */
  | { kind: 'source'; layer: PrunableLayer; tensor: string }
  /** Input channel c of `layer` reads element c of `tensor` (the weight loses input slices). */
  | { kind: 'absorb'; layer: PrunableLayer; tensor: string }
  /**
   * A grouped (not depthwise) Conv reading `tensor` in groups of `width` channels through the same weight
   * columns: a position goes from every group at once (tied), and the weight loses that input slice.
   */
  | { kind: 'grouped'; layer: PrunableLayer; tensor: string; width: number }
  /** A depthwise Conv: its weight and bias lose output slices with `tensor`, and its group count follows. */
  | { kind: 'depthwise'; layer: PrunableLayer; tensor: string }
  /** A stored per-channel tensor (bias, BatchNorm statistics, scale) sliced along `axis` with `tensor`. */
  | { kind: 'param'; node: NodeProto; input: number; axis: number; tensor: string }
  /** A GroupNormalization over `tensor`'s channels in groups of `size`: num_groups, and per-group scale and bias (opset 18), follow the groups removed whole. */
  | { kind: 'groups'; node: NodeProto; tensor: string; size: number }
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

/**
 * What an op's relation sees of the channel graph: the tracked tensors and their shapes, and ways to tie
 * elements and record what pruning must rewrite. ChannelGraph implements it; the per-op relations
 * (op-relations.ts, layout-relations.ts) use only this.
 */
export interface ChannelTies {
  readonly view: GraphView;
  readonly shapes: Map<string, number[]>;
  readonly tracks: Map<string, Track>;
  readonly relations: Relation[];
  /** LayerNormalization dimensions and model inputs may be pruned (PruneOptions.pruneNormalized). */
  readonly normalized: boolean;
  /** Starts tracking `tensor` on `axis`; false when it cannot (unknown shape, another axis). */
  track(tensor: string, axis: number): boolean;
  /** Ties element i of `a` to element i of `b` for all i (same size required). */
  tie(a: string, b: string): boolean;
  union(a: number, b: number): void;
  el(tensor: string, i: number): number;
  /** Relation for a stored per-channel input `i` of `node`, aligned (from the right) with `tensor`. */
  paramRelation(node: NodeProto, i: number, tensor: string): string | undefined;
}

/** How one op type carries tracked channels from `from` to its other tensors; returns why it cannot. */
export type Relate = (g: ChannelTies, node: NodeProto, from: string, label: string) => string | undefined;
