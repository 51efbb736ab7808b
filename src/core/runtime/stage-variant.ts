import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LoadedModel } from '../onnx/model-io';
import { onnx, type ModelProto } from '../onnx/proto';
import { createSession, type DevicePreference, type ModelSession, type SessionOptions, type VariantSessionOptions } from './session';

let variantCount = 0;

/**
 * What onnxruntime should load for an edited copy of a loaded model: its bytes; or, for a model with
 * external data, a file that resolves the data files inside its own folder, since onnxruntime refuses
 * external paths that leave the model's directory (symlinks included). First choice: a hidden temp file
 * beside the original model (removed after use); where that folder is read-only, a temp folder with hard
 * links to the data files, or copies when the temp folder is on another device.
 */
export function stageVariant(model: ModelProto, loaded: LoadedModel): { source: string | Uint8Array; sizeBytes: number; cleanup: () => void } {
  const bytes = onnx.ModelProto.encode(model).finish();
  if (!loaded.externalFiles.length) return { source: bytes, sizeBytes: bytes.length, cleanup: () => {} };
  const beside = path.join(loaded.loc.dir, `.quantlens-variant-${process.pid}-${variantCount++}.onnx`);
  try {
    fs.writeFileSync(beside, bytes, { flag: 'wx' });
    return { source: beside, sizeBytes: bytes.length, cleanup: () => fs.rmSync(beside, { force: true }) };
  } catch {
    fs.rmSync(beside, { force: true });
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-variant-'));
  try {
    for (const f of loaded.externalFiles) {
      const dest = path.join(tmp, path.relative(loaded.loc.dir, f));
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      try {
        fs.linkSync(f, dest);
      } catch {
        fs.copyFileSync(f, dest);
      }
    }
    const source = path.join(tmp, 'model.onnx');
    fs.writeFileSync(source, bytes);
    return { source, sizeBytes: bytes.length, cleanup: () => fs.rmSync(tmp, { recursive: true, force: true }) };
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** An onnxruntime session for an edited copy of a loaded model, staged by stageVariant. */
export async function sessionForVariant(
  model: ModelProto, loaded: LoadedModel, device: DevicePreference, optimization?: SessionOptions['optimization'], memory: VariantSessionOptions = {},
): Promise<ModelSession & { release: () => Promise<void>; sizeBytes: number }> {
  const staged = stageVariant(model, loaded);
  try {
    // External-data models (the large ones): weights stay memory-mapped page cache, not prepacked copies.
    const s = await createSession(staged.source, { device, label: loaded.loc.file, optimization, ...memory, ...(loaded.externalFiles.length ? { mappedWeights: true } : {}) });
    // onnxruntime holds its own copy now: the closure keeps only the clean-up, not the encoded model.
    const { cleanup, sizeBytes } = staged;
    return { ...s, sizeBytes, release: async () => { await s.session.release(); cleanup(); } };
  } catch (e) {
    staged.cleanup();
    throw e;
  }
}
