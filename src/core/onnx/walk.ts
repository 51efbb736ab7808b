import type { GraphProto, NodeProto, TensorProto } from './proto';

/** A tensor stored in the model: an initializer or a Constant node's value, with the graph it lives in. */
export interface StoredTensor {
  tensor: TensorProto;
  /** 'initializer' | 'constant' (a Constant node's `value`) | 'sparse' (sparse initializer values/indices) | 'attribute' (other node attributes). */
  kind: 'initializer' | 'constant' | 'sparse' | 'attribute';
  graph: GraphProto;
  node?: NodeProto;
}

/** The subgraphs a node holds itself (If branches, Loop and Scan bodies), not theirs. */
export const subgraphsOf = (node: NodeProto): GraphProto[] => (node.attribute ?? []).flatMap((a) => [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]);

/** Every graph in the model, the main one first, then subgraphs of If/Loop/Scan (any depth). */
export function* walkGraphs(graph: GraphProto, depth = 0, maxDepth = 64): Generator<{ graph: GraphProto; depth: number }> {
  yield { graph, depth };
  if (depth >= maxDepth) return;
  for (const node of graph.node ?? []) for (const g of subgraphsOf(node)) yield* walkGraphs(g, depth + 1, maxDepth);
}

/** Every node in every graph. */
export function* walkNodes(graph: GraphProto): Generator<{ node: NodeProto; graph: GraphProto; depth: number }> {
  for (const { graph: g, depth } of walkGraphs(graph)) for (const node of g.node ?? []) yield { node, graph: g, depth };
}

/** Every tensor stored anywhere in the model: initializers, Constant values, sparse initializers, tensor attributes. */
export function* walkTensors(graph: GraphProto): Generator<StoredTensor> {
  for (const { graph: g } of walkGraphs(graph)) {
    for (const t of g.initializer ?? []) yield { tensor: t, kind: 'initializer', graph: g };
    for (const s of g.sparse_initializer ?? []) {
      if (s.values) yield { tensor: s.values, kind: 'sparse', graph: g };
      if (s.indices) yield { tensor: s.indices, kind: 'sparse', graph: g };
    }
    for (const node of g.node ?? []) {
      for (const a of node.attribute ?? []) {
        const kind = node.op_type === 'Constant' && (node.domain ?? '') === '' ? 'constant' : 'attribute';
        if (a.t) yield { tensor: a.t, kind, graph: g, node };
        for (const t of a.tensors ?? []) yield { tensor: t, kind: 'attribute', graph: g, node };
        if (a.sparse_tensor?.values) yield { tensor: a.sparse_tensor.values, kind, graph: g, node };
        if (a.sparse_tensor?.indices) yield { tensor: a.sparse_tensor.indices, kind, graph: g, node };
      }
    }
  }
}

/**
 * The outer-scope values a node's subgraphs (If/Loop/Scan bodies, any depth) read: names their nodes take
 * that nothing inside defines (a node output, an initializer or a graph input of that body or of a body
 * enclosing it). onnxruntime makes the node wait for these like for its inputs.
 */
export function capturedValues(node: NodeProto): string[] {
  const out = new Set<string>();
  const visit = (g: GraphProto, outer: ReadonlySet<string>) => {
    const defined = new Set<string>([...outer, ...(g.input ?? []).map((v) => v.name ?? ''), ...(g.initializer ?? []).map((t) => t.name ?? ''), ...(g.node ?? []).flatMap((n) => n.output ?? [])]);
    for (const n of g.node ?? []) {
      for (const i of n.input ?? []) if (i && !defined.has(i)) out.add(i);
      for (const sub of subgraphsOf(n)) visit(sub, defined);
    }
  };
  for (const g of subgraphsOf(node)) visit(g, new Set());
  return [...out];
}

/** The nodes of `graph` that compute `names`: their producers and, transitively, what those read (captured values included). */
export function nodesComputing(graph: GraphProto, names: Iterable<string>): Set<NodeProto> {
  const producer = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) for (const o of n.output ?? []) if (o) producer.set(o, n);
  const needed = new Set<NodeProto>();
  const todo = [...names];
  while (todo.length) {
    const n = producer.get(todo.pop()!);
    if (!n || needed.has(n)) continue;
    needed.add(n);
    todo.push(...(n.input ?? []).filter(Boolean), ...capturedValues(n));
  }
  return needed;
}
