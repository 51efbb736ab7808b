import type { GraphProto, NodeProto, TensorProto } from './proto';
import { attrTensor } from './attributes';

/** Producers, consumers, initializer lookup and topological order over one graph (not its subgraphs). */
export class GraphView {
  readonly producer = new Map<string, NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  /** Initializers and Constant-node values by tensor name: both are weights to a quantizer. */
  readonly constants = new Map<string, TensorProto>();
  readonly graphInputs: Set<string>;

  constructor(readonly graph: GraphProto) {
    for (const t of graph.initializer ?? []) if (t.name) this.constants.set(t.name, t);
    for (const node of graph.node ?? []) {
      for (const out of node.output ?? []) if (out) this.producer.set(out, node);
      for (const inp of node.input ?? []) {
        if (!inp) continue;
        const list = this.consumers.get(inp);
        if (list) list.push(node);
        else this.consumers.set(inp, [node]);
      }
      if (node.op_type === 'Constant' && (node.domain ?? '') === '') {
        const t = attrTensor(node, 'value');
        if (t && node.output?.[0]) this.constants.set(node.output[0], t);
      }
    }
    this.graphInputs = new Set((graph.input ?? []).map((v) => v.name ?? '').filter((n) => !this.constants.has(n)));
  }

  /** The stored tensor behind a value name (initializer or Constant output), if any. */
  constant(name: string): TensorProto | undefined {
    return this.constants.get(name);
  }

  /**
   * The stored tensor behind a value, also through Identity nodes: exporters (torch.onnx) store one copy
   * of equal weights, e.g. every LayerNorm's all-ones scale, and hand it to each reader by an Identity.
   */
  stored(name: string): TensorProto | undefined {
    for (let hops = 0; hops < 16; hops++) {
      const c = this.constants.get(name);
      if (c) return c;
      const p = this.producer.get(name);
      if (p?.op_type !== 'Identity' || (p.domain ?? '') !== '' || !p.input?.[0]) return undefined;
      name = p.input[0];
    }
    return undefined;
  }

  consumersOf(name: string): NodeProto[] {
    return this.consumers.get(name) ?? [];
  }

  /**
   * Nodes in dependency order (Kahn's algorithm). Values from outer scopes (subgraph captures) count as
   * available. Nodes caught in a cycle are returned in `cyclic` instead of being dropped silently.
   */
  topologicalOrder(): { order: NodeProto[]; cyclic: NodeProto[] } {
    const nodes = this.graph.node ?? [];
    const pending = new Map<NodeProto, number>();
    const waiting = new Map<string, NodeProto[]>();
    const ready: NodeProto[] = [];
    for (const node of nodes) {
      const deps = new Set((node.input ?? []).filter((i) => i && this.producer.has(i) && this.producer.get(i) !== node));
      pending.set(node, deps.size);
      for (const d of deps) {
        const w = waiting.get(d);
        if (w) w.push(node);
        else waiting.set(d, [node]);
      }
      if (deps.size === 0) ready.push(node);
    }
    const order: NodeProto[] = [];
    while (ready.length) {
      const node = ready.shift()!;
      order.push(node);
      for (const out of node.output ?? []) {
        for (const next of waiting.get(out) ?? []) {
          const left = pending.get(next)! - 1;
          pending.set(next, left);
          if (left === 0) ready.push(next);
        }
      }
    }
    const placed = new Set(order);
    return { order, cyclic: nodes.filter((n) => !placed.has(n)) };
  }
}
