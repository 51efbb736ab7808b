import { densifySparseInitializers } from './densify-sparse';
import type { ModelEditor } from './editor';
import type { ModelLocation } from './external-data';
import { inlineLocalFunctions } from './inline-functions';

/**
 * The model as onnxruntime sees it once loaded, where that differs from the file in ways the passes care
 * about: calls of local functions inlined (their layers become nodes to quantize or prune) and sparse
 * initializers made dense (their weights become initializers). Returns a warning per change made.
 */
export function readAsLoaded(editor: ModelEditor, loc: ModelLocation): string[] {
  const warnings: string[] = [];
  const inlined = inlineLocalFunctions(editor);
  if (inlined) warnings.push(`${inlined} call${inlined === 1 ? '' : 's'} of the model's local functions inlined, as onnxruntime does at load, so the layers inside them are reached`);
  const densified = densifySparseInitializers(editor, loc);
  if (densified.length) warnings.push(`${densified.length} sparse initializer${densified.length === 1 ? '' : 's'} (${densified.slice(0, 3).join(', ')}${densified.length > 3 ? ', …' : ''}) read as dense weights, as onnxruntime loads them; written dense`);
  return warnings;
}
