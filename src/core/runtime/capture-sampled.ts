import * as ort from 'onnxruntime-node';
import type { CalibrationData } from '../calib/data';
import { CancelledError } from '../base/errors';
import type { JobContext } from '../base/jobs';
import { DataType } from '../onnx/dtypes';
import type { LoadedModel } from '../onnx/model-io';
import { onnx, type NodeProto, type TensorProto } from '../onnx/proto';
import { int64Tensor } from '../onnx/tensor';
import { intAttr } from '../onnx/attributes';
import { withReductions } from './capture';
import { pinnedVariantSession, type PinnedSession } from './pinned-session';
import type { DevicePreference, Provider } from './session';

/**
 * What one sample showed of one tensor, for a histogram: groups of values, each value standing for
 * `weight` of the tensor's elements: the strided picks of its middle at the stride's weight, every value
 * past the tail threshold exactly (weight 1), or all of it. `min` and `max` are exact.
 */
export interface SampledTensor {
  min: number;
  max: number;
  /** Elements in the whole tensor. */
  size: number;
  /** The stride of the picks, and the magnitude past which every value came out exactly (Infinity: none). */
  step: number;
  over: number;
  parts: Array<{ values: Float32Array; weight: number }>;
}

/**
 * The smallest prime stride of at least `want` that does not divide `size`. A prime that does not divide
 * the element count divides none of the dimensions, so the picks walk through every channel and position
 * of the tensor instead of landing on the same few columns (a stride of 3 over rows of 768 features would
 * only ever see every third feature).
 */
export function sampleStride(size: number, want: number): number {
  if (want <= 1) return 1;
  for (let p = Math.max(2, Math.ceil(want)); ; p++) if (isPrime(p) && size % p !== 0) return p;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/**
 * Histogram statistics without copying whole activations out of onnxruntime: a copy of the model gets,
 * beside each tensor's producer, ReduceMin/ReduceMax (exact extremes), Size, a Slice of the flattened
 * tensor whose step is a graph input (about `cap` values per sample), and Compress of every value whose
 * magnitude passes a threshold, also an input. Clipping is decided in the tails, where a stride would
 * catch a handful of values each standing for hundreds: they come out exactly, and the picks count only
 * between them. Strides are primes chosen from the size each tensor had in the previous sample;
 * thresholds follow the tail counts, aiming at about cap/8 values per sample (the first sample is run
 * once more beforehand, with a coarse stride, to learn sizes and ranges). Undefined when onnxruntime
 * refuses the variant (an opset below 10 has no Slice steps; a type ReduceMin lacks): the caller copies
 * the tensors instead.
 */
export async function captureSampled(
  loaded: LoadedModel, names: string[], data: CalibrationData, device: DevicePreference, cap: number,
  onTensor: (name: string, t: SampledTensor) => void, ctx: JobContext = {},
): Promise<{ provider: Provider; fallbackReason?: string; samples: number; seconds: number } | undefined> {
  const opset = Number((loaded.model.opset_import ?? []).find((x) => (x.domain ?? '') === '' || x.domain === 'ai.onnx')?.version ?? 13);
  if (opset < 10 || !names.length) return undefined;
  const t0 = performance.now();
  const extra: TensorProto[] = [int64Tensor('quantlens_s_flat', [-1]), int64Tensor('quantlens_s_zero', [0]), int64Tensor('quantlens_s_end', [Number.MAX_SAFE_INTEGER])];
  const stepOf = (i: number) => `quantlens_s_step_${i}`, overOf = (i: number) => `quantlens_s_over_${i}`;
  const node = (op: string, name: string, input: string[], attribute: NodeProto['attribute'] = []): NodeProto => ({ op_type: op, name, input, output: [name], attribute });
  const keep0 = [intAttr('keepdims', 0)];
  const placements = names.map((t, i) => {
    const flat = `quantlens_s_1d_${i}`;
    return {
      tensor: t,
      nodes: [
        node('ReduceMin', `quantlens_s_min_${i}`, [t], keep0),
        node('ReduceMax', `quantlens_s_max_${i}`, [t], keep0),
        node('Size', `quantlens_s_size_${i}`, [t]),
        node('Reshape', flat, [t, 'quantlens_s_flat']),
        node('Slice', `quantlens_s_pick_${i}`, [flat, 'quantlens_s_zero', 'quantlens_s_end', 'quantlens_s_zero', stepOf(i)]),
        node('Abs', `quantlens_s_abs_${i}`, [flat]),
        // Any element type compares with the float threshold (onnxruntime drops a float-to-float Cast).
        node('Cast', `quantlens_s_absf_${i}`, [`quantlens_s_abs_${i}`], [intAttr('to', DataType.FLOAT)]),
        node('Greater', `quantlens_s_past_${i}`, [`quantlens_s_absf_${i}`, overOf(i)]),
        node('Compress', `quantlens_s_tail_${i}`, [flat, `quantlens_s_past_${i}`], [intAttr('axis', 0)]),
      ],
    };
  });
  const variant = withReductions(loaded.model, placements, extra);
  const g = variant.graph!;
  const input = (name: string, elem: number) => onnx.ValueInfoProto.create({ name, type: { tensor_type: { elem_type: elem, shape: { dim: [{ dim_value: 1 }] } } } });
  g.input = [...(g.input ?? []), ...names.flatMap((_, i) => [input(stepOf(i), DataType.INT64), input(overOf(i), DataType.FLOAT)])];
  const fetch = names.flatMap((_, i) => [`quantlens_s_min_${i}`, `quantlens_s_max_${i}`, `quantlens_s_size_${i}`, `quantlens_s_pick_${i}`, `quantlens_s_tail_${i}`]);
  const samples = data.samples()[Symbol.iterator]();
  let next = samples.next();
  if (next.done) return undefined;
  let s: PinnedSession;
  try {
    const withOutputs = onnx.ModelProto.create({ ...variant, graph: onnx.GraphProto.create({ ...g, output: [...(g.output ?? []), ...fetch.map((name) => ({ name }))] }) });
    // No arena: the masks and flattened copies beside each tensor would raise its high-water mark for good
    // (PaddleOCR det 320x640 sensitivity: the calibration phase's peak 400 -> 286 MiB, same speed).
    s = await pinnedVariantSession(withOutputs, loaded, device, next.value, 'all', { noArena: true });
  } catch {
    return undefined;
  }
  const target = Math.max(16, Math.ceil(cap / 8));
  try {
    let plans: Array<{ step: number; over: number }> | undefined;
    let i = 0;
    for (; !next.done; next = samples.next()) {
      const feeds = next.value;
      if (ctx.signal?.aborted) throw new CancelledError();
      const run = (p: Array<{ step: number; over: number }>) => s.run({
        ...feeds,
        ...Object.fromEntries(p.flatMap((x, k) => [[stepOf(k), new ort.Tensor('int64', BigInt64Array.of(BigInt(x.step)), [1])], [overOf(k), new ort.Tensor('float32', Float32Array.of(x.over), [1])]])),
      }, fetch);
      // The first sample runs once more, coarsely, to learn each tensor's size and range.
      if (!plans) {
        const probe = await run(names.map(() => ({ step: 101, over: Infinity })));
        plans = names.map((_, k) => {
          const size = Number(probe[`quantlens_s_size_${k}`].data[0]);
          const step = sampleStride(size, size / cap);
          const lo = Number(probe[`quantlens_s_min_${k}`].data[0]), hi = Number(probe[`quantlens_s_max_${k}`].data[0]);
          return { step, over: step === 1 ? Infinity : Math.fround(Math.max(Math.abs(lo), Math.abs(hi)) / 2) };
        });
      }
      const out = await run(plans);
      names.forEach((name, k) => {
        const lo = out[`quantlens_s_min_${k}`], hi = out[`quantlens_s_max_${k}`], pick = out[`quantlens_s_pick_${k}`], tail = out[`quantlens_s_tail_${k}`];
        const size = Number(out[`quantlens_s_size_${k}`].data[0]);
        const used = plans![k];
        plans![k] = nextPlan(used, size, cap, tail.data.length, target);
        if (lo.type !== 'float32' || pick.type !== 'float32') return; // only float activations are calibrated
        onTensor(name, { min: Number(lo.data[0]), max: Number(hi.data[0]), size, step: used.step, over: used.over, parts: split(pick.data as Float32Array, tail.data as Float32Array, size, used.over) });
      });
      i++;
      ctx.onProgress?.({ stage: 'calibration', fraction: i / data.count, message: `sample ${i}/${data.count}` });
    }
    return { provider: s.provider, ...(s.fallbackReason ? { fallbackReason: s.fallbackReason } : {}), samples: i, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    if (e instanceof CancelledError) throw e;
    if (process.env.QUANTLENS_DEBUG) console.error(`captureSampled: ${String(e)}`);
    return undefined;
  } finally {
    await s.release();
  }
}

/**
 * The next sample's stride (from this one's size: samples of one model rarely change shape) and tail
 * threshold, moved by at most ×1.5 or ÷1.5 a sample toward `target` tail values. Any threshold keeps the
 * estimate unbiased; it only sets how much is copied exactly.
 */
function nextPlan(used: { step: number; over: number }, size: number, cap: number, tail: number, target: number): { step: number; over: number } {
  const step = sampleStride(size, size / cap);
  if (step === 1) return { step, over: Infinity };
  if (!Number.isFinite(used.over)) return { step, over: used.over };
  const ratio = Math.min(1.5, Math.max(1 / 1.5, ((tail + 1) / target) ** 0.25));
  return { step, over: Math.fround(used.over * ratio) }; // as onnxruntime compares it
}

/** The picks whose magnitude is within the threshold (each standing for size/picks elements) and the exact tail. */
export function split(picks: Float32Array, tail: Float32Array, size: number, over: number): SampledTensor['parts'] {
  const weight = size / Math.max(1, picks.length);
  if (!Number.isFinite(over)) return [{ values: picks, weight }];
  const bulk = new Float32Array(picks.length);
  let n = 0;
  for (let j = 0; j < picks.length; j++) if (Math.abs(picks[j]) <= over) bulk[n++] = picks[j];
  return [{ values: bulk.subarray(0, n), weight }, { values: tail, weight: 1 }];
}
