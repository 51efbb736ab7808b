import type { ModelEditor } from '../onnx/editor';
import type { GraphProto, NodeProto } from '../onnx/proto';
import { walkGraphs } from '../onnx/walk';

/** The inputs that hold a layer's stored weights, by op key (weight and dynamic mode's quantizers read these). */
const WEIGHT_INPUTS: Readonly<Record<string, number[]>> = {
  MatMul: [1], Gemm: [1], Conv: [1], ConvTranspose: [1], LSTM: [1, 2], GRU: [1, 2], RNN: [1, 2], Gather: [0], 'com.microsoft::Attention': [1],
};

const key = (n: NodeProto) => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}::${n.op_type ?? ''}` : n.op_type ?? '');

/** The subgraphs a node holds (If branches, Loop and Scan bodies). */
const bodies = (n: NodeProto): GraphProto[] => (n.attribute ?? []).flatMap((a) => [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]);

/**
 * Moves the weights that layers inside subgraphs (If branches, Loop/Scan bodies, any depth) keep as the
 * subgraph's own initializers into the main graph, where weight and dynamic mode's quantizers find them: a body reads
 * main-graph values as outer-scope ones, so the model computes the same. Silero VAD keeps its LSTM weights
 * in If branches two levels down. A name defined anywhere else too is renamed, in the body that owned it.
 * Returns how many moved.
 */
export function hoistSubgraphWeights(editor: ModelEditor): number {
  const main = editor.graph;
  // How often each name is defined in the whole model: one definition keeps its name when it moves.
  const defined = new Map<string, number>();
  for (const { graph } of walkGraphs(main)) {
    for (const name of [...(graph.initializer ?? []).map((t) => t.name ?? ''), ...(graph.input ?? []).map((v) => v.name ?? ''), ...(graph.node ?? []).flatMap((n) => n.output ?? [])]) defined.set(name, (defined.get(name) ?? 0) + 1);
  }
  let moved = 0;
  // `scopes`: the bodies enclosing `g` (innermost last), `g` included; the main graph is never among them.
  const visit = (g: GraphProto, scopes: GraphProto[]) => {
    for (const n of g.node ?? []) {
      for (const i of WEIGHT_INPUTS[key(n)] ?? []) {
        const name = n.input?.[i];
        if (!name) continue;
        const owner = [...scopes].reverse().find((s) => (s.initializer ?? []).some((t) => t.name === name));
        // A body's graph input of that name would shadow it (an overridable value): left where it is.
        if (!owner || (owner.input ?? []).some((v) => v.name === name)) continue;
        const t = owner.initializer!.find((x) => x.name === name)!;
        owner.initializer = owner.initializer!.filter((x) => x !== t);
        const renamed = defined.get(name) === 1 ? name : editor.unique(name);
        if (renamed !== name) for (const { graph } of walkGraphs(owner)) for (const m of graph.node ?? []) m.input = (m.input ?? []).map((x) => (x === name ? renamed : x));
        main.initializer = [...(main.initializer ?? []), { ...t, name: renamed }];
        moved++;
      }
      for (const b of bodies(n)) visit(b, [...scopes, b]);
    }
  };
  for (const n of main.node ?? []) for (const b of bodies(n)) visit(b, [b]);
  return moved;
}
