import { DataType } from './dtypes';
import type { ModelEditor } from './editor';
import type { ModelLocation } from './external-data';
import { channelConstant } from './channel-constant';
import { attrInt, attrInts, attrString } from './attributes';
import type { NodeProto } from './proto';
import type { GraphView } from './graph';
import { makeTensor, readTensor, tensorDims, toFloat32 } from './tensor';

const AFFINE = new Set(['Mul', 'Add', 'Sub', 'Div']);

/**
 * Folds constant per-channel scales and shifts that follow a Conv (Mul/Div by, Add/Sub of a constant:
 * PaddleOCR's learnable affine blocks, exporters' unfused norms) into the Conv's weight and bias, exactly,
 * as onnxruntime's ConvMulFusion/ConvAddFusion do when the graph is loaded. Static quantization needs it
 * done first: with Q/DQ placed between them, onnxruntime can no longer fuse them, and each would add a
 * float round trip and a quantization point. Returns how many nodes were folded.
 */
export function foldAffineIntoConv(editor: ModelEditor, loc: ModelLocation): number {
  const graphOutputs = new Set((editor.graph.output ?? []).map((o) => o.name));
  let folded = 0;
  for (const conv of [...(editor.graph.node ?? [])]) {
    if (conv.op_type !== 'Conv' || (conv.domain ?? '') !== '') continue;
    for (;;) {
      const view = editor.view();
      const out = conv.output![0];
      const readers = view.consumersOf(out);
      if (readers.length !== 1 || graphOutputs.has(out)) break;
      const next = readers[0];
      if (!AFFINE.has(next.op_type ?? '') || (next.domain ?? '') !== '' || next.input!.length !== 2 || next.input![0] === next.input![1]) break;
      const wt = view.constant(conv.input![1]);
      const bt = conv.input![2] ? view.constant(conv.input![2]) : undefined;
      if (!wt || wt.data_type !== DataType.FLOAT || (conv.input![2] && (!bt || bt.data_type !== DataType.FLOAT))) break;
      const wDims = tensorDims(wt, loc);
      const cout = wDims[0];
      const other = next.input!.find((i) => i !== out)!;
      // Sub and Div are affine in the data only when the constant is the second operand.
      if ((next.op_type === 'Sub' || next.op_type === 'Div') && next.input![1] !== other) break;
      const k = channelConstant(view, loc, other, cout, 1, wDims.length);
      if (!k) break;
      const w = toFloat32(readTensor(wt, loc));
      const b = bt ? Float32Array.from(toFloat32(readTensor(bt, loc))) : new Float32Array(cout);
      const per = w.length / cout;
      const op = next.op_type;
      let w2 = w;
      if (op === 'Mul' || op === 'Div') {
        w2 = new Float32Array(w.length);
        for (let c = 0; c < cout; c++) {
          const s = op === 'Mul' ? k[c] : 1 / k[c];
          for (let i = 0; i < per; i++) w2[c * per + i] = w[c * per + i] * s;
          b[c] *= s;
        }
      } else {
        for (let c = 0; c < cout; c++) b[c] += op === 'Add' ? k[c] : -k[c];
      }
      const base = (conv.name || conv.input![1]).replace(/\.weight$/, '');
      conv.input = [conv.input![0],
        w2 === w ? conv.input![1] : editor.addInitializer(makeTensor(`${base}.weight_affine_folded`, DataType.FLOAT, wDims, w2)),
        editor.addInitializer(makeTensor(`${base}.bias_affine_folded`, DataType.FLOAT, [cout], b))];
      conv.output = [next.output![0]];
      editor.graph.node = editor.graph.node!.filter((n) => n !== next);
      folded++;
    }
  }
  return folded;
}

/**
 * Folds constant shifts *before* `conv` into its bias: x → Add(b) → Conv(W, B) becomes Conv(W, B + W·b) on
 * x, where the conv reads no padding (a padded border would see b where the original saw 0) and nothing
 * else reads the shifted value. PaddleOCR's PP-LCNetV3 blocks end each HardSwish with an affine (a scalar
 * scale, a per-channel shift) before a pointwise conv, and onnxruntime fuses neither: each is a float pass
 * with an NCHWc reorder on either side. Only for a conv that stays float: folding every such shift before
 * calibration, quantized convs too, cost PaddleOCR rec held-out lines (35 of 48 exact with every conv
 * quantized, against 44) though the calibrated ranges of those inputs barely moved; the cause is not
 * known. `view` is of the graph as it stands (one for many convs: a fold removes only its own shifts).
 * `keep` names nodes that must stay (quantized ones). Returns how many nodes were folded.
 */
export function foldShiftsIntoConv(editor: ModelEditor, view: GraphView, loc: ModelLocation, conv: NodeProto, keep: (node: NodeProto) => boolean = () => false): number {
  if (conv.op_type !== 'Conv' || (conv.domain ?? '') !== '' || !readsNoPadding(conv)) return 0;
  const wt = view.constant(conv.input![1]);
  const bt = conv.input![2] ? view.constant(conv.input![2]) : undefined;
  if (!wt || wt.data_type !== DataType.FLOAT || (conv.input![2] && (!bt || bt.data_type !== DataType.FLOAT))) return 0;
  const graphOutputs = new Set((editor.graph.output ?? []).map((o) => o.name));
  const wDims = tensorDims(wt, loc);
  const group = attrInt(conv, 'group', 1);
  const [cout, cinPer] = wDims, per = wDims.slice(2).reduce((a, b) => a * b, 1);
  // The weight and bias are read once, when there is a shift to fold, and the bias written once.
  let w: Float32Array | undefined, b: Float32Array | undefined;
  const folded = new Set<NodeProto>();
  let x = conv.input![0];
  for (;;) {
    const prev = view.producer.get(x);
    if (!prev || (prev.op_type !== 'Add' && prev.op_type !== 'Sub') || (prev.domain ?? '') !== '' || keep(prev) || prev.input!.length !== 2 || graphOutputs.has(x) || view.consumersOf(x).length !== 1) break;
    // Sub is a shift of the data only when the constant is the second operand.
    const k = prev.op_type === 'Sub' ? 1 : prev.input!.findIndex((i) => !!view.constant(i));
    if (k < 0 || !view.constant(prev.input![k]) || view.constant(prev.input![1 - k])) break;
    const c = channelConstant(view, loc, prev.input![k], cinPer * group, 1, wDims.length);
    if (!c) break;
    w ??= toFloat32(readTensor(wt, loc));
    b ??= bt ? Float32Array.from(toFloat32(readTensor(bt, loc))) : new Float32Array(cout);
    const sign = prev.op_type === 'Add' ? 1 : -1;
    for (let o = 0; o < cout; o++) {
      const g = Math.floor(o / (cout / group));
      let sum = 0;
      for (let i = 0; i < cinPer; i++) for (let t = 0; t < per; t++) sum += w[(o * cinPer + i) * per + t] * c[g * cinPer + i];
      b[o] += sign * sum;
    }
    folded.add(prev);
    x = prev.input![1 - k];
  }
  if (!b) return 0;
  const base = (conv.name || conv.input![1]).replace(/\.weight$/, '');
  conv.input = [x, conv.input![1], editor.addInitializer(makeTensor(`${base}.bias_shift_folded`, DataType.FLOAT, [cout], b))];
  editor.graph.node = editor.graph.node!.filter((n) => !folded.has(n));
  return folded.size;
}

/** A Conv whose windows never reach past its input: no pads (or auto_pad VALID). */
function readsNoPadding(conv: NodeProto): boolean {
  const auto = attrString(conv, 'auto_pad') ?? 'NOTSET';
  if (auto !== 'NOTSET' && auto !== 'VALID') return false;
  return auto === 'VALID' || (attrInts(conv, 'pads') ?? []).every((p) => p === 0);
}
