import { loadModel } from '../onnx/model-io';
import { GraphView } from '../onnx/graph';
import type { GraphProto, ValueInfoProto } from '../onnx/proto';
import { describeValue } from '../onnx/value-type';
import { concreteShapes } from './symbolic-dims';

/** The model's data inputs, and those of them that leave a dimension open and were not given a shape. */
export function openInputs(graph: GraphProto, given: Record<string, number[]>, view = new GraphView(graph)): { inputs: ValueInfoProto[]; open: ValueInfoProto[] } {
  const inputs = (graph.input ?? []).filter((v) => v.name && view.graphInputs.has(v.name) && v.type?.tensor_type);
  const open = inputs.filter((v) => !given[v.name!] && (describeValue(v).shape ?? [null]).some((d) => typeof d !== 'number' || d <= 0));
  return { inputs, open };
}

/** How random inputs filled `open`'s dimensions: 'input' [batch, samples] as 1x16. */
export function ranAs(open: ValueInfoProto[], shapes: Map<string, number[]>): string {
  return open.map((v) => `'${v.name}' [${(describeValue(v).shape ?? ['?']).map((d) => d ?? '?').join(', ')}] as ${shapes.get(v.name!)!.join('x')}`).join(', ');
}

/**
 * For an onnxruntime error on random inputs: the inputs whose open dimensions random data filled with
 * default sizes (1 for a batch, 16 for a sequence...), and how to give the sizes the model takes. An audio
 * model's [batch, samples] input ran as 1x16 and failed inside its first conv (Silero VAD, an openWakeWord
 * spectrogram), with nothing in the error to say why. Undefined when no input had a dimension left open.
 */
export function randomShapeHint(file: string, given: Record<string, number[]> = {}): string | undefined {
  try {
    const graph = loadModel(file).model.graph!;
    const view = new GraphView(graph);
    const { inputs, open } = openInputs(graph, given, view);
    if (!open.length) return undefined;
    const shapes = concreteShapes(graph, inputs.map((v) => v.name!), given, 1, view);
    return `random inputs ran ${ranAs(open, shapes)}; if the model takes other sizes, pass --input-shape ${open[0].name}=${shapes.get(open[0].name!)!.join('x')} with them, or real data`;
  } catch {
    return undefined;
  }
}
