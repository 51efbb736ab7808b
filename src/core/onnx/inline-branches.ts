// An If's branch inlined into the main graph, and put back. onnxruntime hands out no value from inside a
// branch, so static INT8 could not calibrate layers there (Silero VAD has every layer in one): the branch
// the calibration samples take is inlined for the whole static pipeline (planning, calibration, placement,
// variants), then put back into its If with whatever Q/DQ landed in it. The other branch stays as it was.
import { attrGraph } from './attributes';
import type { ModelEditor } from './editor';
import { onnx, type GraphProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto';
import { capturedValues, subgraphsOf, walkGraphs } from './walk';

export type Branch = 'then_branch' | 'else_branch';

/** What `restoreBranch` needs to put an inlined branch back into its If. */
export interface InlinedBranch {
  /** The If, out of the graph meanwhile (its other branch untouched). */
  node: NodeProto;
  branch: Branch;
  graphName: string;
  /** Names of the nodes the branch brought, and of the Identity nodes standing for the If's outputs. */
  names: Set<string>;
  identities: string[];
  outputs: ValueInfoProto[];
  /** Names of the main graph's nodes when the branch came in (they stay in the main graph). */
  main: Set<string>;
  /** The outer values the other branch reads, and the main graph's constants among them (passes drop constants nothing visible reads). */
  otherReads: Set<string>;
  otherConstants: { initializers: TensorProto[]; nodes: NodeProto[] };
}

/** What a node reads: its inputs and the outer values its subgraphs capture. */
const readsOf = (n: NodeProto) => [...(n.input ?? []), ...capturedValues(n)].filter(Boolean);
/** The If's other branch. */
export const otherBranch = (b: Branch): Branch => (b === 'then_branch' ? 'else_branch' : 'then_branch');

/** Renames value `from` to `to` in `g`: its nodes' inputs and outputs (and nested bodies' reads), outputs and value_info. */
function renameValue(g: GraphProto, from: string, to: string): void {
  for (const { graph } of walkGraphs(g)) {
    for (const n of graph.node ?? []) {
      n.input = (n.input ?? []).map((i) => (i === from ? to : i));
      if (graph === g) n.output = (n.output ?? []).map((o) => (o === from ? to : o));
    }
  }
  for (const v of [...(g.output ?? []), ...(g.value_info ?? [])]) if (v.name === from) v.name = to;
  for (const t of g.initializer ?? []) if (t.name === from) t.name = to;
}

/**
 * Replaces the top-level If `node` by the nodes of its `branch` and an Identity per output (branch output
 * → If output). Values and node names that clash with names elsewhere in the model are renamed first;
 * the branch's own initializers move to the main graph. Returns undefined (nothing changed) for a
 * branch that declares inputs (not a valid If branch).
 */
export function inlineBranch(editor: ModelEditor, node: NodeProto, branch: Branch): InlinedBranch | undefined {
  const graph = editor.graph;
  const g = attrGraph(node, branch);
  if (!g || (g.input ?? []).length) return undefined;
  // Every name defined outside this If: the branch's must not clash with them once it is in the main graph.
  const mine = new Set([...subgraphsOf(node)].flatMap((s) => [...walkGraphs(s)].map((x) => x.graph)));
  const defined = new Set<string>();
  const nodeNames = new Set<string>();
  for (const { graph: h } of walkGraphs(graph)) {
    if (mine.has(h)) continue;
    for (const n of h.node ?? []) { if (n.name) nodeNames.add(n.name); for (const o of n.output ?? []) defined.add(o); }
    for (const t of h.initializer ?? []) defined.add(t.name ?? '');
    for (const v of h.input ?? []) defined.add(v.name ?? '');
  }
  const made = [...(g.node ?? []).flatMap((n) => n.output ?? []), ...(g.initializer ?? []).map((t) => t.name ?? '')].filter(Boolean);
  for (const v of made) if (defined.has(v)) renameValue(g, v, editor.unique(`${v}_${branch}`));
  for (const n of g.node ?? []) if (!n.name || nodeNames.has(n.name)) n.name = editor.unique(`${n.name || n.op_type}_${branch}`);
  const identities = (node.output ?? []).map((o, k): NodeProto => ({ name: editor.unique(`${node.name || 'If'}_${branch}_out${k}`), op_type: 'Identity', input: [g.output?.[k]?.name ?? ''], output: [o] }));
  const otherReads = new Set(capturedValues({ attribute: (node.attribute ?? []).filter((a) => a.name === otherBranch(branch)) }));
  const list = graph.node ?? [];
  const rec: InlinedBranch = {
    node, branch, graphName: g.name ?? branch, identities: identities.map((n) => n.name!), outputs: g.output ?? [],
    names: new Set([...(g.node ?? []).map((n) => n.name!), ...identities.map((n) => n.name!)]),
    main: new Set(list.filter((n) => n !== node).map((n) => n.name ?? '')),
    otherReads,
    otherConstants: {
      initializers: (graph.initializer ?? []).filter((t) => otherReads.has(t.name ?? '')),
      nodes: list.filter((n) => n.op_type === 'Constant' && (n.domain ?? '') === '' && otherReads.has(n.output?.[0] ?? '')),
    },
  };
  graph.initializer = [...(graph.initializer ?? []), ...(g.initializer ?? [])];
  if (g.sparse_initializer?.length) graph.sparse_initializer = [...(graph.sparse_initializer ?? []), ...g.sparse_initializer];
  graph.value_info = [...(graph.value_info ?? []), ...(g.value_info ?? [])];
  const at = list.indexOf(node);
  graph.node = [...list.slice(0, at), ...(g.node ?? []), ...identities, ...list.slice(at + 1)];
  return rec;
}

/** Whether every branch node reading `name` takes it as a Q/DQ scale or zero point (a copy in the branch lets onnxruntime fuse there). */
const qdqParam = (nodes: NodeProto[], name: string) => nodes.every((n) => (n.input ?? []).every((i, k) => i !== name || ((n.op_type === 'QuantizeLinear' || n.op_type === 'DequantizeLinear') && k > 0)));

/**
 * Puts an inlined branch back into its If, with the nodes quantization added to it: a node reading a value
 * the branch makes goes into the branch, and so does a new node whose readers are all there (a scale's
 * Constant, a Q/DQ before a branch layer). Constants only the branch reads move into it (onnxruntime fuses
 * Q/DQ only around a body's own scales), shared scales and zero points are copied. The If takes the place of
 * the branch's first node, and the main graph is put back in an order where each value comes before its readers.
 */
export function restoreBranch(editor: ModelEditor, rec: InlinedBranch): void {
  const graph = editor.graph;
  // What passes dropped because only the other branch (out of the graph meanwhile) read it comes back.
  const have = new Set([...(graph.initializer ?? []).map((t) => t.name ?? ''), ...(graph.node ?? []).flatMap((n) => n.output ?? [])]);
  const dropped = rec.otherConstants.initializers.filter((t) => !have.has(t.name ?? ''));
  graph.initializer = [...(graph.initializer ?? []), ...dropped];
  graph.node = [...rec.otherConstants.nodes.filter((n) => !have.has(n.output?.[0] ?? '')), ...(graph.node ?? [])];
  const list = graph.node;
  const ids = new Set(rec.identities);
  const inBranch = new Set(list.filter((n) => rec.names.has(n.name ?? '')));
  const reads = new Map(list.map((n) => [n, readsOf(n)]));
  const readers = new Map<string, NodeProto[]>();
  for (const n of list) for (const i of reads.get(n)!) readers.set(i, [...(readers.get(i) ?? []), n]);
  const outputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const made = new Set<string>();
  const add = (n: NodeProto) => { inBranch.add(n); if (!ids.has(n.name ?? '')) for (const o of n.output ?? []) made.add(o); };
  [...inBranch].forEach(add);
  for (let changed = true; changed;) {
    changed = false;
    for (const n of list) {
      if (inBranch.has(n)) continue;
      const forced = reads.get(n)!.some((i) => made.has(i));
      const fresh = !rec.main.has(n.name ?? '');
      const outs = (n.output ?? []).filter(Boolean);
      const onlyBranch = fresh && outs.length > 0 && outs.every((o) => !outputs.has(o) && !rec.otherReads.has(o) && (readers.get(o) ?? []).length > 0 && readers.get(o)!.every((r) => inBranch.has(r)));
      if (forced || onlyBranch) { add(n); changed = true; }
    }
  }
  for (const n of list) {
    if (inBranch.has(n)) continue;
    const bad = reads.get(n)!.find((i) => made.has(i));
    if (bad) throw new Error(`'${n.name}' outside If '${rec.node.name}' reads '${bad}', which its ${rec.branch} makes`);
  }
  // A DequantizeLinear the main graph and the branch both read: the branch gets a copy of its own (a
  // branch's QLinear fusions take only the DequantizeLinear nodes inside it).
  for (const n of [...list]) {
    if (inBranch.has(n) || n.op_type !== 'DequantizeLinear' || rec.main.has(n.name ?? '')) continue;
    const out = n.output?.[0] ?? '';
    const inside = (readers.get(out) ?? []).filter((r) => inBranch.has(r) && r.input?.includes(out));
    if (!inside.length) continue;
    const copy: NodeProto = { ...n, name: editor.unique(`${n.name}_${rec.branch}`), output: [editor.unique(`${out}_${rec.branch}`)] };
    for (const r of inside) {
      r.input = (r.input ?? []).map((i) => (i === out ? copy.output![0] : i));
      reads.set(r, readsOf(r));
    }
    list.splice(list.indexOf(n) + 1, 0, copy);
    reads.set(copy, readsOf(copy));
    add(copy);
  }
  // The branch's outputs: the Identities' inputs where the branch makes them, else the Identity itself.
  const branchNodes = list.filter((n) => inBranch.has(n) && !ids.has(n.name ?? ''));
  const branchOutputs: ValueInfoProto[] = [];
  const used = new Set<string>();
  rec.identities.forEach((idName, k) => {
    const id = list.find((n) => n.name === idName);
    const declared = rec.outputs[k];
    if (!id || id.output?.[0] !== rec.node.output?.[k]) throw new Error(`the output ${k} of If '${rec.node.name}' was rewired`);
    const src = id.input![0];
    if (made.has(src) && !used.has(src)) {
      used.add(src);
      branchOutputs.push({ ...declared, name: src });
    } else {
      const name = editor.unique(`${id.output![0]}_${rec.branch}`);
      branchNodes.push({ ...id, output: [name] });
      branchOutputs.push({ ...declared, name });
    }
  });
  // Constants: the branch's own when only it reads them; a shared Q/DQ scale or zero point is copied in.
  const branchReads = new Set(branchNodes.flatMap((n) => reads.get(n) ?? []));
  const mainReads = new Set([...outputs, ...rec.otherReads, ...(graph.input ?? []).map((v) => v.name ?? ''), ...list.filter((n) => !inBranch.has(n)).flatMap((n) => reads.get(n)!)]);
  const own: TensorProto[] = [];
  const kept: TensorProto[] = [];
  for (const t of graph.initializer ?? []) {
    const name = t.name ?? '';
    if (!branchReads.has(name)) kept.push(t);
    else if (!mainReads.has(name)) own.push(t);
    else {
      kept.push(t);
      if (!qdqParam(branchNodes.filter((n) => n.input?.includes(name)), name)) continue;
      const copy = editor.unique(`${name}_${rec.branch}`);
      own.push({ ...t, name: copy });
      for (const n of branchNodes) n.input = (n.input ?? []).map((i) => (i === name ? copy : i));
    }
  }
  graph.initializer = kept;
  const madeHere = new Set(branchNodes.flatMap((n) => n.output ?? []));
  const g = onnx.GraphProto.create({
    name: rec.graphName, node: branchNodes, output: branchOutputs, initializer: own,
    value_info: (graph.value_info ?? []).filter((v) => madeHere.has(v.name ?? '')),
  });
  graph.value_info = (graph.value_info ?? []).filter((v) => !madeHere.has(v.name ?? ''));
  for (const a of rec.node.attribute ?? []) if (a.name === rec.branch) a.g = g;
  const first = list.findIndex((n) => inBranch.has(n));
  const rest = list.filter((n) => !inBranch.has(n));
  rest.splice(list.slice(0, first).filter((n) => !inBranch.has(n)).length, 0, rec.node);
  graph.node = inOrder(rest);
}

/**
 * The nodes in an order where each comes after the producers of what it reads (its subgraphs' outer reads
 * too), as close to the given order as that allows.
 */
export function inOrder(nodes: NodeProto[]): NodeProto[] {
  const producer = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output ?? []) if (o) producer.set(o, n);
  const done = new Set<NodeProto>();
  const out: NodeProto[] = [];
  for (const root of nodes) {
    if (done.has(root)) continue;
    // Depth first without recursion (graphs of thousands of nodes): a node goes out once its producers have.
    const stack: Array<{ n: NodeProto; deps: NodeProto[] }> = [{ n: root, deps: [] }];
    const open = new Set<NodeProto>([root]);
    stack[0].deps = readsOf(root).map((i) => producer.get(i)!).filter((p) => p && p !== root).reverse();
    while (stack.length) {
      const top = stack[stack.length - 1];
      const next = top.deps.pop();
      if (next) {
        if (done.has(next) || open.has(next)) continue; // (a cycle: the graph's own problem, left as it was)
        open.add(next);
        stack.push({ n: next, deps: readsOf(next).map((i) => producer.get(i)!).filter((p) => p && p !== next).reverse() });
        continue;
      }
      stack.pop();
      open.delete(top.n);
      done.add(top.n);
      out.push(top.n);
    }
  }
  return out;
}
