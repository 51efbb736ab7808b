import type { ModelEditor } from '../../onnx/editor';
import type { ModelLocation } from '../../onnx/external-data';
import { DataType } from '../../onnx/dtypes';
import type { GraphView } from '../../onnx/graph';
import type { NodeProto } from '../../onnx/proto';
import { readTensor, toFloat32 } from '../../onnx/tensor';
import { kernelSize, matrixIndex, writeFloatTensor, type PrunableLayer } from '../layers';
import { attrFloat, attrInts } from '../../onnx/attributes';

/**
 * Bias compensation. A removed input channel still carried its mean into every output of the layer that
 * read it; a channel whose weights are small but whose bias is not (BatchNorm folded into a conv) is close
 * to a constant after its activation, and dropping it shifts every output. Folding
 * Σ_c mean_c · Σ_k W[o, c, k] into that layer's bias keeps the mean output where it was.
 *
 * `biasShift` computes the shift from the weights before slicing; `applyShift` adds it once the graph is pruned.
 */
export function biasShift(l: PrunableLayer, w: Float32Array, drop: Set<number>, means: Float64Array): Float64Array {
  const at = matrixIndex(l);
  const k = kernelSize(l);
  // A transposed conv spreads each input over its kernel: every output sees 1 / Π strides of the taps.
  const strides = l.opType === 'ConvTranspose' ? (attrInts(l.node, 'strides') ?? []) : [];
  const scale = 1 / strides.reduce((a, b) => a * b, 1);
  const shift = new Float64Array(l.outputs);
  for (const c of drop) {
    const m = means[c] * scale;
    if (!m) continue;
    for (let o = 0; o < l.outputs; o++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += w[at(o, c * k + j)];
      shift[o] += m * s;
    }
  }
  return shift;
}

/** Where the layer's bias is: its own third input, or the stored operand of the Add right after a MatMul. */
function biasSlot(view: GraphView, node: NodeProto, outputs: number): { node: NodeProto; input: number } | undefined {
  if (node.op_type !== 'MatMul') return { node, input: 2 };
  const readers = view.consumersOf(node.output![0]);
  const add = readers.length === 1 && readers[0].op_type === 'Add' ? readers[0] : undefined;
  const i = add ? add.input!.findIndex((x, j) => j < 2 && x !== node.output![0] && !!view.stored(x)) : -1;
  if (!add || i < 0) return undefined;
  const dims = (view.stored(add.input![i])!.dims ?? []).map(Number);
  return dims.reduce((a, b) => a * b, 1) === outputs && dims[dims.length - 1] === outputs ? { node: add, input: i } : undefined;
}

/**
 * A MatMul without a bias (Llama-style Linear(bias=False)): an Add of the shift goes right after it, and
 * its readers read that. Float32 outputs only; false when the shift is negligible or the output is a
 * model output (whose name must stay).
 */
function addBias(editor: ModelEditor, view: GraphView, l: PrunableLayer, shift: Float64Array, kept: number[] | undefined): boolean {
  const out = l.node.output![0];
  const values = Float32Array.from(kept ?? shift.map((_, i) => i), (o) => shift[o]);
  const t = view.stored(l.weight);
  if (t?.data_type !== DataType.FLOAT || view.graph.output?.some((o) => o.name === out) || values.every((v) => Math.abs(v) < 1e-12)) return false;
  const bias = editor.addInitializer({ name: `${l.weight}.compensation`, data_type: DataType.FLOAT, dims: [values.length], raw_data: new Uint8Array(values.buffer) });
  const shifted = editor.unique(`${out}_compensated`);
  for (const c of view.consumersOf(out)) c.input = (c.input ?? []).map((x) => (x === out ? shifted : x));
  const next = (view.graph.node ?? [])[(view.graph.node ?? []).indexOf(l.node) + 1];
  editor.insertBefore(next, [{ name: `${l.node.name || out}_compensation`, op_type: 'Add', input: [out, bias], output: [shifted] }]);
  return true;
}

/**
 * Adds `shift` (over the layer's kept outputs, `kept`) to its bias, as a new initializer so that a shared
 * one stays intact; a Conv or Gemm without a bias gets one, a MatMul without one an Add after it.
 */
export function applyShift(editor: ModelEditor, view: GraphView, loc: ModelLocation, l: PrunableLayer, shift: Float64Array, kept: number[] | undefined): boolean {
  const outputs = kept?.length ?? shift.length;
  const slot = biasSlot(view, l.node, outputs);
  if (!slot) return addBias(editor, view, l, shift, kept);
  const name = slot.node.input?.[slot.input];
  const t = name ? view.stored(name) : undefined;
  const old = t ? toFloat32(readTensor(t, loc)) : new Float32Array(1);
  if (old.length !== 1 && old.length !== outputs) return false;
  // Gemm scales its C by beta.
  const beta = slot.node.op_type === 'Gemm' ? Number(attrFloat(slot.node, 'beta', 1)) : 1;
  if (!beta) return false;
  const values = new Float32Array(outputs);
  for (let o = 0; o < outputs; o++) values[o] = old[old.length === 1 ? 0 : o] + shift[kept ? kept[o] : o] / beta;
  const dims = t && old.length === outputs ? (t.dims ?? []).map(Number) : [outputs];
  const fresh = { name: `${name || l.weight}.compensated`, data_type: t?.data_type ?? DataType.FLOAT, dims };
  writeFloatTensor(fresh, values, dims);
  const input = slot.node.input ?? (slot.node.input = []);
  while (input.length < slot.input) input.push('');
  input[slot.input] = editor.addInitializer(fresh);
  return true;
}
