import { DataType } from '../onnx/dtypes';
import { GraphView } from '../onnx/graph';
import { onnx, type ModelProto } from '../onnx/proto';

/** The nodes of one layer as a model of their own: activation inputs become graph inputs, weights come along. */
export interface LayerSubModel {
  model: ModelProto;
  inputs: string[];
  outputs: string[];
}

/** Which activation values a set of nodes reads from outside itself (weights and constants excluded). */
export function externalInputs(model: ModelProto, names: Set<string>): string[] {
  const view = new GraphView(model.graph!);
  const nodes = model.graph!.node!.filter((n) => names.has(n.name ?? ''));
  const produced = new Set(nodes.flatMap((n) => n.output ?? []));
  return [...new Set(nodes.flatMap((n) => (n.input ?? []).filter((i) => i && !produced.has(i) && !view.constant(i))))];
}

/**
 * Cuts the layer's nodes (and the Constant nodes and initializers they read) out of the model. Its inputs
 * are declared float: they stand for the float model's own tensors, which the copies read once merged
 * beside it (merge.ts), whatever their type.
 */
export function layerSubModel(model: ModelProto, names: Set<string>, outputsWanted?: string[]): LayerSubModel {
  const graph = model.graph!;
  const nodes = graph.node!.filter((n) => names.has(n.name ?? ''));
  const produced = new Set(nodes.flatMap((n) => n.output ?? []));
  const reads = new Set(nodes.flatMap((n) => n.input ?? []).filter(Boolean));
  const consts = graph.node!.filter((n) => n.op_type === 'Constant' && reads.has(n.output?.[0] ?? ''));
  const inits = (graph.initializer ?? []).filter((t) => reads.has(t.name ?? ''));
  const inputs = externalInputs(model, names);
  const usedOutside = new Set([...graph.node!.filter((n) => !names.has(n.name ?? '')).flatMap((n) => n.input ?? []), ...(graph.output ?? []).map((o) => o.name ?? '')]);
  let outputs = outputsWanted ?? [...produced].filter((o) => usedOutside.has(o));
  if (!outputs.length) outputs = [...(nodes[nodes.length - 1].output ?? [])];
  const vi = (name: string, elem: number) => ({ name, type: { tensor_type: { elem_type: elem } } });
  return {
    model: onnx.ModelProto.create({
      ir_version: model.ir_version, opset_import: model.opset_import,
      graph: { name: 'layer', node: [...consts, ...nodes], initializer: inits, input: inputs.map((i) => vi(i, DataType.FLOAT)), output: outputs.map((o) => ({ name: o })) },
    }),
    inputs,
    outputs,
  };
}
