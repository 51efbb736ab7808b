import * as ort from 'onnxruntime-node';
import { attrInt, intAttr, intsAttr } from '../../src/core/onnx/attributes';
import { AttributeType, onnx, type ModelProto, type NodeProto } from '../../src/core/onnx/proto';
import { DataType } from '../../src/core/onnx/dtypes';
import { makeTensor } from '../../src/core/onnx/tensor';
import { withExtraOutputs } from '../../src/core/runtime/expose-outputs';

const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div']);

/**
 * Writes an opset 7-9 CNN as an exporter of opset `target` (1-6) would have: elementwise ops broadcast by
 * attribute (a B whose shape is A's leading axes then 1s is reshaped to those axes and aligned with
 * `axis=0`), BatchNormalization with `is_test` (and `consumed_inputs` below 6), `consumed_inputs` on the
 * ops that had it, and below 5 Reshape with its shape as an attribute (a computed [N, -1] flatten written
 * as [0, -1]) and below 4 Concat without its default axis. The legacy form is written from the opset specs,
 * independently of QuantLens's upgrade, so that a round trip through the upgrade tests it. `feeds` runs
 * the original once to learn the shapes the elementwise ops see.
 */
export async function writeAsLegacyOpset(modern: ModelProto, target: number, feeds: Record<string, ort.Tensor>): Promise<ModelProto> {
  const model = onnx.ModelProto.decode(onnx.ModelProto.encode(modern).finish());
  const graph = model.graph!;
  const operands = [...new Set((graph.node ?? []).filter((n) => BINARY.has(n.op_type ?? '')).flatMap((n) => n.input ?? []))];
  const s = await ort.InferenceSession.create(onnx.ModelProto.encode(withExtraOutputs(modern, operands.filter((o) => !(graph.initializer ?? []).some((t) => t.name === o) && !(graph.node ?? []).some((n) => n.op_type === 'Constant' && n.output?.[0] === o)))).finish());
  const dims = new Map<string, number[]>();
  const out = await s.run(feeds);
  for (const [k, v] of Object.entries(out)) dims.set(k, [...v.dims]);
  await s.release();
  for (const t of graph.initializer ?? []) dims.set(t.name ?? '', (t.dims ?? []).map(Number));
  for (const n of graph.node ?? []) if (n.op_type === 'Constant') dims.set(n.output![0], (n.attribute![0].t!.dims ?? []).map(Number));
  const nodes: NodeProto[] = [];
  let k = 0;
  for (const n of graph.node ?? []) {
    const op = n.op_type ?? '';
    if (BINARY.has(op)) {
      const [a, b] = [dims.get(n.input![0])!, dims.get(n.input![1])!];
      if (!a || !b) throw new Error(`no shape for ${n.name}'s operands`);
      const size = b.reduce((x, y) => x * y, 1);
      if (String(a) === String(b)) { /* same shape: no broadcast */ } else if (size === 1 || String(a.slice(a.length - b.length)) === String(b)) n.attribute = [...(n.attribute ?? []), intAttr('broadcast', 1)];
      else {
        // B = A's leading axes, then 1s: flattened to those axes, aligned from axis 0.
        const lead = b.findIndex((d, i) => i > 0 && b.slice(i).every((x) => x === 1));
        if (lead < 1 || String(a.slice(0, lead)) !== String(b.slice(0, lead))) throw new Error(`${n.name}: no opset-${target} broadcast for ${a} and ${b}`);
        const flat = `${n.input![1]}_legacy_${k}`;
        nodes.push(...reshape(target, n.input![1], flat, [...Array<number>(lead - 1).fill(0), -1], k++));
        n.input![1] = flat;
        n.attribute = [...(n.attribute ?? []), intAttr('broadcast', 1), intAttr('axis', 0)];
      }
    } else if (op === 'BatchNormalization') {
      n.attribute = [...(n.attribute ?? []), intAttr('is_test', 1), ...(target < 6 ? [intsAttr('consumed_inputs', [0, 0, 0, 1, 1])] : [])];
    } else if (target < 6 && (op === 'Relu' || op === 'Clip' || op === 'HardSigmoid')) {
      n.attribute = [...(n.attribute ?? []), intsAttr('consumed_inputs', [0])];
    } else if (target < 5 && op === 'Reshape') {
      nodes.push(...reshape(target, n.input![0], n.output![0], [0, -1], k++));
      continue;
    } else if (target < 4 && op === 'Concat' && attrInt(n, 'axis') === 1) {
      n.attribute = (n.attribute ?? []).filter((x) => x.name !== 'axis');
    }
    nodes.push(n);
  }
  graph.node = nodes;
  // What only fed a rewritten Reshape's shape is dead now.
  for (let changed = true; changed;) {
    const read: Set<string | null | undefined> = new Set([...(graph.node ?? []).flatMap((n) => n.input ?? []), ...(graph.output ?? []).map((o) => o.name)]);
    const all: NodeProto[] = graph.node ?? [];
    const kept: NodeProto[] = all.filter((n): boolean => (n.output ?? []).some((o) => read.has(o)));
    changed = kept.length !== all.length;
    graph.node = kept;
  }
  model.opset_import = [{ domain: '', version: target }];
  model.ir_version = 3;
  return model;
}

/** Reshape to `shape` ([0, -1]: keep N, flatten the rest), in the form opset `target` has. */
function reshape(target: number, x: string, y: string, shape: number[], k: number): NodeProto[] {
  if (target < 5) return [{ op_type: 'Reshape', name: `legacy_reshape_${k}`, input: [x], output: [y], attribute: [intsAttr('shape', shape)] }];
  // Reshape-5: the shape is an input (a Constant, which every opset has).
  const value = makeTensor(`legacy_shape_${k}`, DataType.INT64, [shape.length], BigInt64Array.from(shape.map(BigInt)));
  return [
    { op_type: 'Constant', name: `legacy_shape_${k}`, input: [], output: [`legacy_shape_${k}`], attribute: [{ name: 'value', type: AttributeType.TENSOR, t: value }] },
    { op_type: 'Reshape', name: `legacy_reshape_${k}`, input: [x, `legacy_shape_${k}`], output: [y] },
  ];
}
