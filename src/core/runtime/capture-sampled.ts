import * as ort from 'onnxruntime-node';
import type { CalibrationData } from '../calib/data';
import { CancelledError } from '../base/errors';
import type { JobContext } from '../base/jobs';
import { DataType } from '../onnx/dtypes';
import type { LoadedModel } from '../onnx/model-io';
import { onnx, type NodeProto, type TensorProto } from '../onnx/proto';
import { int64Tensor } from '../onnx/tensor';
import { intAttr } from '../onnx/attributes';
import { sessionForVariant, withReductions } from './capture';
import type { DevicePreference, Provider } from './session';

/** What one sample showed of one tensor: exact extremes, its size, and a strided pick of its values. */
export interface SampledTensor {
  min: number;
  max: number;
  /** Elements in the whole tensor. */
  size: number;
  /** Every `step`-th element of the flattened tensor (all of it when step is 1). */
  values: Float32Array;
  step: number;
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
 * beside each tensor's producer, ReduceMin/ReduceMax (exact extremes), Size, and a Slice of the flattened
 * tensor whose step is a graph input, so each sample hands out at most about `cap` values per tensor.
 * Strides are primes chosen from the size each tensor had in the previous sample (the first sample is
 * run once more beforehand to learn them). Undefined when onnxruntime refuses the variant (an opset
 * below 10 has no Slice steps, a type ReduceMin lacks): the caller copies the tensors instead.
 */
export async function captureSampled(
  loaded: LoadedModel, names: string[], data: CalibrationData, device: DevicePreference, cap: number,
  onTensor: (name: string, t: SampledTensor) => void, ctx: JobContext = {},
): Promise<{ provider: Provider; fallbackReason?: string; samples: number; seconds: number } | undefined> {
  const opset = Number((loaded.model.opset_import ?? []).find((x) => (x.domain ?? '') === '' || x.domain === 'ai.onnx')?.version ?? 13);
  if (opset < 10 || !names.length) return undefined;
  const t0 = performance.now();
  const extra: TensorProto[] = [int64Tensor('quantlens_s_flat', [-1]), int64Tensor('quantlens_s_zero', [0]), int64Tensor('quantlens_s_end', [Number.MAX_SAFE_INTEGER])];
  const stepInputs = names.map((_, i) => `quantlens_s_step_${i}`);
  const node = (op: string, name: string, input: string[], attribute: NodeProto['attribute'] = []): NodeProto => ({ op_type: op, name, input, output: [name], attribute });
  const keep0 = [intAttr('keepdims', 0)];
  const placements = names.map((t, i) => ({
    tensor: t,
    nodes: [
      node('ReduceMin', `quantlens_s_min_${i}`, [t], keep0),
      node('ReduceMax', `quantlens_s_max_${i}`, [t], keep0),
      node('Size', `quantlens_s_size_${i}`, [t]),
      node('Reshape', `quantlens_s_1d_${i}`, [t, 'quantlens_s_flat']),
      node('Slice', `quantlens_s_pick_${i}`, [`quantlens_s_1d_${i}`, 'quantlens_s_zero', 'quantlens_s_end', 'quantlens_s_zero', stepInputs[i]]),
    ],
  }));
  const variant = withReductions(loaded.model, placements, extra);
  const g = variant.graph!;
  g.input = [...(g.input ?? []), ...stepInputs.map((name) => onnx.ValueInfoProto.create({ name, type: { tensor_type: { elem_type: DataType.INT64, shape: { dim: [{ dim_value: 1 }] } } } }))];
  const fetch = names.flatMap((_, i) => [`quantlens_s_min_${i}`, `quantlens_s_max_${i}`, `quantlens_s_size_${i}`, `quantlens_s_pick_${i}`]);
  let s: Awaited<ReturnType<typeof sessionForVariant>>;
  try {
    s = await sessionForVariant(onnx.ModelProto.create({ ...variant, graph: onnx.GraphProto.create({ ...g, output: [...(g.output ?? []), ...fetch.map((name) => ({ name }))] }) }), loaded, device, 'all');
  } catch {
    return undefined;
  }
  try {
    const stride = (n: number) => new ort.Tensor('int64', BigInt64Array.of(BigInt(n)), [1]);
    let steps: ort.Tensor[] | undefined;
    let i = 0;
    for (const feeds of data.samples()) {
      if (ctx.signal?.aborted) throw new CancelledError();
      const run = (st: ort.Tensor[]) => s.session.run({ ...feeds, ...Object.fromEntries(stepInputs.map((n, k) => [n, st[k]])) }, fetch);
      // The first sample runs once more, picking one value per tensor, only to learn each tensor's size.
      if (!steps) {
        const probe = await run(names.map(() => stride(2 ** 31 - 1)));
        steps = names.map((_, k) => { const size = Number(probe[`quantlens_s_size_${k}`].data[0]); return stride(sampleStride(size, size / cap)); });
      }
      const out = await run(steps);
      names.forEach((name, k) => {
        const lo = out[`quantlens_s_min_${k}`], hi = out[`quantlens_s_max_${k}`], pick = out[`quantlens_s_pick_${k}`];
        const size = Number(out[`quantlens_s_size_${k}`].data[0]);
        const step = Number(steps![k].data[0]);
        // The next sample's stride, from this one's size (samples of one model rarely change shape).
        steps![k] = stride(sampleStride(size, size / cap));
        if (lo.type !== 'float32' || pick.type !== 'float32') return; // only float activations are calibrated
        onTensor(name, { min: Number(lo.data[0]), max: Number(hi.data[0]), size, values: pick.data as Float32Array, step });
      });
      i++;
      ctx.onProgress?.({ stage: 'calibration', fraction: i / data.count, message: `sample ${i}/${data.count}` });
    }
    return { provider: s.provider, ...(s.fallbackReason ? { fallbackReason: s.fallbackReason } : {}), samples: i, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    if (e instanceof CancelledError) throw e;
    return undefined;
  } finally {
    await s.release();
  }
}
