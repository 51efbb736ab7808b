// Optimum's decoder_model_merged.onnx, made from a decoder without a cache and one with it: one If on
// `use_cache_branch` (then: with past, else: first step), weights shared by the two branches stored once
// in the outer graph. What Optimum's merge_decoders writes, for exports that come as two files.
import crypto from 'node:crypto';
import { DataType } from './dtypes';
import { onnx, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from './proto';
import { walkGraphs } from './walk';

const contentKey = (t: TensorProto) => {
  const h = crypto.createHash('sha256');
  h.update(`${t.data_type}:${(t.dims ?? []).join('x')}:`);
  h.update(onnx.TensorProto.encode({ ...t, name: '', doc_string: '' }).finish());
  return h.digest('hex');
};

/** Renames values in a graph (inputs of nodes, outputs of nodes, the graph's outputs), subgraphs included. */
function renameValues(g: GraphProto, map: Map<string, string>): void {
  const r = (n: string) => map.get(n) ?? n;
  for (const { graph } of walkGraphs(g)) {
    for (const n of graph.node ?? []) {
      n.input = (n.input ?? []).map(r);
      n.output = (n.output ?? []).map(r);
    }
  }
  for (const o of g.output ?? []) o.name = r(o.name ?? '');
}

/**
 * Merges two decoder exports of the same weights. Inputs of the result: the with-past decoder's plus
 * `use_cache_branch` (bool [1]); outputs: its outputs. Identical initializers (by content) are stored once.
 */
export function mergeDecoders(noPast: ModelProto, withPast: ModelProto): ModelProto {
  const outer: TensorProto[] = [];
  const byContent = new Map<string, string>();
  const taken = new Set<string>();
  const branch = (m: ModelProto, suffix: string): GraphProto => {
    const g = onnx.GraphProto.decode(onnx.GraphProto.encode(m.graph!).finish());
    const rename = new Map<string, string>();
    for (const t of g.initializer ?? []) {
      const key = contentKey(t);
      let name = byContent.get(key);
      if (!name) {
        name = t.name ?? '';
        while (taken.has(name)) name = `${name}_${suffix}`;
        taken.add(name);
        byContent.set(key, name);
        outer.push({ ...t, name });
      }
      if (name !== t.name) rename.set(t.name ?? '', name);
    }
    // The branch's outputs get names of their own: the If's outputs carry the public ones.
    for (const o of g.output ?? []) rename.set(o.name ?? '', `${o.name}_${suffix}`);
    renameValues(g, rename);
    const outputs = new Set((g.output ?? []).map((o) => o.name));
    return onnx.GraphProto.create({
      name: `${m.graph!.name || 'decoder'}_${suffix}`, node: g.node, output: g.output,
      // Values the branch only reads from the outer scope need no declaration; keep the rest's types.
      value_info: (g.value_info ?? []).filter((v) => !outputs.has(v.name)),
    });
  };
  const thenBranch = branch(withPast, 'with_past');
  const elseBranch = branch(noPast, 'no_past');
  const outputs = withPast.graph!.output ?? [];
  const noPastOut = new Set((noPast.graph!.output ?? []).map((o) => o.name));
  const missing = outputs.filter((o) => !noPastOut.has(o.name));
  if (missing.length) throw new Error(`the decoder without past lacks outputs ${missing.map((o) => o.name).join(', ')}`);
  // Branch outputs in the order of the If's outputs.
  elseBranch.output = outputs.map((o) => elseBranch.output!.find((x) => x.name === `${o.name}_no_past`)!);
  const node: NodeProto = {
    name: 'optimum::if', op_type: 'If', input: ['use_cache_branch'], output: outputs.map((o) => o.name ?? ''),
    attribute: [
      { name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: thenBranch },
      { name: 'else_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: elseBranch },
    ],
  };
  const useCache = onnx.ValueInfoProto.create({ name: 'use_cache_branch', type: { tensor_type: { elem_type: DataType.BOOL, shape: { dim: [{ dim_value: 1 }] } } } });
  const opsets = new Map<string, number>();
  for (const m of [noPast, withPast]) for (const o of m.opset_import ?? []) opsets.set(o.domain ?? '', Math.max(opsets.get(o.domain ?? '') ?? 0, Number(o.version)));
  return onnx.ModelProto.create({
    ir_version: withPast.ir_version, producer_name: 'quantlens merge-decoders', opset_import: [...opsets].map(([domain, version]) => ({ domain, version })),
    graph: onnx.GraphProto.create({ name: 'decoder_model_merged', node: [node], input: [...(withPast.graph!.input ?? []).filter((i) => !taken.has(i.name ?? '')), useCache], output: outputs, initializer: outer }),
  });
}
