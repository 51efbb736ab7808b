import { DataType } from './dtypes';
import type { ModelEditor } from './editor';
import type { ModelLocation } from './external-data';
import type { GraphProto, NodeProto } from './proto';
import { readTensor, toFloat32 } from './tensor';
import { walkGraphs, walkTensors } from './walk';
import { attr as findAttr, intAttr } from './attributes';

/** Whether the model computes in float16: a float16 graph input, output or stored tensor. */
export function hasFloat16(graph: GraphProto): boolean {
  const io = [...(graph.input ?? []), ...(graph.output ?? [])];
  if (io.some((v) => v.type?.tensor_type?.elem_type === DataType.FLOAT16)) return true;
  for (const { tensor } of walkTensors(graph)) if (tensor.data_type === DataType.FLOAT16) return true;
  return false;
}

const CAST_TYPE_ATTRS: Record<string, string> = { Cast: 'to', RandomNormal: 'dtype', RandomUniform: 'dtype', RandomNormalLike: 'dtype', RandomUniformLike: 'dtype', EyeLike: 'dtype', Multinomial: 'dtype' };

/**
 * Makes a float16 model compute in float32 inside, keeping its float16 inputs and outputs: every stored
 * float16 tensor becomes float32, casts and typed generators that produce float16 produce float32, value
 * types are widened, and a Cast stands at each float16 graph input and output. Static and dynamic INT8
 * then quantize it as any float32 model (onnxruntime's int8 kernels take float32 scales and produce
 * float32), and callers see the interface they had. Returns how many tensors and nodes changed.
 */
export function widenFloat16(editor: ModelEditor, loc: ModelLocation): { tensors: number; nodes: number; edges: number } {
  const graph = editor.graph;
  let tensors = 0, nodes = 0, edges = 0;
  for (const { tensor } of walkTensors(graph)) {
    if (tensor.data_type !== DataType.FLOAT16) continue;
    const values = toFloat32(readTensor(tensor, loc));
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    tensor.data_type = DataType.FLOAT;
    tensor.raw_data = bytes.slice();
    tensor.int32_data = [];
    tensor.data_location = 0; // external float16 data becomes inline float32
    tensor.external_data = [];
    tensors++;
  }
  for (const { graph: g } of walkGraphs(graph)) {
    for (const n of g.node ?? []) {
      const attr = CAST_TYPE_ATTRS[n.op_type ?? ''];
      const a = attr ? findAttr(n, attr) : undefined;
      if (a && Number(a.i) === DataType.FLOAT16) { a.i = DataType.FLOAT; nodes++; }
    }
    for (const v of [...(g.value_info ?? []), ...(g === graph ? [] : [...(g.input ?? []), ...(g.output ?? [])])]) {
      if (v.type?.tensor_type?.elem_type === DataType.FLOAT16) v.type.tensor_type.elem_type = DataType.FLOAT;
    }
  }
  // The main graph's float16 edges: Cast in, Cast out, under the original names.
  const first = (graph.node ?? [])[0];
  const stored = new Set((graph.initializer ?? []).map((t) => t.name));
  const ins: NodeProto[] = [];
  for (const v of graph.input ?? []) {
    if (!v.name || stored.has(v.name) || v.type?.tensor_type?.elem_type !== DataType.FLOAT16) continue;
    const wide = editor.unique(`${v.name}_float32`);
    for (const n of graph.node ?? []) n.input = (n.input ?? []).map((x) => (x === v.name ? wide : x));
    ins.push({ name: `${v.name}_to_float32`, op_type: 'Cast', input: [v.name], output: [wide], attribute: [intAttr('to', DataType.FLOAT)] });
    edges++;
  }
  if (ins.length) editor.insertBefore(first, ins);
  const outs: NodeProto[] = [];
  for (const v of graph.output ?? []) {
    if (!v.name || v.type?.tensor_type?.elem_type !== DataType.FLOAT16) continue;
    if (!(graph.node ?? []).some((n) => n.output?.includes(v.name!))) continue; // an input passed straight through
    const wide = editor.unique(`${v.name}_float32`);
    for (const n of graph.node ?? []) {
      n.output = (n.output ?? []).map((x) => (x === v.name ? wide : x));
      n.input = (n.input ?? []).map((x) => (x === v.name ? wide : x));
    }
    outs.push({ name: `${v.name}_to_float16`, op_type: 'Cast', input: [wide], output: [v.name], attribute: [intAttr('to', DataType.FLOAT16)] });
    edges++;
  }
  if (outs.length) editor.insertBefore(undefined, outs);
  return { tensors, nodes, edges };
}
