import { DataTypeMap, rawByteLength } from '../onnx/dtypes';
import type { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../onnx/proto';
import { capturedValues } from '../onnx/walk';

/**
 * Runs of large external-data models (verification, shape probes, MinMax calibration) take a segment of
 * at most this many weight bytes at a time (default 64 MiB; QUANTLENS_VERIFY_SEGMENT_BYTES overrides),
 * so no run loads such a model whole.
 */
export function verifySegmentBytes(): number {
  const v = Number(process.env.QUANTLENS_VERIFY_SEGMENT_BYTES);
  return Number.isFinite(v) && v > 0 ? v : 64 * 2 ** 20;
}

/** A run of consecutive nodes, with the values it takes from before it and hands on to later ones. */
export interface Segment {
  nodes: NodeProto[];
  /** Values read from graph inputs or earlier segments (not initializers). */
  inputs: string[];
  /** Values later segments or the graph's outputs need. */
  outputs: string[];
  initializers: TensorProto[];
  weightBytes: number;
}

const tensorBytes = (t: TensorProto) => {
  const info = DataTypeMap.get(t.data_type ?? 0);
  const n = (t.dims ?? []).reduce<number>((a, d) => a * Number(d), 1);
  return info && info.bits > 0 ? rawByteLength(info.code, n) : 0;
};

/** Every value a node reads, including outer-scope values its subgraphs (If/Loop/Scan bodies) capture. */
const reads = (node: NodeProto): string[] => [...(node.input ?? []).filter((n) => n !== ''), ...capturedValues(node)];

/**
 * Cuts a topologically ordered graph into consecutive segments holding at most `budgetBytes` of weights
 * each (one node bigger than that gets a segment of its own); values in `keep` are handed out like outputs. Returns undefined when the graph is not in
 * topological order (the ONNX rule), so the caller runs it whole instead.
 */
export function planSegments(graph: GraphProto, budgetBytes: number, keep: ReadonlySet<string> = new Set()): Segment[] | undefined {
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const produced = new Set<string>((graph.input ?? []).map((v) => v.name ?? ''));
  const segments: Segment[] = [];
  let cur: Segment | undefined;
  let curInits = new Set<string>();
  const place = (group: NodeProto[], forceNew: boolean) => {
    const groupReads = [...new Set(group.flatMap(reads))].filter((r) => inits.has(r));
    // Weights stored in Constant nodes (older exports keep them there) count like initializers.
    const constantBytes = group.reduce((a, n) => a + (n.op_type === 'Constant' ? (n.attribute ?? []).reduce((b, at) => b + (at.t ? tensorBytes(at.t) : 0), 0) : 0), 0);
    const bytes = constantBytes + groupReads.filter((r) => !curInits.has(r)).reduce((a, r) => a + tensorBytes(inits.get(r)!), 0);
    if (!cur || (forceNew && cur.nodes.length > 0 && cur.weightBytes + bytes > budgetBytes)) {
      cur = { nodes: [], inputs: [], outputs: [], initializers: [], weightBytes: 0 };
      curInits = new Set();
      segments.push(cur);
    }
    for (const r of groupReads) if (!curInits.has(r)) { curInits.add(r); cur.initializers.push(inits.get(r)!); cur.weightBytes += tensorBytes(inits.get(r)!); }
    cur.weightBytes += constantBytes;
    cur.nodes.push(...group);
  };
  // Nodes computed from weights alone (a Constant, a DequantizeLinear of an int8 weight, a Transpose of one)
  // wait for the first node that reads them and go into its segment: a cut between them would turn the
  // weight into a runtime input and keep onnxruntime from fusing them (DequantizeLinear + MatMul), so the
  // segments would not compute what the whole model computes.
  const constant = new Set<string>(inits.keys());
  const deferred = new Map<string, NodeProto>();
  const placed = new Set<NodeProto>();
  const pull = (node: NodeProto, into: NodeProto[]) => {
    for (const r of reads(node)) {
      const p = deferred.get(r);
      if (!p || placed.has(p)) continue;
      placed.add(p);
      pull(p, into);
      into.push(p);
    }
  };
  for (const node of graph.node ?? []) {
    const rs = reads(node);
    const nested = (node.attribute ?? []).some((a) => a.g || a.graphs?.length);
    for (const r of rs) if (!inits.has(r) && !produced.has(r) && !nested) return undefined;
    for (const o of node.output ?? []) if (o) produced.add(o);
    const isConstant = node.op_type === 'Constant' && (node.domain ?? '') === '';
    if (isConstant || (!nested && (node.input ?? []).length > 0 && rs.every((r) => constant.has(r)))) {
      for (const o of node.output ?? []) if (o) { constant.add(o); deferred.set(o, node); }
      continue;
    }
    const group: NodeProto[] = [];
    pull(node, group);
    group.push(node);
    place(group, true);
  }
  // Weight-only nodes nothing else reads (they feed graph outputs directly) close the last segment.
  const waiting = new Set(deferred.values());
  const rest = (graph.node ?? []).filter((n) => waiting.has(n) && !placed.has(n));
  if (rest.length) place(rest, false);
  // Liveness: what each segment takes in and what it must hand on.
  const graphOutputs = new Set([...(graph.output ?? []).map((v) => v.name ?? ''), ...keep]);
  const available = new Set<string>((graph.input ?? []).map((v) => v.name ?? ''));
  const readBy = segments.map((s) => new Set(s.nodes.flatMap(reads)));
  segments.forEach((s, k) => {
    const made = new Set(s.nodes.flatMap((n) => (n.output ?? []).filter((o) => o)));
    s.inputs = [...readBy[k]].filter((r) => !made.has(r) && !inits.has(r) && available.has(r));
    s.outputs = [...made].filter((o) => graphOutputs.has(o) || readBy.slice(k + 1).some((set) => set.has(o)));
    for (const o of s.outputs) available.add(o);
  });
  return segments;
}

/** ONNX element type of an onnxruntime tensor type name ('float32', 'int64', ...). */
export function elemTypeOf(ortType: string): number {
  for (const [code, info] of DataTypeMap) if (info.name === ortType) return code;
  throw new Error(`no ONNX element type for onnxruntime type '${ortType}'`);
}

/**
 * The segment as a model of its own: the source model's opsets, IR version and functions, its nodes and
 * the initializers they use (external ones still name the source's data file: stage it beside the source).
 * `typeOf` gives each boundary value's declared type (the graph's own, else what the previous segment produced).
 */
export function segmentModel(model: ModelProto, seg: Segment, k: number, typeOf: (name: string) => ValueInfoProto): ModelProto {
  const graph = model.graph!;
  const initNames = new Set(seg.initializers.map((t) => t.name));
  // IR < 4 lists initializers among the graph inputs; keep those entries for the ones this segment uses.
  const initInputs = (graph.input ?? []).filter((v) => initNames.has(v.name));
  return {
    ...model,
    graph: {
      name: `${graph.name ?? 'graph'}_segment_${k}`,
      node: seg.nodes,
      initializer: seg.initializers,
      input: [...seg.inputs.map(typeOf), ...initInputs],
      output: seg.outputs.map(typeOf),
      value_info: graph.value_info ?? [],
    },
  } as ModelProto;
}
