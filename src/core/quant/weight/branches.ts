// MatMuls inside If branches (Optimum's merged decoder: then = with past, else = first step) to INT4
// MatMulNBits. A weight both branches read is an outer-scope initializer: it is quantized once, from the
// activations of both branches (GPTQ: the Hessians of every reader summed), and stored once.
import type * as ort from 'onnxruntime-node';
import type { CalibrationData } from '../../calib/data';
import { CancelledError } from '../../base/errors';
import type { JobContext } from '../../base/jobs';
import { branchesOf, branchModel } from '../../onnx/if-branches';
import type { ModelEditor } from '../../onnx/editor';
import { GraphView } from '../../onnx/graph';
import type { LoadedModel } from '../../onnx/model-io';
import type { GraphProto, NodeProto } from '../../onnx/proto';
import { captureTensors } from '../../runtime/capture';
import { errorStats } from '../tensor-quant';
import { HessianAccumulator } from '../hessian';
import type { NodeDecision, QuantizeOptions } from '../options';
import type { QuantPolicy } from '../policy';
import { modulePathOf } from '../../onnx/module-path';
import { floatWeight, floatWeightDims } from '../weights';
import { gptqQuantize } from './gptq';
import { dequantizeBlocks, matMulNBitsNode, nbitsHow, nbitsInitializers, quantizeBlocksRtn } from './matmul-nbits';

interface Reader { node: NodeProto; graph: GraphProto; branch: string }

/** Whether the model has MatMuls in If branches that read an outer weight (what this pass handles). */
export function hasBranchMatMuls(graph: GraphProto): boolean {
  const view = new GraphView(graph);
  return branchesOf(graph).some((b) => (b.graph.node ?? []).some((n) => n.op_type === 'MatMul' && !!view.constant(n.input?.[1] ?? '')));
}

/**
 * Quantizes the MatMuls of top-level If branches to MatMulNBits (weight mode, 4 bits): one packed weight
 * per outer weight, whatever number of branch nodes read it. GPTQ's Hessians come from running each
 * branch (as a model of its own) on the calibration samples whose condition selects it.
 */
export async function quantizeBranchMatMuls(editor: ModelEditor, loaded: LoadedModel, options: QuantizeOptions, policy: QuantPolicy, data: CalibrationData | undefined, ctx: JobContext = {}): Promise<{ decisions: NodeDecision[]; warnings: string[] }> {
  const graph = editor.graph;
  const view = new GraphView(graph);
  const decisions: NodeDecision[] = [];
  const warnings: string[] = [];
  const branches = branchesOf(graph);
  const all = new Map<string, Reader[]>();
  for (const b of branches) {
    for (const node of b.graph.node ?? []) {
      if (node.op_type !== 'MatMul' || (node.domain ?? '') !== '' || !floatWeightDims(view, node.input?.[1] ?? '', loaded.loc, true)) continue; // activation × activation (attention scores)
      all.set(node.input![1], [...(all.get(node.input![1]) ?? []), { node, graph: b.graph, branch: b.name }]);
    }
  }
  // One decision per weight (its first reader's module path and the policy there), for all its readers.
  const readers = new Map<string, Reader[]>();
  const optionsOf = new Map<string, QuantizeOptions>();
  for (const [w, rs] of all) {
    const path = modulePathOf(rs[0].node, w);
    const skip = (why: string) => rs.forEach((r) => decisions.push({ node: r.node.name ?? '', opType: 'MatMul', modulePath: path, skipped: `${why} (in ${r.branch})` }));
    if (floatWeightDims(view, w, loaded.loc, true)!.length !== 2) { skip('MatMulNBits needs a 2-D weight'); continue; }
    const r = policy.resolve(path, rs[0].node.name ?? '');
    if ('keep' in r) { skip(r.keep); continue; }
    // Other modes and 8 bits: the planner's (prepareQuantization quantizes or skips them with the top level).
    if (r.options.mode !== 'weight' || r.options.bits !== 4) continue;
    readers.set(w, rs);
    optionsOf.set(w, r.options);
  }
  if (!readers.size) return { decisions, warnings };
  const gptq = [...optionsOf.values()].some((o) => o.algorithm === 'gptq');
  const hessians = new Map<string, HessianAccumulator>();
  if (gptq && !data) warnings.push('GPTQ inside If branches needs calibration data: RTN used there');
  if (gptq && data) {
    for (const b of branches) {
      const mine = [...readers].flatMap(([w, rs]) => rs.filter((r) => r.graph === b.graph).map((r) => ({ w, r })));
      if (!mine.length) continue;
      const inputs = (loaded.model.graph!.input ?? []).map((v) => v.name ?? '');
      if (!inputs.includes(b.cond)) { warnings.push(`${b.name}: its condition '${b.cond}' is computed, not fed: RTN used there`); continue; }
      // Only the samples that take this branch.
      const samples = { ...data, *samples() { for (const f of data.samples()) if (Boolean(Number((f[b.cond] as ort.Tensor | undefined)?.data[0] ?? 0)) === b.when) yield f; } };
      const model = branchModel(loaded.model, b.graph);
      const sub: LoadedModel = { ...loaded, model };
      const byInput = new Map<string, string[]>();
      for (const { w, r } of mine) byInput.set(r.node.input![0], [...(byInput.get(r.node.input![0]) ?? []), w]);
      try {
        await captureTensors(sub, [...byInput.keys()], samples, options.device, (values, _i, feeds) => {
          for (const [name, ws] of byInput) {
            const t = values[name] ?? feeds[name];
            for (const w of ws) {
              const K = floatWeightDims(view, w, loaded.loc, true)![0];
              let h = hessians.get(w);
              if (!h) hessians.set(w, (h = new HessianAccumulator(K)));
              h.add(t);
            }
          }
        }, ctx);
      } catch (e) {
        if (e instanceof CancelledError) throw e;
        warnings.push(`${b.name}: its activations could not be captured (${e instanceof Error ? e.message.split('\n')[0] : e}): RTN used there`);
      }
    }
  }
  for (const [w, rs] of readers) {
    if (ctx.signal?.aborted) throw new CancelledError();
    const o = optionsOf.get(w)!;
    const fw = floatWeight(view, w, loaded.loc, true)!;
    const [K, N] = fw.dims;
    const h = o.algorithm === 'gptq' ? hessians.get(w) : undefined;
    const algorithm = h ? 'gptq' : 'rtn';
    const bq = h ? gptqQuantize(fw.data, K, N, h.result(), { blockSize: o.blockSize, symmetric: o.symmetric, damp: o.gptqDamp, actOrder: o.gptqActOrder }) : quantizeBlocksRtn(fw.data, K, N, o.blockSize, o.symmetric);
    const sqnr = errorStats(fw.data, dequantizeBlocks(bq)).sqnr;
    const base = w.startsWith('onnx::') ? `${modulePathOf(rs[0].node, w) || rs[0].node.name}.weight` : w;
    const packed = nbitsInitializers(editor, base, bq, fw.dtype);
    for (const [k, r] of rs.entries()) {
      const list = r.graph.node ?? [];
      r.graph.node = list.map((n) => (n === r.node ? matMulNBitsNode(r.node, packed.inputs, bq) : n));
      const shared = rs.length > 1 ? `; one weight for ${rs.length} readers (${[...new Set(rs.map((x) => x.branch))].join(', ')})` : '';
      decisions.push({
        node: r.node.name ?? '', opType: 'MatMul', modulePath: modulePathOf(r.node, w), how: `${nbitsHow(bq, algorithm)} in ${r.branch}${shared}`,
        // The packed weight is stored once: the first reader carries its bytes.
        weightBytesBefore: k === 0 ? packed.bytesBefore : 0, weightBytesAfter: k === 0 ? packed.bytesAfter : 0, weightSqnr: sqnr,
      });
    }
  }
  return { decisions, warnings };
}
