import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LoadedModel } from '../onnx/model-io';
import { onnx, type ModelProto } from '../onnx/proto';

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
