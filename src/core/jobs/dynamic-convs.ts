import type { CalibrationData } from '../calib/data';
import type { JobContext } from '../base/jobs';
import { attrInt } from '../onnx/attributes';
import type { NodeDecision } from '../quant/options';
import { applyQuantization, modulePathOfNode, type PreparedQuantization } from '../quant/prepare';
import { GraphView } from '../onnx/graph';
import { walkNodes } from '../onnx/walk';
import { pairedComparator, timeVariants } from './timed-variants';

/** Which convs a dynamic INT8 model quantizes: all, all but the grouped (depthwise) ones, or none. */
export type DynamicConvs = 'all' | 'dense' | 'none';

export interface DynamicConvCandidate {
  convs: DynamicConvs;
  /** Nodes quantized, convs and the rest. */
  nodes: number;
  /** Median of interleaved runs, batch 1, beside the float model's. */
  latencyMs: number;
  drop: number;
  nsr: number;
}

export interface DynamicConvChoice {
  chosen: DynamicConvs;
  floatMs: number;
  /** Spread of the float model's runs (interquartile range ÷ median). */
  spread: number;
  samples: number;
  candidates: DynamicConvCandidate[];
  why: string;
}

const LABEL: Record<DynamicConvs, string> = { all: 'every conv dynamic', dense: 'grouped convs float', none: 'convs float' };

/**
 * Dynamic INT8 under --objective latency: onnxruntime's ConvInteger has no fast path here (PaddleOCR det
 * and MobileNetV2 ran 1.3–4× slower than float with every conv dynamic; grouped/depthwise convs worst),
 * while its MatMulInteger and the LSTM/attention kernels do win. So a model with dynamic convs is built
 * three ways (every conv, all but the grouped ones, none: only its other layers dynamic), timed beside
 * the float model in interleaved runs, and the fastest kept; within the noise of it, the one that
 * quantizes more (smaller). Undefined when there is nothing to choose (no conv; or only ungrouped convs,
 * unless `timeAlone` asks for their time beside float anyway, for an explicit --objective latency).
 */
export async function chooseDynamicConvs(input: string, prep: PreparedQuantization, data: CalibrationData, timeAlone: boolean, ctx: JobContext = {}): Promise<DynamicConvChoice | undefined> {
  const graph = prep.loaded.model.graph!;
  // Convs in If/Loop/Scan bodies count too (Silero VAD has all of its in two If branches).
  const dynamic = [...walkNodes(graph)].map((w) => w.node).filter((n) => prep.plan.get(n.name ?? '')?.mode === 'dynamic');
  const convs = new Set(dynamic.filter((n) => n.op_type === 'Conv').map((n) => n.name!));
  const grouped = new Set(dynamic.filter((n) => n.op_type === 'Conv' && attrInt(n, 'group', 1) > 1).map((n) => n.name!));
  if (!convs.size) return undefined;
  const others = prep.plan.size - convs.size;
  const variants: Array<{ convs: DynamicConvs; select: (n: string) => boolean; nodes: number }> = [{ convs: 'all', select: () => true, nodes: prep.plan.size }];
  if (grouped.size && grouped.size < convs.size) variants.push({ convs: 'dense', select: (n) => !grouped.has(n), nodes: prep.plan.size - grouped.size });
  if (others > 0) variants.push({ convs: 'none', select: (n) => !convs.has(n), nodes: others });
  if (variants.length === 1 && !timeAlone) return undefined;
  const t = await timeVariants(input, prep, data, variants, {
    stage: 'dynamic-convs', label: (v) => LABEL[v.convs], build: async (v) => (await applyQuantization(prep, v.select, { signal: ctx.signal })).model,
  }, ctx);
  const candidates: DynamicConvCandidate[] = t.timed.map(({ item, latencyMs, drop, nsr }) => ({ convs: item.convs, nodes: item.nodes, latencyMs, drop, nsr }));
  const fastest = candidates.reduce((a, c) => (c.latencyMs < a.latencyMs ? c : a));
  // Float convs only move the outputs closer to float: every candidate keeps the fidelity of 'all'.
  const faster = pairedComparator(candidates, t.timed);
  const best = candidates.find((c) => c === fastest || !faster(fastest, c))!;
  const why = `${best === fastest ? 'fastest' : `within the noise of the fastest (${LABEL[fastest.convs]})`}: ${candidates.map((c) => `${LABEL[c.convs]} ${c.latencyMs.toFixed(2)} ms`).join(', ')}; float ${t.floatMs.toFixed(2)} ms`;
  return { chosen: best.convs, floatMs: t.floatMs, spread: t.spread, samples: t.samples, candidates, why };
}

/** The nodes the choice quantizes, and a decision for each conv it leaves float. */
export function dynamicConvPlan(prep: PreparedQuantization, choice: DynamicConvChoice): { select: (n: string) => boolean; skipped: NodeDecision[] } {
  const graph = prep.loaded.model.graph!;
  const left = [...walkNodes(graph)].map((w) => w.node).filter((n) => prep.plan.get(n.name ?? '')?.mode === 'dynamic' && n.op_type === 'Conv'
    && (choice.chosen === 'none' || (choice.chosen === 'dense' && attrInt(n, 'group', 1) > 1)));
  const names = new Set(left.map((n) => n.name!));
  const view = new GraphView(graph);
  const reason = `kept float for speed: onnxruntime's ConvInteger ran slower than float's Conv on this CPU (${choice.why}; --objective size quantizes it anyway)`;
  return { select: (n) => !names.has(n), skipped: left.map((n) => ({ node: n.name!, opType: 'Conv', modulePath: modulePathOfNode(n, view), skipped: reason })) };
}

/**
 * The share of the planned nodes' weight elements that the convs a choice leaves float hold (their largest
 * constant input each): near 1 on a conv net, where dynamic INT8 then writes a model barely smaller than
 * the float one (torchvision ResNet-18: every conv float, its classifier Gemm alone int8, 1.03x smaller).
 */
export function floatConvShare(prep: PreparedQuantization, plan: { skipped: NodeDecision[] }): number {
  const view = new GraphView(prep.loaded.model.graph!);
  const left = new Set(plan.skipped.map((d) => d.node));
  let kept = 0, all = 0;
  for (const { node } of walkNodes(prep.loaded.model.graph!)) {
    if (!prep.plan.has(node.name ?? '')) continue;
    const size = Math.max(0, ...(node.input ?? []).map((i) => view.constant(i)).filter((t) => t).map((t) => (t!.dims ?? []).reduce((a: number, d) => a * Number(d), 1)));
    all += size;
    if (left.has(node.name ?? '')) kept += size;
  }
  return all ? kept / all : 0;
}
