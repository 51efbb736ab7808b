// onnxruntime (1.30) aborts the process when it loads a model where a DequantizeLinear feeds a Transpose
// (or Reshape, Squeeze, Unsqueeze, Slice, MaxPool) whose output an If/Loop/Scan body reads from outside:
// its QDQ propagation moves the DequantizeLinear past that op and indexes the body's read as if it were
// an input of the node (a failed vector-bounds assertion, at any optimisation level but 'disabled').
// Silero VAD's LSTM branches read two Transposes of a quantized Relu that way. Done here first, the same
// move leaves nothing for onnxruntime to propagate there: the op runs on the int8 values and the
// DequantizeLinear comes after it, which is exact for a per-tensor scale.
import type { ModelEditor } from '../../onnx/editor';
import { GraphView } from '../../onnx/graph';
import type { GraphProto, NodeProto } from '../../onnx/proto';
import { capturedValues, subgraphsOf, walkGraphs } from '../../onnx/walk';

/** The ops onnxruntime's QDQ propagation moves a DequantizeLinear past (qdq_propagation.cc). */
const PROPAGATED = new Set(['Transpose', 'Reshape', 'Squeeze', 'Unsqueeze', 'Slice', 'MaxPool']);

const isDq = (n: NodeProto | undefined) => n?.op_type === 'DequantizeLinear';

/** Whether a DequantizeLinear has one scale for the whole tensor (a moved op may reorder its elements). */
function perTensor(views: GraphView[], dq: NodeProto): boolean {
  const s = views.map((v) => v.constant(dq.input?.[1] ?? '')).find(Boolean);
  return !!s && (s.dims ?? []).reduce((a: number, d) => a * Number(d), 1) === 1;
}

/** In one graph: moves each DequantizeLinear below the propagated ops between it and a value a body reads. */
function moveInGraph(editor: ModelEditor, g: GraphProto, main: GraphView): number {
  const captured = new Set((g.node ?? []).filter((n) => subgraphsOf(n).length).flatMap((n) => capturedValues(n)));
  if (!captured.size) return 0;
  let moved = 0;
  for (let changed = true; changed;) {
    changed = false;
    const view = new GraphView(g);
    // The values upstream of a captured read through propagated ops: where a DequantizeLinear must not be.
    const chain = new Set<string>();
    const todo = [...captured];
    while (todo.length) {
      const v = todo.pop()!;
      const p = view.producer.get(v);
      // (MaxPool takes int8 from opset 12, where onnxruntime's propagation starts taking it too.)
      if (!p || chain.has(v) || !PROPAGATED.has(p.op_type ?? '') || (p.domain ?? '') !== '' || (p.op_type === 'MaxPool' && editor.opset() < 12)) continue;
      chain.add(v);
      todo.push(p.input?.[0] ?? '');
    }
    for (const v of chain) {
      const p = view.producer.get(v)!;
      const dq = view.producer.get(p.input?.[0] ?? '');
      if (!isDq(dq) || !perTensor([view, main], dq!)) continue;
      // p reads the int8 values; a DequantizeLinear with dq's scale makes p's old output from its new one.
      const q = editor.unique(`${v}_int8`);
      const list = g.node ?? [];
      const after: NodeProto = { name: editor.unique(`${v}_DequantizeLinear`), op_type: 'DequantizeLinear', domain: dq!.domain, input: [q, ...(dq!.input ?? []).slice(1)], output: [v], attribute: dq!.attribute };
      p.input = [dq!.input![0], ...(p.input ?? []).slice(1)];
      p.output = [q, ...(p.output ?? []).slice(1)];
      const unused = !list.some((n) => n !== p && [...(n.input ?? []), ...capturedValues(n)].includes(dq!.output![0])) && !(g.output ?? []).some((o) => o.name === dq!.output![0]);
      g.node = list.flatMap((n) => (n === p ? [p, after] : n === dq && unused ? [] : [n]));
      moved++;
      changed = true;
      break;
    }
  }
  return moved;
}

/** Every graph of the model (see the note above); returns how many ops now run before their DequantizeLinear. */
export function moveDequantizeBelowCapturedOps(editor: ModelEditor): number {
  let moved = 0;
  // (A body's scale may be the main graph's initializer.)
  const main = new GraphView(editor.graph);
  for (const { graph } of [...walkGraphs(editor.graph)]) moved += moveInGraph(editor, graph, main);
  return moved;
}
