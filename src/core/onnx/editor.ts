import { GraphView } from './graph';
import type { GraphProto, ModelProto, NodeProto, TensorProto } from './proto';
import type { TensorSpill } from './tensor-spill';
import { subgraphsOf, walkGraphs } from './walk';

/**
 * Edits one graph of a model: unique names, new initializers, nodes inserted before their consumer,
 * opset imports, and removal of weights nothing reads any more. The model object is edited in place;
 * callers work on a model they loaded themselves, never on the user's file.
 */
export class ModelEditor {
  readonly graph: GraphProto;
  private names = new Set<string>();
  /** Subgraph nodes' places (see placeOf), filled when first asked. */
  private places = new Map<NodeProto, { graph: GraphProto; top: NodeProto }>();

  /** `spill`: new large initializers go straight to the output's data file (streamed saves of external-data models). */
  constructor(readonly model: ModelProto, readonly spill?: TensorSpill) {
    this.graph = model.graph!;
    for (const { graph } of walkGraphs(this.graph)) {
      for (const n of graph.node ?? []) {
        if (n.name) this.names.add(n.name);
        for (const o of n.output ?? []) this.names.add(o);
        for (const i of n.input ?? []) this.names.add(i);
      }
      for (const t of graph.initializer ?? []) if (t.name) this.names.add(t.name);
      for (const v of [...(graph.input ?? []), ...(graph.output ?? [])]) if (v.name) this.names.add(v.name);
    }
  }

  /** A name not used anywhere in the model yet, derived from `base`. */
  unique(base: string): string {
    let name = base;
    for (let k = 1; this.names.has(name); k++) name = `${base}_${k}`;
    this.names.add(name);
    return name;
  }

  /**
   * Adds `t` under a name unused in the model, to the main graph or to `graph`, a subgraph (its own
   * initializers, so scoping stays right; those are never spilled).
   */
  addInitializer(t: TensorProto, graph: GraphProto = this.graph): string {
    const name = this.unique(t.name || 'const');
    const added = { ...t, name };
    graph.initializer = [...(graph.initializer ?? []), this.spill && graph === this.graph ? this.spill.take(added) : added];
    return name;
  }

  /**
   * Inserts nodes into the main graph just before `anchor` (or at the end), naming them uniquely. An anchor
   * inside a subgraph (If/Loop/Scan body) puts them before the main-graph node that holds it: nodes that
   * read only initializers (a weight's dequantization) are then visible to the body as outer-scope values.
   */
  insertBefore(anchor: NodeProto | undefined, nodes: NodeProto[]): void {
    for (const n of nodes) n.name = this.unique(n.name || n.op_type || 'node');
    const list = this.graph.node ?? [];
    const at = anchor ? list.indexOf(anchor) : -1;
    const holder = anchor && at < 0 ? list.indexOf(this.placeOf(anchor)?.top ?? anchor) : at;
    this.graph.node = holder < 0 ? [...list, ...nodes] : [...list.slice(0, holder), ...nodes, ...list.slice(holder)];
  }

  /** Replaces `old` by `replacement` in whichever graph holds it (the main graph or a subgraph). */
  replaceNode(old: NodeProto, replacement: NodeProto[]): void {
    for (const n of replacement) if (n !== old) n.name = this.unique(n.name || n.op_type || 'node');
    const main = (this.graph.node ?? []).indexOf(old);
    const place = main < 0 ? this.placeOf(old) : undefined;
    const graph = place?.graph ?? this.graph, list = graph.node ?? [];
    const at = place ? list.indexOf(old) : main;
    graph.node = [...list.slice(0, at), ...replacement, ...list.slice(at + 1)];
    if (place) for (const n of replacement) this.places.set(n, place);
  }

  /** Where a subgraph node lives: its graph and the main-graph node that holds that graph (any depth). */
  private placeOf(node: NodeProto): { graph: GraphProto; top: NodeProto } | undefined {
    if (!this.places.has(node)) {
      this.places.clear();
      for (const top of this.graph.node ?? []) {
        for (const sub of subgraphsOf(top)) for (const { graph } of walkGraphs(sub)) for (const n of graph.node ?? []) this.places.set(n, { graph, top });
      }
    }
    return this.places.get(node);
  }

  /** Removes nodes of the main graph whose outputs nothing reads any more, with their outputs' value_info. */
  removeNodes(gone: ReadonlySet<NodeProto>): void {
    const outputs = new Set([...gone].flatMap((n) => n.output ?? []));
    this.graph.node = (this.graph.node ?? []).filter((n) => !gone.has(n));
    this.graph.value_info = (this.graph.value_info ?? []).filter((v) => !outputs.has(v.name ?? ''));
  }

  /** Makes sure the model imports `domain` at `version` or later. */
  requireOpset(domain: string, version: number): void {
    const found = opsetImport(this.model, domain);
    if (!found) this.model.opset_import = [...(this.model.opset_import ?? []), { domain, version }];
    else if (Number(found.version) < version) found.version = version;
  }

  opset(domain = ''): number {
    const o = opsetImport(this.model, domain);
    return o ? Number(o.version) : 0;
  }

  /**
   * Drops initializers and Constant nodes whose values nothing reads (in this graph, its subgraphs or
   * its outputs): the float weights that quantized copies replaced. Returns the names dropped.
   */
  dropUnusedConstants(): string[] {
    const used = new Set<string>((this.graph.output ?? []).map((o) => o.name ?? ''));
    for (const { graph } of walkGraphs(this.graph)) for (const n of graph.node ?? []) for (const i of n.input ?? []) used.add(i);
    const dropped: string[] = [];
    this.graph.initializer = (this.graph.initializer ?? []).filter((t) => used.has(t.name ?? '') || (dropped.push(t.name ?? ''), false));
    this.graph.node = (this.graph.node ?? []).filter((n) => {
      if (n.op_type !== 'Constant' || (n.domain ?? '') !== '' || used.has(n.output?.[0] ?? '')) return true;
      dropped.push(n.output?.[0] ?? '');
      return false;
    });
    const inputs = new Set((this.graph.initializer ?? []).map((t) => t.name));
    // IR < 4 lists initializers among graph inputs: drop those entries with them.
    this.graph.input = (this.graph.input ?? []).filter((v) => !dropped.includes(v.name ?? '') || inputs.has(v.name));
    return dropped;
  }

  /**
   * IR < 4 models list initializers among the graph inputs with their shapes: after an edit changed an
   * initializer's dims (structured pruning), its input entry must say the same or onnxruntime refuses it.
   */
  syncInitializerInputs(): void {
    const dims = new Map((this.graph.initializer ?? []).map((t) => [t.name ?? '', (t.dims ?? []).map(Number)]));
    for (const v of this.graph.input ?? []) {
      const d = dims.get(v.name ?? '');
      const tt = v.type?.tensor_type;
      if (!d || !tt?.shape) continue;
      tt.shape = { dim: d.map((n) => ({ dim_value: n })) };
    }
  }

  view(): GraphView {
    return new GraphView(this.graph);
  }
}

/** The model's import of `domain` ('' and 'ai.onnx' both name the default one), to read or raise. */
export function opsetImport(model: ModelProto, domain = ''): NonNullable<ModelProto['opset_import']>[number] | undefined {
  return (model.opset_import ?? []).find((x) => (x.domain ?? '') === domain || (domain === '' && x.domain === 'ai.onnx'));
}
