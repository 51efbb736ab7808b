import type { CalibrationData } from '../calib/data';
import type { JobContext } from '../base/jobs';
import { ModelEditor } from '../onnx/editor';
import { AMPLIFIERS_REACHED, reachesAmplifier } from '../quant/static/amplifiers';
import type { NodeDecision, QuantizeOptions } from '../quant/options';
import { applyQuantization, elementwiseStaysFloat, type PreparedQuantization } from '../quant/prepare';
import { pairedComparator, timeVariants } from './timed-variants';
import { LAYER_OPS } from '../onnx/layer-ops';

export type Placement = Exclude<QuantizeOptions['staticOps'], 'auto'>;
/**
 * What --static-ops auto tries. 'all' is not among them: quantizing every Add/Mul cost PaddleOCR rec half
 * its exact lines (22 of 48 against 44), and calibrating every elementwise tensor for it would make each
 * default run pay for a placement that rarely wins (`--static-ops all` still asks for it).
 */
export const PLACEMENTS: Placement[] = ['compute', 'residual'];

export interface PlacementCandidate {
  placement: Placement;
  /** With boundaries, only the heavy layers (≥ HEAVY_K multiply-adds per output) before float ops: light ones (depthwise) gain nothing from int8. */
  heavyOnly?: boolean;
  /**
   * Layers whose output feeds float ops (HardSwish, a decomposed GELU) are quantized with their output
   * Q/DQ'd, so onnxruntime runs them as integer kernels and each float island costs one boundary;
   * otherwise they stay float (a DQ → Conv → float op pattern runs the float kernel, slower than float).
   */
  boundaries: boolean;
  /** Planned nodes it quantizes. */
  nodes: number;
  /** Median of interleaved runs, batch 1, beside the float model's. */
  latencyMs: number;
  /** Fidelity against the float model on the calibration samples: 1 − headline metric, and Σ(y−ŷ)²/Σy². */
  drop: number;
  nsr: number;
  /** Holds the fidelity of 'compute' with every planned node quantized (drop within 0.01, noise within 1.5×). */
  faithful: boolean;
}

export interface PlacementChoice {
  chosen: Placement;
  heavyOnly?: boolean;
  /** Whether the chosen candidate quantizes layers before float islands (see PlacementCandidate). */
  boundaries: boolean;
  floatMs: number;
  /** Spread of the float model's runs (interquartile range ÷ median), for how far to trust a ratio. */
  spread: number;
  samples: number;
  candidates: PlacementCandidate[];
  why: string;
}

/**
 * Ops onnxruntime runs as an integer kernel whose output is float (MatMulIntegerToFloat, QGemm). Every
 * other op becomes an integer kernel only when its output goes straight to a QuantizeLinear: without one,
 * DQ → op runs the float op, after a dequantization (PaddleOCR cls had 9 squeeze-excite pools quantized
 * that way, each a Q/DQ round trip of a full activation before a float pool).
 */
const FLOAT_OUTPUT_KERNELS = new Set(['MatMul', 'Gemm']);
/** Activations onnxruntime drops in front of a QuantizeLinear (the Q's range clips the same way). */
const FOLDED_BEFORE_Q = new Set(['Relu', 'Clip']);
export const UNFUSED_REASON = 'kept float for speed: its output feeds float ops, so onnxruntime would run it as a float kernel on a dequantized weight (--objective size quantizes it anyway)';
const UNFUSED_OP_REASON = 'kept float for speed: its output feeds float ops, so onnxruntime would run it as a float op after a QuantizeLinear/DequantizeLinear round trip (--objective size quantizes it anyway)';
const UNBOUNDED_OP_REASON = 'kept float for speed: its output feeds float ops, and a boundary after it would quantize and dequantize a tensor no smaller than its inputs (--objective size quantizes it anyway)';
/** Ops whose output is smaller than their input: a boundary after one costs less than the DQ before it. */
const SHRINKING = new Set(['MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool']);

/**
 * Which ops a placement drops when their output would not reach a QuantizeLinear: 'fused', every op
 * onnxruntime would then run float (all but MatMul/Gemm); 'boundaries', where layers with weights get a
 * Q/DQ boundary after them instead, the ops without weights whose boundary would cost more than leaving
 * them float (a Concat's output is as large as all its inputs: torchvision DenseNet-121 with every layer
 * behind boundaries, interleaved, three runs: 0.73-0.79x float with its Concats quantized, 0.71-0.74x
 * with them float); 'all', none.
 */
export type PlanMode = 'fused' | 'boundaries' | 'all';

/**
 * What placement `p` quantizes, and why each other static node stays float: elementwise ops the placement
 * leaves out, then (repeatedly, as dropping one can strand its producer) the ops `mode` drops whose output
 * would not reach a QuantizeLinear: DQ → Conv → float op runs the float kernel plus a dequantization of
 * the weight every run, slower than the float model.
 */
export function placementPlan(prep: PreparedQuantization, p: Placement, mode: PlanMode = 'fused'): { select: (name: string) => boolean; skipped: NodeDecision[] } {
  const view = new ModelEditor(prep.loaded.model).view();
  const statics = (view.graph.node ?? []).filter((n) => prep.plan.get(n.name ?? '')?.mode === 'static');
  const skipped: NodeDecision[] = [];
  const keep = new Set<string>();
  for (const n of statics) {
    const why = elementwiseStaysFloat(n, view, p);
    if (why) skipped.push({ node: n.name!, opType: n.op_type ?? '', modulePath: '', skipped: why });
    else keep.add(n.name!);
  }
  const outputs = new Set((view.graph.output ?? []).map((o) => o.name));
  const reachesQ = (t: string): boolean => {
    if (outputs.has(t)) return false;
    const readers = view.consumersOf(t);
    if (readers.length === 1 && FOLDED_BEFORE_Q.has(readers[0].op_type ?? '')) return reachesQ(readers[0].output![0]);
    return readers.length > 0 && readers.every((r) => keep.has(r.name ?? ''));
  };
  const drops = (op: string) => !FLOAT_OUTPUT_KERNELS.has(op) && (mode === 'fused' || (!LAYER_OPS.has(op) && !SHRINKING.has(op)));
  for (let changed = mode !== 'all'; changed;) {
    changed = false;
    for (const n of statics) {
      if (!keep.has(n.name!) || reachesQ(n.output![0])) continue;
      // A boundary before a Log/Sqrt/division rounds the small values those magnify: never there.
      const amplified = mode === 'boundaries' && !drops(n.op_type ?? '') && reachesAmplifier(view, n.output![0], prep.loaded.loc);
      if (!drops(n.op_type ?? '') && !amplified) continue;
      keep.delete(n.name!);
      skipped.push({ node: n.name!, opType: n.op_type ?? '', modulePath: '', skipped: amplified ? AMPLIFIED_REASON : LAYER_OPS.has(n.op_type ?? '') ? UNFUSED_REASON : mode === 'fused' ? UNFUSED_OP_REASON : UNBOUNDED_OP_REASON });
      changed = true;
    }
  }
  return { select: (name) => !prep.plan.has(name) || keep.has(name), skipped };
}

const AMPLIFIED_REASON = `kept float: its output reaches ${AMPLIFIERS_REACHED}`;

/** Of the nodes a plan skipped, the layers kept float for speed alone (see ApplyOptions.halfStored). */
export function floatForSpeed(skipped: NodeDecision[]): Set<string> {
  return new Set(skipped.filter((s) => s.skipped === UNFUSED_REASON && LAYER_OPS.has(s.opType)).map((s) => s.node));
}

/** The nodes a chosen candidate quantizes, and why the others stay float. */
export function chosenPlan(prep: PreparedQuantization, c: Pick<PlacementChoice, 'chosen' | 'boundaries' | 'heavyOnly'>): { select: (name: string) => boolean; skipped: NodeDecision[] } {
  if (!c.boundaries) return placementPlan(prep, c.chosen);
  const all = placementPlan(prep, c.chosen, 'boundaries');
  if (!c.heavyOnly) return all;
  const fused = placementPlan(prep, c.chosen);
  const heavy = heavyLayers(prep);
  const extra = (n: string) => all.select(n) && heavy.has(n);
  return { select: (n) => fused.select(n) || extra(n), skipped: fused.skipped.filter((s) => !extra(s.node)) };
}

/** Multiply-adds per output value from which an int8 kernel pays for a boundary (a 3×3 conv over 32 channels). */
const HEAVY_K = 256;

/** Planned Conv/MatMul/Gemm nodes that multiply-add at least HEAVY_K values per output (depthwise convs do 9). */
function heavyLayers(prep: PreparedQuantization): Set<string> {
  const view = new ModelEditor(prep.loaded.model).view();
  const out = new Set<string>();
  for (const n of view.graph.node ?? []) {
    if (!prep.plan.has(n.name ?? '')) continue;
    const w = view.constant(n.input?.[1] ?? '');
    const dims = (w?.dims ?? []).map(Number);
    if (!dims.length) continue;
    const k = n.op_type === 'Conv' ? dims.slice(1).reduce((a, b) => a * b, 1) : n.op_type === 'MatMul' || n.op_type === 'Gemm' ? Math.min(...dims.slice(-2)) : 0;
    if (k >= HEAVY_K) out.add(n.name!);
  }
  return out;
}

/**
 * Which candidates hold fidelity: the first (the conservative placement) always; another when it keeps
 * within 0.01 of the headline metric and 1.5× the noise of `reference` (the conservative placement with
 * every planned node quantized), and within 0.01 of the first's metric. The last bound matters where
 * quantizing everything is itself poor: torchvision's LR-ASPP (random weights and inputs) had every
 * candidate measured "faithful" against a reference at cosine 0.90, and a noisy timing picked one at
 * 0.90 over one at 0.99999 for 2% speed.
 */
export function judgeCandidates(measured: Array<Omit<PlacementCandidate, 'faithful'>>, reference: { drop: number; nsr: number }): PlacementCandidate[] {
  const first = measured[0];
  return measured.map((c, i) => ({
    ...c, faithful: i === 0 || (c.drop <= reference.drop + 0.01 && c.nsr <= reference.nsr * 1.5 + 1e-9 && c.drop <= first.drop + 0.01),
  }));
}

/**
 * The placement to keep. A faster one must win clearly (`faster`: by 5% over interleaved rounds, see pairedFaster):
 * the conservative first one keeps the float model's answers best (PaddleOCR rec: taking the
 * most-quantized placement within the noise cut its agreement with float on held-out lines to 90%). But
 * one slower than the float model gives way to any faithful placement that ran faster: a run of
 * `node out/bench/int8-latency.js` kept ResNet-18 at compute, 5 layers int8 and 1.05x float, where
 * residual (every layer int8) runs 0.90x.
 */
export function fastestFaithful(candidates: PlacementCandidate[], floatMs: number, faster: (a: PlacementCandidate, b: PlacementCandidate) => boolean): PlacementCandidate {
  let best = candidates[0];
  for (const c of candidates.slice(1)) {
    if (c.faithful && (faster(c, best) || (best.latencyMs >= floatMs && c.latencyMs < best.latencyMs))) best = c;
  }
  return best;
}

/**
 * --objective latency: builds the model under each placement, times it beside the float model and scores
 * it on the calibration samples, and keeps the fastest that holds the fidelity of 'compute' (the most
 * conservative placement) by more than the noise, or any faster one when the first is slower than float. onnxruntime fuses Q/DQ into integer kernels only where a quantized node's
 * output is quantized too: a residual Add left float keeps the Conv before it in float (DQ → Conv), so
 * which placement is fastest depends on the model's structure and this CPU, and is measured, not guessed.
 */
export async function choosePlacement(input: string, prep: PreparedQuantization, data: CalibrationData, ctx: JobContext = {}): Promise<PlacementChoice> {
  const built: Array<{ p: Placement; boundaries: boolean; heavyOnly?: boolean; select: (n: string) => boolean; nodes: number; halfStored: Set<string> }> = [];
  const seen = new Set<string>();
  const heavy = heavyLayers(prep);
  for (const p of PLACEMENTS) {
    const fusedPlan = placementPlan(prep, p);
    const fused = fusedPlan.select;
    const unfused = floatForSpeed(fusedPlan.skipped);
    const all = placementPlan(prep, p, 'boundaries').select;
    const fusedNames = [...prep.plan.keys()].filter(fused);
    const variants: Array<{ boundaries: boolean; heavyOnly?: boolean; select: (n: string) => boolean }> = [
      { boundaries: false, select: fused },
      { boundaries: true, heavyOnly: true, select: (n) => fused(n) || (all(n) && heavy.has(n)) },
      { boundaries: true, select: all },
    ];
    for (const v of variants) {
      const names = [...prep.plan.keys()].filter(v.select);
      // A placement that quantizes nothing is the float model, not a result (two convs whose output is the
      // model's: fused-only keeps both float, boundaries quantize them).
      if (!names.some((n) => prep.plan.get(n)?.mode === 'static')) continue;
      // With boundaries, only layers the fused-only plan leaves float change: none, nothing new to try.
      if (v.boundaries && names.length === fusedNames.length) continue;
      const key = `${v.boundaries}\n${names.join('\n')}`;
      if (seen.has(key)) continue; // the same nodes as a placement already tried
      seen.add(key);
      built.push({ p, ...v, nodes: names.length, halfStored: new Set([...unfused].filter((n) => !v.select(n))) });
    }
  }
  // The fidelity to hold: what the conservative placement gives with every planned node quantized.
  let reference = { drop: 0, nsr: 0 };
  const t = await timeVariants(input, prep, data, built, {
    stage: 'placement', label: (b) => `--static-ops ${b.p}${b.boundaries ? ' with boundaries' : ''}`,
    first: async (scorer) => { reference = await scorer.score(placementPlan(prep, 'compute', 'all').select, ctx.signal); },
    build: async (b) => (await applyQuantization(prep, b.select, { signal: ctx.signal, boundaries: b.boundaries, halfStored: b.halfStored })).model,
  }, ctx);
  const candidates = judgeCandidates(t.timed.map(({ item: b, latencyMs, drop, nsr }) => ({
    placement: b.p, boundaries: b.boundaries, ...(b.heavyOnly ? { heavyOnly: true } : {}), nodes: b.nodes, latencyMs, drop, nsr,
  })), reference);
  const best = fastestFaithful(candidates, t.floatMs, pairedComparator(candidates, t.timed));
  const ms = (c: PlacementCandidate) => `${c.placement}${c.boundaries ? ` with boundaries${c.heavyOnly ? ' (heavy layers)' : ''}` : ''} ${c.latencyMs.toFixed(2)} ms${c.faithful ? '' : ' (loses fidelity)'}`;
  const why = `fastest faithful placement: ${candidates.map(ms).join(', ')}; float ${t.floatMs.toFixed(2)} ms`;
  return { chosen: best.placement, boundaries: best.boundaries, ...(best.heavyOnly ? { heavyOnly: true } : {}), floatMs: t.floatMs, spread: t.spread, samples: t.samples, candidates, why };
}
