import { loadModel } from '../onnx/model-io';
import { stageVariant } from './staged-copy';

/**
 * What onnxruntime should load in place of a model file stamped with an opset it cannot run (below 7):
 * the model as QuantLens reads it, raised to opset 7 in memory (upgradeLegacyOpset), as bytes or a staged
 * file beside it. Undefined for any other file, or one that does not load: the caller reports its own error.
 * `cleanup` removes a staged file once onnxruntime has read it.
 */
export function legacySource(file: string): { source: string | Uint8Array; cleanup: () => void } | undefined {
  let loaded;
  try {
    loaded = loadModel(file);
  } catch {
    return undefined;
  }
  if (!loaded.legacyOpset) return undefined;
  const staged = stageVariant(loaded.model, loaded);
  return { source: staged.source, cleanup: staged.cleanup };
}
