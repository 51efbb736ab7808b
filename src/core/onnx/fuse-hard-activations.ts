import { attrFloat, floatAttr } from './attributes';
import type { ModelEditor } from './editor';
import type { ModelLocation } from './external-data';
import type { GraphView } from './graph';
import type { NodeProto } from './proto';
import { scalarConstant as scalar } from './scalar-constant';

/**
 * Rewrites decomposed hard activations into HardSigmoid (opset 6 and later), as exporters such as
 * Paddle2ONNX write them and onnxruntime does not fuse them:
 *   Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)  →  Mul(x, HardSigmoid(x))   (HardSwish: 4 ops become 2)
 *   Div(Clip(Add(x, 3), 0, 6), 6)          →  HardSigmoid(x)            (3 ops become 1)
 * (Mul by 1/6 in place of Div by 6 too.) HardSigmoid(x) = max(0, min(1, x/6 + 1/2)) is the same function;
 * outputs keep their names. Each rewritten op is one less float pass over the tensor, and in a quantized
 * model one less float island between integer kernels. HardSwish itself needs opset 14, which most of
 * these exports are not. Returns how many of each were rewritten.
 */
export function fuseHardActivations(editor: ModelEditor, loc: ModelLocation): { hardSwish: number; hardSigmoid: number } {
  const outputs = new Set((editor.graph.output ?? []).map((o) => o.name));
  let hardSwish = 0, hardSigmoid = 0;
  // One pass over one view: a rewrite keeps its output names and touches only its own nodes, so the
  // view stays true for the other matches.
  const view = editor.view();
  const gone = new Set<NodeProto>();
  for (const clip of [...(editor.graph.node ?? [])]) {
    const m = matchRelu6Shift(view, loc, clip, outputs);
    if (!m) continue;
    const readers = view.consumersOf(clip.output![0]);
    if (readers.length !== 1 || outputs.has(clip.output![0])) continue;
    const next = readers[0];
    const base = clip.name || clip.output![0];
    const hs = (input: string, output: string): NodeProto => ({ name: `${base}_HardSigmoid`, op_type: 'HardSigmoid', input: [input], output: [output], attribute: [floatAttr('alpha', 1 / 6), floatAttr('beta', 0.5)] });
    if (isScaleBySixth(view, loc, next, clip.output![0])) {
      // HardSigmoid: the shifted relu6 scaled by 1/6.
      editor.replaceNode(next, [hs(m.x, next.output![0])]);
      [clip, m.add].forEach((n) => gone.add(n));
      hardSigmoid++;
      continue;
    }
    if (next.op_type !== 'Mul' || (next.domain ?? '') !== '' || next.input!.length !== 2 || !next.input!.includes(m.x) || next.input![0] === next.input![1]) continue;
    const mulReaders = view.consumersOf(next.output![0]);
    const scale = mulReaders.length === 1 && !outputs.has(next.output![0]) ? mulReaders[0] : undefined;
    if (!scale || !isScaleBySixth(view, loc, scale, next.output![0])) continue;
    // HardSwish: x times the shifted relu6, scaled by 1/6.
    const gate = editor.unique(`${base}_hard_sigmoid`);
    editor.replaceNode(scale, [hs(m.x, gate), { name: `${base}_HardSwish_Mul`, op_type: 'Mul', input: [m.x, gate], output: [scale.output![0]] }]);
    [next, clip, m.add].forEach((n) => gone.add(n));
    hardSwish++;
  }
  if (gone.size) {
    editor.graph.node = (editor.graph.node ?? []).filter((n) => !gone.has(n));
    editor.dropUnusedConstants();
  }
  return { hardSwish, hardSigmoid };
}

const near = (a: number | undefined, b: number) => a !== undefined && Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));

/** Clip(Add(x, 3), 0, 6) with the Add read only by the Clip: returns x and the Add. */
function matchRelu6Shift(view: GraphView, loc: ModelLocation, clip: NodeProto, outputs: Set<string | null | undefined>): { x: string; add: NodeProto } | undefined {
  if (clip.op_type !== 'Clip' || (clip.domain ?? '') !== '') return undefined;
  const lo = clip.input!.length > 1 ? scalar(view, loc, clip.input![1]) : attrFloat(clip, 'min', -Infinity);
  const hi = clip.input!.length > 2 ? scalar(view, loc, clip.input![2]) : attrFloat(clip, 'max', Infinity);
  if (!near(lo, 0) || !near(hi, 6)) return undefined;
  const add = view.producer.get(clip.input![0]);
  if (!add || add.op_type !== 'Add' || (add.domain ?? '') !== '' || add.input!.length !== 2) return undefined;
  if (view.consumersOf(add.output![0]).length !== 1 || outputs.has(add.output![0])) return undefined;
  const k = add.input!.findIndex((i) => near(scalar(view, loc, i), 3));
  if (k < 0) return undefined;
  const x = add.input![1 - k];
  return view.constant(x) ? undefined : { x, add };
}

/** Div(t, 6) or Mul(t, 1/6) (either side for Mul). */
function isScaleBySixth(view: GraphView, loc: ModelLocation, node: NodeProto, t: string): boolean {
  if ((node.domain ?? '') !== '' || node.input!.length !== 2) return false;
  if (node.op_type === 'Div') return node.input![0] === t && near(scalar(view, loc, node.input![1]), 6);
  if (node.op_type === 'Mul') return near(scalar(view, loc, node.input![node.input![0] === t ? 1 : 0]), 1 / 6);
  return false;
}
