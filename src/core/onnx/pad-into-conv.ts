import type { ModelEditor } from './editor';
import type { ModelLocation } from './external-data';
import type { GraphView } from './graph';
import type { NodeProto } from './proto';
import { intsConstant, scalarConstant } from './scalar-constant';
import { attrFloat, attrInts, attrString, intsAttr } from './attributes';
import { walkGraphs } from './walk';

/**
 * Folds a zero Pad of the spatial axes into the Conv that alone reads it (its `pads` grow by as much), as
 * onnxruntime's own float optimizer does: tf2onnx writes one before each stride-2 'SAME' conv, timm's
 * tf_* models too. Left for static INT8, the Pad sat between a QuantizeLinear pair and its conv, where
 * onnxruntime can no longer fold it, a float op with a round trip around it. Exact: a conv's padding is
 * zeros. Only constant mode with value 0, constant non-negative pads, none on the batch and channel axes,
 * and a conv without auto_pad. Returns the names of the Pads folded.
 */
export function padIntoConv(editor: ModelEditor, loc: ModelLocation): string[] {
  const view = editor.view();
  const gone = new Set<NodeProto>();
  const done: string[] = [];
  const outputs = new Set((editor.graph.output ?? []).map((o) => o.name));
  for (const pad of editor.graph.node ?? []) {
    if (pad.op_type !== 'Pad' || (pad.domain ?? '') !== '' || outputs.has(pad.output?.[0])) continue;
    const readers = view.consumersOf(pad.output?.[0] ?? '');
    const conv = readers[0];
    if (readers.length !== 1 || conv.op_type !== 'Conv' || (conv.domain ?? '') !== '' || conv.input?.[0] !== pad.output![0]) continue;
    const auto = attrString(conv, 'auto_pad');
    if (auto && auto !== 'NOTSET') continue;
    const pads = zeroPads(pad, view, loc);
    const rank = pads ? pads.length / 2 : 0;
    if (!pads || rank < 3 || pads.some((p) => p < 0) || pads[0] || pads[1] || pads[rank] || pads[rank + 1]) continue;
    const spatial = rank - 2;
    const own = attrInts(conv, 'pads') ?? Array<number>(2 * spatial).fill(0);
    if (own.length !== 2 * spatial) continue;
    const merged = own.map((p, i) => p + pads[2 + (i % spatial) + (i < spatial ? 0 : rank)]);
    conv.attribute = [...(conv.attribute ?? []).filter((a) => a.name !== 'pads' && a.name !== 'auto_pad'), intsAttr('pads', merged)];
    conv.input = [pad.input![0], ...conv.input!.slice(1)];
    gone.add(pad);
    done.push(pad.name ?? 'Pad');
  }
  if (gone.size) editor.removeNodes(gone);
  return done;
}

/**
 * Drops each Pad that pads nothing (every amount 0, whatever its mode): torch exports AvgPool2d with
 * count_include_pad as such a Pad before the AveragePool (DenseNet's transitions), and a float Pad there
 * kept the conv before it float under static INT8, or behind a boundary of its own. Its readers read its
 * input instead (in subgraphs too); one whose output is a graph output stays. Returns the names dropped.
 */
export function dropNoopPads(editor: ModelEditor, loc: ModelLocation): string[] {
  const view = editor.view();
  const outputs = new Set((editor.graph.output ?? []).map((o) => o.name));
  const source = new Map<string, string>();
  const gone = new Set<NodeProto>();
  for (const pad of editor.graph.node ?? []) {
    if (pad.op_type !== 'Pad' || (pad.domain ?? '') !== '' || !pad.input?.[0] || !pad.output?.[0] || outputs.has(pad.output[0])) continue;
    const values = padAmounts(pad, view, loc);
    if (!values?.length || values.some((v) => v !== 0)) continue;
    source.set(pad.output[0], pad.input[0]);
    gone.add(pad);
  }
  if (!gone.size) return [];
  const resolve = (name: string): string => (source.has(name) ? resolve(source.get(name)!) : name);
  for (const { graph } of walkGraphs(editor.graph)) for (const n of graph.node ?? []) n.input = (n.input ?? []).map((i) => (i ? resolve(i) : i));
  editor.removeNodes(gone);
  return [...gone].map((n) => n.name ?? 'Pad');
}

/**
 * A Pad's begin/end amounts per axis, whatever it pads with: the attribute before opset 11, the constant
 * input from then on; undefined when computed, or given for some axes only (opset 18's axes input).
 */
function padAmounts(pad: NodeProto, view: GraphView, loc: ModelLocation): number[] | undefined {
  if (!pad.input?.[1]) return attrInts(pad, 'pads');
  return pad.input[3] ? undefined : intsConstant(view, loc, pad.input[1]);
}

/** A Pad's amounts when it pads with zeros in constant mode (undefined otherwise). */
function zeroPads(pad: NodeProto, view: GraphView, loc: ModelLocation): number[] | undefined {
  if ((attrString(pad, 'mode') ?? 'constant') !== 'constant') return undefined;
  // The value: an attribute before opset 11, an optional constant input from then on.
  const value = pad.input?.[1] ? (pad.input[2] ? scalarConstant(view, loc, pad.input[2]) : 0) : attrFloat(pad, 'value', 0);
  return value === 0 ? padAmounts(pad, view, loc) : undefined;
}
