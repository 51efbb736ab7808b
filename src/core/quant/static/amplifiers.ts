// Float ops that magnify rounding near zero: a Log, a square root, a reciprocal or fractional power, a
// division by the value. An 8-bit step on a tensor they read (Silero VAD's STFT output, before its
// log-magnitude) becomes a large error after them.
import type { GraphView } from '../../onnx/graph';
import type { ModelLocation } from '../../onnx/external-data';
import type { NodeProto } from '../../onnx/proto';
import { readTensor, toFloat32 } from '../../onnx/tensor';
import { LAYER_OPS } from '../../onnx/layer-ops';

/** What a decision left exact for this says, after "its output reaches" / "its values reach". */
export const AMPLIFIERS_REACHED = 'a Log, Sqrt or division through float ops, which magnify 8-bit rounding near zero (Silero VAD\'s STFT output before its log-magnitude: with a Q/DQ there, 320 of 351 speech/no-speech decisions matched float)';

/**
 * Where the search stops, besides layers (their outputs are quantized, or not, on their own account):
 * ops that pool many values into one (a norm's statistics: rounding noise averages out), and those
 * whose output's relative error is the input's absolute one (Exp, Sigmoid, Softplus: a Mish's
 * log(1 + eˣ) is well conditioned).
 */
const STOPS = new Set(['GlobalAveragePool', 'GlobalMaxPool', 'Softmax', 'LogSoftmax', 'LayerNormalization', 'InstanceNormalization', 'GroupNormalization', 'SimplifiedLayerNormalization', 'Exp', 'Sigmoid', 'Softplus']);

/**
 * Whether a rounding of `t` reaches an amplifier: through the readers `first` accepts (those that would
 * read the rounded copy; all when omitted), then through every op after them, up to the next layer or
 * reduction.
 */
export function reachesAmplifier(view: GraphView, t: string, loc: ModelLocation, first: (n: NodeProto) => boolean = () => true): boolean {
  const seen = new Set<string>();
  const todo: Array<[string, boolean]> = [[t, true]];
  while (todo.length && seen.size < 64) {
    const [v, start] = todo.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    for (const r of view.consumersOf(v)) {
      const op = r.op_type ?? '';
      if ((start && !first(r)) || (r.domain ?? '') !== '' || LAYER_OPS.has(op) || op.startsWith('Reduce') || STOPS.has(op)) continue;
      if (op === 'Log' || op === 'Sqrt' || op === 'Reciprocal' || (op === 'Div' && r.input?.[1] === v)) return true;
      if (op === 'Pow' && r.input?.[0] === v) {
        const e = view.constant(r.input?.[1] ?? '');
        const x = e ? toFloat32(readTensor(e, loc)) : undefined;
        if (!x || x.some((p) => p < 1 || !Number.isInteger(p))) return true;
      }
      for (const o of r.output ?? []) if (o) todo.push([o, false]);
    }
  }
  return false;
}
