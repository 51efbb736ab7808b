import { DataType } from './dtypes';
import type { ModelEditor } from './editor';
import type { ModelLocation } from './external-data';
import { attrInt, attrInts, intAttr } from './attributes';
import { inferRanks } from './ranks';
import { intsConstant } from './scalar-constant';
import { declaredElemTypes } from './value-type';

/**
 * Rewrites a ReduceMean over every spatial axis of an N×C×… tensor (torch's `x.mean([2, 3])`, the global
 * pool of ShuffleNetV2 and MNASNet) as GlobalAveragePool, then a Flatten where keepdims is 0: the same
 * values, but an op with an integer kernel (QLinearGlobalAveragePool) where ReduceMean has none. Static
 * INT8's chain of convs then reaches a QuantizeLinear through the pool instead of ending in a float
 * island, which under the fused placement left every conv upstream of it float (torchvision MNASNet and
 * ShuffleNetV2: only the classifier quantized). Only where the input's rank is known and the axes are
 * constant. Returns the names of the nodes rewritten.
 */
export function spatialMeanAsPool(editor: ModelEditor, loc: ModelLocation): string[] {
  const view = editor.view();
  const ranks = inferRanks(view);
  // GlobalAveragePool takes floats only (a mean of integers stays a ReduceMean): by the declared type, where there is one.
  const declared = declaredElemTypes(editor.graph);
  const done: string[] = [];
  for (const n of [...(editor.graph.node ?? [])]) {
    if (n.op_type !== 'ReduceMean' || (n.domain ?? '') !== '' || (n.output ?? []).filter(Boolean).length !== 1) continue;
    const rank = ranks.get(n.input?.[0] ?? '');
    if (rank === undefined || rank < 3 || !floating(declared.get(n.input![0]))) continue;
    // Axes: an attribute before opset 18, a constant input from then on.
    const axes = attrInts(n, 'axes') ?? intsConstant(view, loc, n.input?.[1]);
    if (!axes) continue;
    const sorted = [...new Set(axes.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
    if (sorted.length !== rank - 2 || sorted.some((a, i) => a !== i + 2)) continue;
    const out = n.output![0];
    const keep = attrInt(n, 'keepdims', 1) !== 0;
    const pooled = keep ? out : editor.unique(`${out}_pooled`);
    const pool = { name: `${n.name || 'ReduceMean'}_as_pool`, op_type: 'GlobalAveragePool', input: [n.input![0]], output: [pooled] };
    editor.replaceNode(n, keep ? [pool] : [pool, { name: `${n.name || 'ReduceMean'}_flatten`, op_type: 'Flatten', input: [pooled], output: [out], attribute: [intAttr('axis', 1)] }]);
    done.push(n.name ?? 'ReduceMean');
  }
  return done;
}

const FLOATS = new Set([DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE]);
/** A declared element type GlobalAveragePool takes, or none declared (an intermediate value of a float graph). */
const floating = (t: number | undefined) => t === undefined || t === 0 || FLOATS.has(t);
