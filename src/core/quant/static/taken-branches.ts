// Static INT8 for layers inside If branches (Silero VAD: every layer is in one branch per sample rate).
// Which branch a sample takes is read from its If's condition (a graph input, or computed: the nodes that
// compute it are run alone); the one most calibration samples take is inlined into the main graph for
// the static pipeline, calibrated on those samples, and put back afterwards (see inline-branches.ts).
import type * as ort from 'onnxruntime-node';
import type { CalibrationData } from '../../calib/data';
import type { JobContext } from '../../base/jobs';
import { attrGraph, attrInt } from '../../onnx/attributes';
import type { ModelEditor } from '../../onnx/editor';
import { inlineBranch, otherBranch, restoreBranch, type InlinedBranch } from '../../onnx/inline-branches';
import type { LoadedModel } from '../../onnx/model-io';
import { onnx, type GraphProto, type ModelProto, type NodeProto } from '../../onnx/proto';
import { captureTensors } from '../../runtime/capture';
import type { DevicePreference } from '../../runtime/session';
import { capturedValues, nodesComputing, walkGraphs } from '../../onnx/walk';
import { DataType } from '../../onnx/dtypes';
import { GraphView } from '../../onnx/graph';
import { readTensor, toFloat32 } from '../../onnx/tensor';
import { expandedWeightNodes } from '../expanded-weight';

/** Nested Ifs inlined in turn (a branch's If becomes top-level once its branch is in): at most this deep. */
const MAX_DEPTH = 4;

const isIf = (n: NodeProto) => n.op_type === 'If' && (n.domain ?? '') === '';

/** Whether a branch holds a layer `isLayer` takes (in it, or in an If nested in it; Loop/Scan bodies repeat, so not there). */
function holdsLayer(g: GraphProto | undefined, isLayer: (n: NodeProto) => boolean): boolean {
  if (!g) return false;
  return (g.node ?? []).some((n) => isLayer(n) || (isIf(n) && ['then_branch', 'else_branch'].some((b) => holdsLayer(attrGraph(n, b), isLayer))));
}

/** The top-level Ifs with a layer in a branch. */
export function layerIfs(graph: GraphProto, isLayer: (n: NodeProto) => boolean): NodeProto[] {
  return (graph.node ?? []).filter((n) => isIf(n) && ['then_branch', 'else_branch'].some((b) => holdsLayer(attrGraph(n, b), isLayer)));
}

/** The model cut down to what computes `names` (no outputs of its own: the caller fetches them). */
function computing(model: ModelProto, names: string[]): ModelProto {
  const graph = model.graph!;
  const keep = nodesComputing(graph, names);
  const node = (graph.node ?? []).filter((n) => keep.has(n));
  const read = new Set(node.flatMap((n) => [...(n.input ?? []), ...capturedValues(n)]));
  return onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, node, output: [], initializer: (graph.initializer ?? []).filter((t) => read.has(t.name ?? '')) }) });
}

/** `data` cut to the samples at `keep` (indices in its own order). */
export function samplesAt(data: CalibrationData, keep: readonly number[]): CalibrationData {
  const set = new Set(keep);
  return { ...data, count: keep.filter((i) => i < data.count).length, *samples() { let i = 0; for (const f of data.samples()) if (set.has(i++)) yield f; } };
}

export interface TakenBranches {
  inlined: InlinedBranch[];
  warnings: string[];
  /** When some samples take another branch: the indices (in `data`'s order) of those that take every inlined one, the only ones the inlined model computes right. */
  samples?: number[];
}

/**
 * Inlines, round by round, the branch of each top-level If with a layer that most samples of `data`
 * take (every one, ideally); the samples that take the other are left out of calibration from then on, and
 * said in a warning. Returns what `restoreTakenBranches` needs, in the order inlined.
 */
export async function inlineTakenBranches(editor: ModelEditor, loaded: LoadedModel, data: CalibrationData, device: DevicePreference, isLayer: (n: NodeProto) => boolean, ctx: JobContext = {}): Promise<TakenBranches> {
  const inlined: InlinedBranch[] = [];
  const warnings: string[] = [];
  const skip = new Set<NodeProto>();
  let kept: number[] | undefined;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const ifs = layerIfs(editor.graph, isLayer).filter((n) => !skip.has(n));
    if (!ifs.length) break;
    const current = kept ? samplesAt(data, kept) : data;
    const conds = [...new Set(ifs.map((n) => n.input?.[0] ?? ''))];
    // Per condition, its value in each sample of `current`.
    const seen = new Map<string, boolean[]>(conds.map((c) => [c, []]));
    const note = (values: Record<string, ort.Tensor>, k: number) => {
      for (const c of conds) if (values[c]) seen.get(c)![k] = Boolean(Number(values[c].data[0]));
    };
    // Conditions fed as inputs are read from the samples; computed ones from a run of what computes them.
    const inputs = new Set((editor.graph.input ?? []).map((v) => v.name ?? ''));
    let count = 0;
    if (conds.every((c) => inputs.has(c))) for (const feeds of current.samples()) note(feeds, count++);
    else count = (await captureTensors(loaded, conds, current, device, (values, k, feeds) => note({ ...feeds, ...values }, k), { ...ctx, onProgress: undefined }, computing(loaded.model, conds))).samples;
    let alive = Array.from({ length: count }, (_, k) => k);
    for (const n of ifs) {
      const v = seen.get(n.input![0])!;
      const [yes, no] = [alive.filter((k) => v[k] === true), alive.filter((k) => v[k] === false)];
      if (!yes.length && !no.length) {
        skip.add(n);
        warnings.push(`If '${n.name}': no calibration sample reached it, so the layers inside stay float`);
        continue;
      }
      const branch = yes.length >= no.length ? 'then_branch' : 'else_branch';
      const rec = inlineBranch(editor, n, branch);
      if (!rec) { skip.add(n); continue; }
      inlined.push(rec);
      const [mine, others] = branch === 'then_branch' ? [yes, no] : [no, yes];
      alive = mine;
      const layers = [...walkGraphs(attrGraph(n, branch)!)].reduce((a, { graph }) => a + (graph.node ?? []).filter(isLayer).length, 0);
      const otherLayers = holdsLayer(attrGraph(n, otherBranch(branch)), isLayer);
      const which = others.length ? `${mine.length} of its ${mine.length + others.length} calibration samples take its ${branch.replace('_', ' ')} (the rest are left out of calibration)` : `every calibration sample takes its ${branch.replace('_', ' ')}`;
      warnings.push(`If '${n.name}': ${which}, so its ${layers} layer${layers === 1 ? '' : 's'} ${layers === 1 ? 'is' : 'are'} calibrated and quantized inside it${otherLayers ? '; the layers of the other branch stay float (calibrate with samples that take it to quantize those)' : ''}`);
    }
    if (alive.length < count) kept = alive.map((k) => (kept ? kept[k] : k));
  }
  return { inlined, warnings, ...(kept ? { samples: kept } : {}) };
}

/**
 * Puts every inlined branch back into its If, the last inlined first (a nested If goes back into its
 * branch before that branch goes back). A float weight the other branch shares with the quantized one
 * (a merged decoder's branches share every weight) is not kept float beside its int8 copy: the other
 * branch reads it expanded from that copy (Cast and Mul in the main graph, folded by onnxruntime when it
 * loads the model), so the file stores it once, as int8. `dequantized`: float weight → the output of
 * its int8 copy's DequantizeLinear. Returns the warnings to report.
 */
export function restoreTakenBranches(editor: ModelEditor, inlined: readonly InlinedBranch[], dequantized: ReadonlyMap<string, string>): string[] {
  const warnings: string[] = [];
  for (const rec of [...inlined].reverse()) {
    const shared = expandSharedWeights(editor, rec, dequantized);
    restoreBranch(editor, rec);
    if (shared) warnings.push(`If '${rec.node.name}': its ${otherBranch(rec.branch).replace('_', ' ')} reads the ${shared} weight${shared === 1 ? '' : 's'} it shares with the quantized one from their int8 copies, expanded to float when onnxruntime loads the model (stored once; that branch was not calibrated, so it computes in float)`);
  }
  return warnings;
}

/**
 * The other branch's float weights that quantization replaced in the taken one, made again from their
 * int8 copies by Cast and Mul (symmetric int8: no zero point) under their own names. Returns how many.
 */
function expandSharedWeights(editor: ModelEditor, rec: InlinedBranch, dequantized: ReadonlyMap<string, string>): number {
  const graph = editor.graph;
  const present = new Set([...(graph.initializer ?? []).map((t) => t.name ?? ''), ...(graph.node ?? []).flatMap((n) => n.output ?? [])]);
  const dqOf = new Map((graph.node ?? []).filter((n) => n.op_type === 'DequantizeLinear').map((n) => [n.output?.[0] ?? '', n]));
  const view = new GraphView(graph);
  const added: NodeProto[] = [];
  let count = 0;
  for (const t of rec.otherConstants.initializers) {
    const name = t.name ?? '';
    const dq = dqOf.get(dequantized.get(name) ?? '');
    if (present.has(name) || !dq || (t.data_type !== DataType.FLOAT && t.data_type !== DataType.FLOAT16)) continue;
    const [q, s, z] = [0, 1, 2].map((k) => view.constant(dq.input?.[k] ?? ''));
    const zeros = z ? toFloat32(readTensor(z)) : new Float32Array(1);
    if (!q || !s) continue;
    const scales = toFloat32(readTensor(s));
    const dims = (q.dims ?? []).map(Number);
    const axis = scales.length > 1 ? (attrInt(dq, 'axis', 1) + dims.length) % dims.length : undefined;
    added.push(...expandedWeightNodes(editor, name, q.name ?? '', dims, axis, scales, zeros, t.data_type, name));
    count++;
    // The int8 copy stays in the main graph for both branches (its scales go into the quantized one).
    rec.otherReads.add(q.name ?? '');
  }
  graph.node = [...added, ...(graph.node ?? [])];
  return count;
}
