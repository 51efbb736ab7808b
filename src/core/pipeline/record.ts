// Calibration by generation: the float pipeline runs on the calibration images and prompts, and every
// component's inputs are recorded as they are in real use (the decoder's at prefill and at each step),
// as calibration folders (sample_N/<input>.pb) that single-model jobs read.
import fs from 'node:fs';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { CancelledError, QuantLensError } from '../base/errors';
import type { JobContext } from '../base/jobs';
import { DataType } from '../onnx/dtypes';
import { onnx } from '../onnx/proto';
import { makeTensor } from '../onnx/tensor';
import type { DevicePreference } from '../runtime/session';
import { generate, openPipeline, type GenerationSample } from './generate';
import type { ComponentRole, Pipeline } from './layout';

const ELEM: Partial<Record<ort.Tensor.Type, DataType>> = { float32: DataType.FLOAT, int64: DataType.INT64, int32: DataType.INT32, bool: DataType.BOOL, float16: DataType.FLOAT16 };

/** Writes one sample's feeds as sample_N/<input>.pb. */
export function writeSample(dir: string, i: number, feeds: Record<string, ort.Tensor>): void {
  const d = path.join(dir, `sample_${String(i).padStart(5, '0')}`);
  fs.mkdirSync(d, { recursive: true });
  for (const [name, t] of Object.entries(feeds)) {
    const dtype = ELEM[t.type];
    if (dtype === undefined) throw new QuantLensError(undefined, `cannot store a ${t.type} tensor ('${name}') as a calibration sample`);
    fs.writeFileSync(path.join(d, `${name}.pb`), onnx.TensorProto.encode(makeTensor(name, dtype, [...t.dims], t.data as Float32Array)).finish());
  }
}

export interface RecordedCalibration {
  /** A calibration folder per component that saw inputs (vision: images; decoder: every step). */
  dirs: Partial<Record<ComponentRole, string>>;
  /** A merged decoder's with-past steps without use_cache_branch: samples for its then-branch alone. */
  decoderWithPast?: string;
  decoderSteps: number;
}

export async function recordCalibration(p: Pipeline, samples: GenerationSample[], work: string, device: DevicePreference, ctx: JobContext = {}): Promise<RecordedCalibration> {
  const vision = path.join(work, 'vision'), decoder = path.join(work, 'decoder'), withPast = path.join(work, 'decoder-with-past');
  let steps = 0, pastSteps = 0, visionSamples = 0;
  const s = await openPipeline(p, device);
  try {
    for (const [i, sample] of samples.entries()) {
      if (ctx.signal?.aborted) throw new CancelledError();
      if (sample.pixels && s.sessions.vision) {
        writeSample(vision, i, { [s.sessions.vision.session.inputNames[0]]: sample.pixels });
        visionSamples++;
      }
      await generate(p, s, sample, p.maxNewTokens, (feeds) => {
        writeSample(decoder, steps++, feeds);
        const branch = feeds.use_cache_branch;
        if (branch && Number(branch.data[0])) {
          const { use_cache_branch: _b, ...rest } = feeds;
          writeSample(withPast, pastSteps++, rest);
        }
      });
      ctx.onProgress?.({ stage: 'generation', fraction: (i + 1) / samples.length, message: `sample ${i + 1}/${samples.length}` });
    }
  } finally {
    await s.release();
  }
  return { dirs: { ...(visionSamples ? { vision } : {}), ...(steps ? { decoder } : {}) }, ...(pastSteps ? { decoderWithPast: withPast } : {}), decoderSteps: steps };
}
