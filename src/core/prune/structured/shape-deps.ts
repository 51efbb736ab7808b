import type { ModelEditor } from '../../onnx/editor';
import type { GraphView } from '../../onnx/graph';
import { int64Tensor, readTensor } from '../../onnx/tensor';
import { shapeSlot } from './apply';
import type { Relation } from './relations';
import { attrInt } from '../../onnx/attributes';

const PASS = new Set(['Unsqueeze', 'Squeeze', 'Cast', 'Identity', 'Div', 'Mul', 'Add', 'Sub', 'Floor', 'Ceil', 'Reshape']);

/**
 * Whether a computed shape piece reads the size of a pruned axis: Gather(Shape(t), i) where axis i of t
 * loses channels (or a whole Shape of such a t), through the arithmetic exporters wrap it in. `lostAxis`:
 * the axis of t that loses channels, if any.
 */
function readsPrunedSize(view: GraphView, name: string, shapes: Map<string, number[]>, lostAxis: (t: string) => number | undefined, depth = 0): boolean {
  const p = view.producer.get(name);
  if (!p || depth > 16 || view.stored(name)) return false;
  if (p.op_type === 'Gather') {
    const s = view.producer.get(p.input![0]);
    const idx = view.stored(p.input![1]);
    if (s?.op_type === 'Shape' && idx) {
      const t = s.input![0];
      const lost = lostAxis(t);
      const rank = shapes.get(t)?.length;
      if (lost === undefined || rank === undefined) return false;
      // Shape(t, start, end) holds dims[start:end]; the Gather's index counts within that.
      const norm = (v: number, n: number) => (v < 0 ? v + n : v);
      const start = norm(attrInt(s, 'start', 0), rank), end = norm(attrInt(s, 'end', rank), rank);
      return Array.from(readTensor(idx).data as BigInt64Array, Number).some((i) => start + norm(i, end - start) === lost);
    }
  }
  if (p.op_type === 'Shape') return lostAxis(p.input![0]) !== undefined;
  if (!PASS.has(p.op_type ?? '')) return false;
  return (p.input ?? []).some((x) => x && readsPrunedSize(view, x, shapes, lostAxis, depth + 1));
}

/**
 * Reshape/Expand targets built at run time may read the size of an axis that pruning shrinks, for an
 * entry that must keep its size (torch's `reshape(B, N, 3, heads, C // heads)` when the hidden size C
 * is pruned: the head size stays). Such entries become constants with the size the probe saw; the entry
 * that carries the pruned channels is written by its 'reshape' relation instead.
 */
export function freezeShapeEntries(editor: ModelEditor, view: GraphView, shapes: Map<string, number[]>, relations: Relation[], lostAxis: (t: string) => number | undefined): string[] {
  // Entries a relation rewrites because its channels shrink; one whose channels all stay is frozen here too.
  const owned = new Set(relations.filter((r): r is Extract<Relation, { kind: 'reshape' }> => r.kind === 'reshape' && lostAxis(r.tensor) !== undefined).map((r) => `${r.node.name}|${r.index}`));
  const frozen: string[] = [];
  for (const node of view.graph.node ?? []) {
    if (node.op_type !== 'Reshape' && node.op_type !== 'Expand') continue;
    const target = node.input?.[1];
    const out = shapes.get(node.output?.[0] ?? '');
    const len = target ? shapes.get(target)?.[0] : undefined;
    if (!target || !out || len === undefined || view.stored(target)) continue;
    for (let i = 0; i < len; i++) {
      if (owned.has(`${node.name}|${i}`)) continue;
      const slot = shapeSlot(view, node, i);
      if (!slot?.computed) continue;
      const piece = slot.owner.input![slot.input];
      if (!readsPrunedSize(view, piece, shapes, lostAxis)) continue;
      const size = out[i + out.length - len];
      slot.owner.input![slot.input] = editor.addInitializer(int64Tensor(`${node.name || 'shape'}.fixed_${i}`, [size]));
      frozen.push(`${node.name}[${i}]`);
    }
  }
  return frozen;
}

