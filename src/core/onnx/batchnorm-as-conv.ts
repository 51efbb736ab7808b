import { DataType } from './dtypes';
import type { ModelEditor } from './editor';
import type { ModelLocation } from './external-data';
import { makeTensor, readTensor, toFloat32 } from './tensor';
import { attrFloat, attrInt, intAttr, intsAttr } from './attributes';
import { inferRanks } from './ranks';
import { declaredElemTypes } from './value-type';
import type { NodeProto } from './proto';

/**
 * Rewrites each inference-mode BatchNormalization that no Conv before it absorbed (one after a Concat or
 * an Add: DenseNet's pre-activation norms) as the same per-channel affine written as a depthwise 1×1 Conv
 * (weight γ/σ per channel, bias β − μ·γ/σ): exactly what onnxruntime's own layout pass makes of it on the
 * CPU, so the float model runs as fast, but static INT8 can then run it as a QLinearConv and keep int8
 * between the layers instead of dequantizing for a float BatchNormalization (torchvision DenseNet-121,
 * --static-ops all: 0.95x float with the norms float, 0.68x with them as convs, scratch). Only where the
 * input's rank is known and is 3 to 5 (a Conv's). Returns the names of the nodes rewritten.
 */
export function batchNormAsConv(editor: ModelEditor, loc: ModelLocation): string[] {
  const view = editor.view();
  const ranks = inferRanks(view);
  // The Conv's weights take X's type: float32 X only (opset 15 lets a float16 X have float32 statistics).
  const declared = declaredElemTypes(editor.graph);
  if ([...declared.values()].includes(DataType.FLOAT16)) return [];
  const done: string[] = [];
  for (const bn of [...(editor.graph.node ?? [])]) {
    if (bn.op_type !== 'BatchNormalization' || (bn.domain ?? '') !== '' || (bn.output ?? []).filter(Boolean).length !== 1) continue;
    // Per channel only: opset < 9's spatial=0 normalizes each element with a [C, H, W] scale.
    if (attrInt(bn, 'training_mode', 0) !== 0 || attrInt(bn, 'spatial', 1) !== 1) continue;
    const rank = ranks.get(bn.input?.[0] ?? '');
    const type = declared.get(bn.input?.[0] ?? '');
    if (rank === undefined || rank < 3 || rank > 5 || (type !== undefined && type !== DataType.FLOAT)) continue;
    const consts = (bn.input ?? []).slice(1, 5).map((n) => view.constant(n));
    if (consts.length !== 4 || consts.some((t) => !t || t.data_type !== DataType.FLOAT || (t.dims ?? []).length !== 1)) continue;
    const [gamma, beta, mean, variance] = consts.map((t) => toFloat32(readTensor(t!, loc)));
    const C = gamma.length;
    if (!C || [beta, mean, variance].some((v) => v.length !== C)) continue;
    const eps = Number(attrFloat(bn, 'epsilon', 1e-5));
    const w = new Float32Array(C), b = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      const k = gamma[c] / Math.sqrt(variance[c] + eps);
      w[c] = k;
      b[c] = beta[c] - mean[c] * k;
    }
    const base = (bn.input![1] ?? bn.name ?? 'bn').replace(/\.weight$/, '');
    const spatial = rank - 2;
    editor.replaceNode(bn, [{
      name: `${bn.name || base}_as_conv`, op_type: 'Conv', input: [
        bn.input![0],
        editor.addInitializer(makeTensor(`${base}.weight_as_conv`, DataType.FLOAT, [C, 1, ...Array<number>(spatial).fill(1)], w)),
        editor.addInitializer(makeTensor(`${base}.bias_as_conv`, DataType.FLOAT, [C], b)),
      ],
      output: [bn.output![0]],
      attribute: [intAttr('group', C), intsAttr('kernel_shape', Array<number>(spatial).fill(1))],
      doc_string: AS_CONV,
    }]);
    done.push(bn.name ?? 'BatchNormalization');
  }
  return done;
}

/** The doc string of a norm written as a conv: it says so in the output model, and reports list the layer as the norm it is. */
const AS_CONV = 'QuantLens: a BatchNormalization written as the same per-channel affine in a depthwise 1x1 Conv';

/** The op a node was written from ('BatchNormalization' for a norm written as a conv), else its own. */
export const writtenFrom = (n: NodeProto): string => (n.op_type === 'Conv' && n.doc_string === AS_CONV ? 'BatchNormalization' : n.op_type ?? '');
