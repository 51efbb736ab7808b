import { DataType } from './dtypes';
import type { ModelEditor } from './editor';
import type { ModelLocation } from './external-data';
import { channelConstant } from './channel-constant';
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
