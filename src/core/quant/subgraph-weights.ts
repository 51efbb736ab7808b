import type { ModelEditor } from '../onnx/editor';
import type { GraphProto, NodeProto } from '../onnx/proto';
import { DataType } from '../onnx/dtypes';
import { subgraphsOf, walkGraphs } from '../onnx/walk';

const FLOAT_TYPES = new Set([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16]);

/**
 * Moves the float initializers that layers (`isLayer`) inside subgraphs (If branches, Loop/Scan bodies,
 * any depth) read from their own body into the main graph, where the quantizers find weights: a body
 * reads main-graph values as outer-scope ones, so the model computes the same. Silero VAD keeps its LSTM
 * weights in If branches two levels down. A name defined anywhere else too is renamed, in the body that
 * owned it. Returns how many moved.
 */
export function hoistSubgraphWeights(editor: ModelEditor, isLayer: (n: NodeProto) => boolean): number {
  const main = editor.graph;
  // How often each name is defined in the model as loaded (one definition keeps its name when it moves):
  // counted when the first weight is about to move, so a model without subgraph weights pays nothing.
  let defined: Map<string, number> | undefined;
  const definitions = (name: string) => {
    if (!defined) {
      defined = new Map();
      for (const { graph } of walkGraphs(main)) {
        for (const n of [...(graph.initializer ?? []).map((t) => t.name ?? ''), ...(graph.input ?? []).map((v) => v.name ?? ''), ...(graph.node ?? []).flatMap((x) => x.output ?? [])]) defined.set(n, (defined.get(n) ?? 0) + 1);
      }
    }
    return defined.get(name) ?? 0;
  };
  let moved = 0;
  // `scopes`: the bodies enclosing `g` (innermost last), `g` included; the main graph is never among them.
  const visit = (g: GraphProto, scopes: GraphProto[]) => {
    for (const n of g.node ?? []) {
      for (const name of isLayer(n) ? n.input ?? [] : []) {
        const owner = name ? [...scopes].reverse().find((s) => (s.initializer ?? []).some((t) => t.name === name)) : undefined;
        // A body's graph input of that name would shadow it (an overridable value): left where it is.
        if (!owner || (owner.input ?? []).some((v) => v.name === name)) continue;
        const t = owner.initializer!.find((x) => x.name === name)!;
        if (!FLOAT_TYPES.has(t.data_type ?? 0)) continue;
        // (The census is of the model as it was: taken before this first change to it.)
        const renamed = definitions(name) === 1 ? name : editor.unique(name);
        owner.initializer = owner.initializer!.filter((x) => x !== t);
        if (renamed !== name) for (const { graph } of walkGraphs(owner)) for (const m of graph.node ?? []) m.input = (m.input ?? []).map((x) => (x === name ? renamed : x));
        main.initializer = [...(main.initializer ?? []), { ...t, name: renamed }];
        moved++;
      }
      for (const b of subgraphsOf(n)) visit(b, [...scopes, b]);
    }
  };
  for (const n of main.node ?? []) for (const b of subgraphsOf(n)) visit(b, [b]);
  return moved;
}
