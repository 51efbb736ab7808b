import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import type { CalibrationData } from '../calib/data';
import { CancelledError } from '../errors';
import type { JobContext } from '../jobs';
import type { LoadedModel } from '../onnx/model-io';
import { onnx } from '../onnx/proto';
import { withExtraOutputs } from './expose-outputs';
import { createSession, type DevicePreference, type Provider } from './session';

/**
 * Runs the model on every sample with `names` exposed as extra outputs (on a copy) and hands each
 * sample's tensors to `onSample` before the next runs, so nothing accumulates but what the caller keeps.
 */
export async function captureTensors(
  loaded: LoadedModel, names: string[], data: CalibrationData, device: DevicePreference,
  onSample: (values: Record<string, ort.Tensor>, index: number, feeds: Record<string, ort.Tensor>) => void, ctx: JobContext = {},
): Promise<{ provider: Provider; fallbackReason?: string; samples: number; seconds: number }> {
  // Graph inputs cannot be fetched as outputs: callers read them from the feeds.
  const inputs = new Set((loaded.model.graph!.input ?? []).map((v) => v.name));
  const fetch = names.filter((n) => !inputs.has(n));
  const copy = withExtraOutputs(loaded.model, fetch);
  const bytes = onnx.ModelProto.encode(copy).finish();
  let tmp: string | undefined;
  let source: string | Uint8Array = bytes;
  if (loaded.externalFiles.length) {
    // onnxruntime resolves external data next to the model file: stage the copy in a temp folder with
    // links to the original data files (the user's folder is left alone).
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-capture-'));
    for (const f of loaded.externalFiles) {
      const rel = path.relative(loaded.loc.dir, f);
      fs.mkdirSync(path.dirname(path.join(tmp, rel)), { recursive: true });
      fs.symlinkSync(f, path.join(tmp, rel));
    }
    source = path.join(tmp, 'model.onnx');
    fs.writeFileSync(source, bytes);
  }
  const t0 = performance.now();
  const s = await createSession(source, { device, label: loaded.loc.file });
  try {
    let i = 0;
    for (const feeds of data.samples()) {
      if (ctx.signal?.aborted) throw new CancelledError();
      const out = fetch.length ? await s.session.run(feeds, fetch) : {};
      onSample(out, i++, feeds);
      ctx.onProgress?.({ stage: 'calibration', fraction: i / data.count, message: `sample ${i}/${data.count}` });
    }
    return { provider: s.provider, ...(s.fallbackReason ? { fallbackReason: s.fallbackReason } : {}), samples: i, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await s.session.release();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
}
