import { checkReportPath } from '../fs/output-path';
import { QuantLensError } from '../base/errors';
import type { JobContext } from '../base/jobs';
import { writeJsonAtomic } from '../fs/json';
import { loadModel } from '../onnx/model-io';
import { GraphView } from '../onnx/graph';
import { DEFAULT_QUANTIZE_OPTIONS, reducesRange, type QuantizeOptions } from '../quant/options';
import { loadRecipe, QuantPolicy } from '../quant/policy';
import { modesUsed, modulePathOfNode, prepareQuantization } from '../quant/prepare';
import { quantRange } from '../quant/qtypes';
import { LAYER_OPS } from '../onnx/layer-ops';

/** How one module should be fake-quantized in the user's PyTorch loop. See python/quantlens_qat.py. */
export interface QatModulePlan {
  op: string;
  weight: { bits: number; symmetric: boolean; perChannel: boolean; axis: number; qmin: number; qmax: number };
  /** Input activation quantization with its calibrated range (static scheme only). */
  input?: { bits: number; symmetric: boolean; min: number; max: number; scale: number; zeroPoint: number; qmin: number; qmax: number };
}

export interface QatPlan {
  format: 'quantlens-qat-plan/1';
  model: string;
  scheme: { mode: QuantizeOptions['mode']; bits: number; calibration?: string; calibrationMethod: string };
  modules: Record<string, QatModulePlan>;
  /** Module paths that stay float (recipe, --exclude, or nothing to quantize), with the reason. */
  float: Array<{ module: string; reason: string }>;
}

/**
 * `quantlens qat-plan`: what QuantLens would quantize, as a plan PyTorch can apply with fake-quant:
 * per module path, bits, symmetric/per-channel, and the calibrated input ranges to start QAT from.
 */
export async function buildQatPlan(modelPath: string, output: string | undefined, partial: Partial<QuantizeOptions>, ctx: JobContext = {}): Promise<QatPlan> {
  // No smoothing: it rescales the ONNX graph's channels, and the plan's ranges must be the PyTorch model's own.
  const options: QuantizeOptions = { ...DEFAULT_QUANTIZE_OPTIONS, mode: 'static', ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)), smoothing: 'off' };
  if (options.mode === 'static' && !options.calibration) throw new QuantLensError(undefined, 'qat-plan with --mode static needs --calibration DIR (or random:N) for the initial ranges', 'usage');
  if (options.mode === 'dynamic') throw new QuantLensError(undefined, 'qat-plan covers weight and static schemes (dynamic quantization needs no training)', 'usage');
  if (output) checkReportPath(output);
  const recipe = options.recipe ? loadRecipe(options.recipe) : undefined;
  const loaded = loadModel(modelPath);
  const prep = await prepareQuantization(loaded, options, new QuantPolicy(options, recipe), modesUsed(options, recipe), ctx);
  const byTensor = new Map((prep.calibration?.tensors ?? []).map((t) => [t.tensor, t]));
  const modules: Record<string, QatModulePlan> = {};
  const view = new GraphView(loaded.model.graph!);
  for (const node of loaded.model.graph!.node ?? []) {
    const o = prep.plan.get(node.name ?? '');
    // Layers with a weight: nn.Linear / nn.Conv*; products of two activations have no module to wrap.
    if (!o || !LAYER_OPS.has(node.op_type ?? '') || !view.constant(node.input?.[1] ?? '')) continue;
    const path = modulePathOfNode(node, view);
    if (!path || modules[path]) continue;
    const bits = o.mode === 'weight' ? o.bits : 8;
    // Static weights run in integer kernels: 7 bits where this CPU's would saturate, as quantize writes them.
    const w = bits === 8 && o.mode === 'static' && reducesRange(o) ? { qmin: -63, qmax: 63 } : quantRange(bits === 4 ? 'int4' : 'int8', true);
    const plan: QatModulePlan = { op: node.op_type!, weight: { bits, symmetric: true, perChannel: o.perChannel, axis: 0, ...w } };
    const cal = o.mode === 'static' ? byTensor.get(node.input![0]) : undefined;
    if (cal) {
      const a = quantRange(o.symmetric ? 'int8' : 'uint8', o.symmetric);
      plan.input = { bits: 8, symmetric: o.symmetric, min: cal.clip[0], max: cal.clip[1], scale: cal.scale, zeroPoint: cal.zeroPoint, ...a };
    }
    modules[path] = plan;
  }
  const float = prep.skipped.filter((s) => LAYER_OPS.has(s.opType) && s.modulePath && !modules[s.modulePath]).map((s) => ({ module: s.modulePath, reason: s.skipped! }));
  const plan: QatPlan = {
    format: 'quantlens-qat-plan/1', model: modelPath,
    scheme: { mode: options.mode, bits: options.bits, ...(options.calibration ? { calibration: options.calibration } : {}), calibrationMethod: options.calibrationMethod },
    modules, float,
  };
  if (output) writeJsonAtomic(output, plan);
  return plan;
}
