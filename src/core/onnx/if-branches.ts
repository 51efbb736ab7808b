// The branches of top-level If nodes (Optimum's merged decoder: then = with past, else = first step), and a
// branch as a model of its own.
import { attrGraph } from './attributes';
import { onnx, type GraphProto, type ModelProto } from './proto';
import { walkGraphs } from './walk';

export interface IfBranch { cond: string; when: boolean; graph: GraphProto; name: string }

/** Top-level If nodes' branches: each with the If's condition and the value that selects it. */
export function branchesOf(graph: GraphProto): IfBranch[] {
  const out: IfBranch[] = [];
  for (const n of graph.node ?? []) {
    if (n.op_type !== 'If' || (n.domain ?? '') !== '') continue;
    for (const [attr, when] of [['then_branch', true], ['else_branch', false]] as const) {
      const g = attrGraph(n, attr);
      if (g) out.push({ cond: n.input![0], when, graph: g, name: `${n.name || 'If'}.${attr}` });
    }
  }
  return out;
}

/** A branch as a model: its nodes and outputs, the outer inputs and initializers it reads. */
export function branchModel(model: ModelProto, g: GraphProto): ModelProto {
  const reads = new Set<string>();
  for (const { graph } of walkGraphs(g)) for (const n of graph.node ?? []) for (const i of n.input ?? []) reads.add(i);
  const outer = model.graph!;
  return onnx.ModelProto.create({
    ...model,
    graph: onnx.GraphProto.create({
      name: g.name, node: g.node, output: g.output, value_info: g.value_info,
      input: (outer.input ?? []).filter((v) => reads.has(v.name ?? '')),
      initializer: (outer.initializer ?? []).filter((t) => reads.has(t.name ?? '')),
    }),
  });
}
