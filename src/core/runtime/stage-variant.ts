import type { LoadedModel } from '../onnx/model-io';
import type { ModelProto } from '../onnx/proto';
import { stageVariant } from './staged-copy';
import { createSession, type DevicePreference, type ModelSession, type SessionOptions, type VariantSessionOptions } from './session';

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
