import { QuantLensError } from '../base/errors';
import { dataTypeInfo, dataTypeName } from './dtypes';
import type { ModelEditor } from './editor';
import type { ModelLocation } from './external-data';
import { makeTensor, readTensor } from './tensor';

/**
 * Turns the main graph's sparse initializers (a pruned model saved with only its non-zeros) into dense
 * ones of the same name, as onnxruntime does when it loads them: the passes look for a weight among the
 * initializers. Indices are linear ([NNZ]) or coordinates ([NNZ, rank]). Returns the names densified.
 */
export function densifySparseInitializers(editor: ModelEditor, loc: ModelLocation): string[] {
  const g = editor.graph;
  const done: string[] = [];
  for (const s of g.sparse_initializer ?? []) {
    const name = s.values?.name ?? '';
    const dims = (s.dims ?? []).map(Number);
    const values = readTensor(s.values!, loc);
    const Array_ = dataTypeInfo(values.dtype)?.array;
    if (!Array_ || Array.isArray(values.data)) throw new QuantLensError(loc.file, `sparse initializer '${name}' holds ${dataTypeName(values.dtype)} values, which QuantLens cannot make dense`);
    const indices = readTensor(s.indices!, loc);
    const at = Array.from(indices.data as ArrayLike<number | bigint>, Number);
    const n = dims.reduce((a, b) => a * b, 1);
    const dense = new Array_(n);
    const nnz = values.data.length;
    const linear = indices.dims.length === 1;
    for (let k = 0; k < nnz; k++) {
      let i = 0;
      if (linear) i = at[k];
      else for (let d = 0; d < dims.length; d++) i = i * dims[d] + at[k * dims.length + d];
      if (!(i >= 0 && i < n)) throw new QuantLensError(loc.file, `sparse initializer '${name}' has index ${i} outside its shape [${dims}]`);
      dense[i] = values.data[k] as never;
    }
    g.initializer = [...(g.initializer ?? []), makeTensor(name, values.dtype, dims, dense)];
    done.push(name);
  }
  if (done.length) g.sparse_initializer = [];
  return done;
}
