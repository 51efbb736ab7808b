import { DataType } from './dtypes';
import type { ModelEditor } from './editor';
import type { ModelLocation } from './external-data';
import { makeTensor, readTensor, tensorDims, toFloat32 } from './tensor';
import { attrFloat } from './attributes';

/**
 * Folds inference-mode BatchNormalization into the Conv before it (W' = W·γ/σ, b' = (b − μ)·γ/σ + β),
 * as exporters and onnxruntime's session optimiser do. Static quantization needs it done first: a Q/DQ
 * pair between Conv and BN would quantize pre-normalisation channels, whose ranges differ wildly, with
 * one scale. Returns the names of the BatchNormalization nodes removed.
 */
export function foldBatchNormIntoConv(editor: ModelEditor, loc: ModelLocation): string[] {
  const view = editor.view();
  const folded: string[] = [];
  const graphOutputs = new Set((editor.graph.output ?? []).map((o) => o.name));
  for (const bn of [...(editor.graph.node ?? [])]) {
    if (bn.op_type !== 'BatchNormalization' || (bn.domain ?? '') !== '' || (bn.output ?? []).filter(Boolean).length !== 1) continue;
    const conv = view.producer.get(bn.input![0]);
    if (!conv || conv.op_type !== 'Conv' || (conv.domain ?? '') !== '') continue;
    if (view.consumersOf(conv.output![0]).length !== 1 || graphOutputs.has(conv.output![0])) continue;
    const consts = [conv.input![1], ...bn.input!.slice(1, 5)].map((n) => view.constant(n));
    if (consts.some((t) => !t || t.data_type !== DataType.FLOAT)) continue;
    const bias = conv.input![2] ? view.constant(conv.input![2]) : undefined;
    if (conv.input![2] && (!bias || bias.data_type !== DataType.FLOAT)) continue;
    const [w, gamma, beta, mean, variance] = consts.map((t) => toFloat32(readTensor(t!, loc)));
    const wDims = tensorDims(consts[0]!, loc);
    const cout = wDims[0];
    if (gamma.length !== cout) continue;
    const eps = attrFloat(bn, 'epsilon', 1e-5);
    const per = w.length / cout;
    const w2 = new Float32Array(w.length);
    const b2 = new Float32Array(cout);
    const b = bias ? toFloat32(readTensor(bias, loc)) : new Float32Array(cout);
    for (let c = 0; c < cout; c++) {
      const k = gamma[c] / Math.sqrt(variance[c] + Number(eps));
      for (let i = 0; i < per; i++) w2[c * per + i] = w[c * per + i] * k;
      b2[c] = (b[c] - mean[c]) * k + beta[c];
    }
    const base = conv.input![1].replace(/\.weight$/, '');
    conv.input = [conv.input![0], editor.addInitializer(makeTensor(`${base}.weight_bn_folded`, DataType.FLOAT, wDims, w2)), editor.addInitializer(makeTensor(`${base}.bias_bn_folded`, DataType.FLOAT, [cout], b2))];
    conv.output = [bn.output![0]];
    editor.graph.node = editor.graph.node!.filter((n) => n !== bn);
    folded.push(bn.name ?? 'BatchNormalization');
  }
  return folded;
}
