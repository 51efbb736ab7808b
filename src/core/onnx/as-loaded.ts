import { densifySparseInitializers } from './densify-sparse';
import type { ModelEditor } from './editor';
import type { ModelLocation } from './external-data';
import { inlineLocalFunctions } from './inline-functions';
import type { LoadedModel } from './model-io';

/**
 * The model as onnxruntime sees it once loaded, where that differs from the file in ways the passes care
 * about: calls of local functions inlined (their layers become nodes to quantize or prune) and sparse
 * initializers made dense (their weights become initializers). Returns a warning per change made, and for
 * a file loadModel read at opset 7 (`legacy`).
 */
export function readAsLoaded(editor: ModelEditor, loc: ModelLocation, legacy?: LoadedModel['legacyOpset']): string[] {
  const warnings: string[] = [];
  if (legacy) warnings.push(`opset ${legacy.from} model read as opset 7, the oldest onnxruntime runs (${legacy.rewritten} node${legacy.rewritten === 1 ? '' : 's'} rewritten in their opset-7 form): the output is opset 7 or later`);
  const inlined = inlineLocalFunctions(editor);
  if (inlined) warnings.push(`${inlined} call${inlined === 1 ? '' : 's'} of the model's local functions inlined, as onnxruntime does at load, so the layers inside them are reached`);
  const densified = densifySparseInitializers(editor, loc);
  if (densified.length) warnings.push(`${densified.length} sparse initializer${densified.length === 1 ? '' : 's'} (${densified.slice(0, 3).join(', ')}${densified.length > 3 ? ', …' : ''}) read as dense weights, as onnxruntime loads them; written dense`);
  return warnings;
}
