// Static INT8 for layers inside If branches (Silero VAD: every layer is in one branch per sample rate).
// Which branch a sample takes is read from its If's condition (a graph input, or computed: the nodes that
// compute it are run alone); when every calibration sample takes the same one, it is inlined into the
// main graph for the static pipeline and put back afterwards (see inline-branches.ts).
import type * as ort from 'onnxruntime-node';
import type { CalibrationData } from '../../calib/data';
import type { JobContext } from '../../base/jobs';
import { attrGraph } from '../../onnx/attributes';
import type { ModelEditor } from '../../onnx/editor';
import { inlineBranch, restoreBranch, type InlinedBranch } from '../../onnx/inline-branches';
import type { LoadedModel } from '../../onnx/model-io';
import { onnx, type GraphProto, type ModelProto, type NodeProto } from '../../onnx/proto';
import { captureTensors } from '../../runtime/capture';
import type { DevicePreference } from '../../runtime/session';
import { capturedValues, walkGraphs } from '../../onnx/walk';

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
  const producer = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) for (const o of n.output ?? []) producer.set(o, n);
  const keep = new Set<NodeProto>();
  const todo = [...names];
  while (todo.length) {
    const p = producer.get(todo.pop()!);
    if (!p || keep.has(p)) continue;
    keep.add(p);
    todo.push(...(p.input ?? []), ...capturedValues(p));
  }
  const node = (graph.node ?? []).filter((n) => keep.has(n));
  const read = new Set(node.flatMap((n) => [...(n.input ?? []), ...capturedValues(n)]));
  return onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, node, output: [], initializer: (graph.initializer ?? []).filter((t) => read.has(t.name ?? '')) }) });
}

/**
 * Inlines, round by round, the branch of each top-level If with a layer that every sample of `data`
 * takes; an If whose samples go both ways stays (its layers float, said in a warning). Returns what
 * `restoreTakenBranches` needs, in the order inlined.
 */
export async function inlineTakenBranches(editor: ModelEditor, loaded: LoadedModel, data: CalibrationData, device: DevicePreference, isLayer: (n: NodeProto) => boolean, ctx: JobContext = {}): Promise<{ inlined: InlinedBranch[]; warnings: string[] }> {
  const inlined: InlinedBranch[] = [];
  const warnings: string[] = [];
  const split = new Set<NodeProto>();
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const ifs = layerIfs(editor.graph, isLayer).filter((n) => !split.has(n));
    if (!ifs.length) break;
    const conds = [...new Set(ifs.map((n) => n.input?.[0] ?? ''))];
    const seen = new Map<string, Set<boolean>>(conds.map((c) => [c, new Set()]));
    const note = (values: Record<string, ort.Tensor>) => {
      for (const c of conds) if (values[c]) seen.get(c)!.add(Boolean(Number(values[c].data[0])));
    };
    // Conditions fed as inputs are read from the samples; computed ones from a run of what computes them.
    const inputs = new Set((editor.graph.input ?? []).map((v) => v.name ?? ''));
    if (conds.every((c) => inputs.has(c))) for (const feeds of data.samples()) note(feeds);
    else await captureTensors(loaded, conds, data, device, (values, _i, feeds) => note({ ...feeds, ...values }), { ...ctx, onProgress: undefined }, computing(loaded.model, conds));
    for (const n of ifs) {
      const took = [...seen.get(n.input![0])!];
      if (took.length !== 1) {
        split.add(n);
        warnings.push(`If '${n.name}': ${took.length ? 'the calibration samples take both of its branches' : 'no calibration sample reached it'}, so the layers inside stay float (static INT8 calibrates the branch every sample takes)`);
        continue;
      }
      const branch = took[0] ? 'then_branch' : 'else_branch';
      const rec = inlineBranch(editor, n, branch);
      if (!rec) { split.add(n); continue; }
      inlined.push(rec);
      const layers = [...walkGraphs(attrGraph(n, branch)!)].reduce((a, { graph }) => a + (graph.node ?? []).filter(isLayer).length, 0);
      const otherLayers = holdsLayer(attrGraph(n, branch === 'then_branch' ? 'else_branch' : 'then_branch'), isLayer);
      warnings.push(`If '${n.name}': every calibration sample takes its ${branch.replace('_', ' ')}, so its ${layers} layer${layers === 1 ? '' : 's'} ${layers === 1 ? 'is' : 'are'} calibrated and quantized inside it${otherLayers ? `; the layers of the other branch stay float (calibrate with samples that take it to quantize those)` : ''}`);
    }
  }
  return { inlined, warnings };
}

/** Puts every inlined branch back into its If, the last inlined first (a nested If goes back into its branch before that branch goes back). */
export function restoreTakenBranches(editor: ModelEditor, inlined: readonly InlinedBranch[]): void {
  for (const rec of [...inlined].reverse()) restoreBranch(editor, rec);
}
