import { intAttr } from './attributes';
import { DataType } from './dtypes';
import type { ModelEditor } from './editor';
import { floatToHalf, halfToFloat } from './half';
import type { NodeProto } from './proto';
import { makeTensor } from './tensor';

/** Adds `values` as a float16 initializer and a Cast to float32 before `anchor`; the Cast's output name. */
export function widenedHalf(editor: ModelEditor, name: string, dims: number[], values: Uint16Array, anchor: NodeProto): string {
  const half = editor.addInitializer(makeTensor(`${name}_float16`, DataType.FLOAT16, dims, values));
  const out = editor.unique(`${name}_widened`);
  editor.insertBefore(anchor, [{ name: `${name}_Cast`, op_type: 'Cast', input: [half], output: [out], attribute: [intAttr('to', DataType.FLOAT)] }]);
  return out;
}

/**
 * Float32 initializers `names` that were float16 in the file (widened by a Cast there, folded: see
 * foldWeightOps) and that float nodes still read: float16 again behind a Cast, as the export stored them,
 * where that is exact (a pruned or sliced weight is; a refitted one keeps float32). A layer left float no
 * longer doubles its bytes (a float16-stored MobileNet-V2 in dynamic mode, every conv kept float for speed:
 * 6.66 MiB in, 9.63 MiB out).
 */
export function restoreHalfStorage(editor: ModelEditor, names: ReadonlySet<string>): number {
  const g = editor.graph;
  const readers = new Map<string, NodeProto[]>();
  for (const n of g.node ?? []) for (const i of n.input ?? []) if (names.has(i)) (readers.get(i) ?? readers.set(i, []).get(i)!).push(n);
  let restored = 0;
  for (const t of [...(g.initializer ?? [])]) {
    const name = t.name ?? '';
    const by = readers.get(name);
    if (!by?.length || t.data_type !== DataType.FLOAT || !t.raw_data?.length || t.external_data?.length) continue;
    const f = new Float32Array(t.raw_data.buffer.slice(t.raw_data.byteOffset, t.raw_data.byteOffset + t.raw_data.byteLength));
    const h = Uint16Array.from(f, floatToHalf);
    if (!h.every((x, i) => halfToFloat(x) === f[i])) continue;
    const out = widenedHalf(editor, name, (t.dims ?? []).map(Number), h, by[0]);
    for (const n of by) n.input = n.input!.map((i) => (i === name ? out : i));
    restored++;
  }
  if (restored) editor.dropUnusedConstants();
  return restored;
}
