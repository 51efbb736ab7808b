import type { CalibrationData } from '../calib/data';
import { CancelledError, errorLine } from '../base/errors';
import type { JobContext } from '../base/jobs';
import { WEIGHT_FORMATS, type WeightFormat } from '../quant/options';
import { applyQuantization, type PreparedQuantization } from '../quant/prepare';
import { VariantScorer } from '../quant/variant-scorer';
import { createSession } from '../runtime/session';
import { interleavedLatency } from './placement';

export interface WeightFormatCandidate {
  format: WeightFormat;
  /** Whether the weights stay int8 in memory while the model runs ('expand' turns them back into float at load). */
  int8InMemory: boolean;
  /** Median of interleaved runs, batch 1, beside the float model's. */
  latencyMs: number;
  /** Fidelity against the float model on the samples: 1 − headline metric, and Σ(y−ŷ)²/Σy². */
  drop: number;
  nsr: number;
  /** Holds the fidelity of 'dequantize' (drop within 0.01, noise within 1.5×). */
  faithful: boolean;
}

export interface WeightFormatChoice {
  chosen: WeightFormat;
  floatMs: number;
  /** Spread of the float model's runs (interquartile range ÷ median). */
  spread: number;
  samples: number;
  candidates: WeightFormatCandidate[];
  /** Forms onnxruntime refused (e.g. MatMulNBits 8-bit on an older onnxruntime), with its error. */
  refused: Array<{ format: WeightFormat; error: string }>;
  why: string;
}

const INT8_IN_MEMORY: Record<WeightFormat, boolean> = { dequantize: true, nbits: true, expand: false, 'nbits+expand': false };

/**
 * --mode weight --weight-format auto: builds the model in each form, times it beside the float model
 * (interleaved runs) and scores it on the samples, and keeps the fastest faithful one; among those within
 * the noise of it, the first of dequantize, nbits, expand, nbits+expand: int8 in memory costs no speed
 * there and saves run-time memory, and exact dequantization beats quantized activations. 'expand' runs
 * float's own kernels on weights expanded at load, so some form always matches float's speed; which is
 * fastest depends on the model and this CPU's int8 kernels (MatMulNBits' int8 path wins where VNNI does
 * the dot products), so it is measured. A form onnxruntime refuses (or fails to run) is left out.
 */
export async function chooseWeightFormat(input: string, prep: PreparedQuantization, data: CalibrationData, formats: WeightFormat[], ctx: JobContext = {}): Promise<WeightFormatChoice> {
  const scorer = await VariantScorer.create(prep, data, 'task');
  const device = prep.options.device;
  const float = await createSession(input, { device, label: input, noSpin: true });
  const built: Array<{ format: WeightFormat } & Awaited<ReturnType<VariantScorer['scoredSession']>>> = [];
  const refused: WeightFormatChoice['refused'] = [];
  const seen = new Set<string>();
  try {
    for (const format of formats) {
      ctx.onProgress?.({ stage: 'weight-format', message: `building --weight-format ${format}` });
      const { model } = await applyQuantization(prep, () => true, { signal: ctx.signal, weightFormat: format });
      // A form that changes nothing here (no MatMul for MatMulNBits, no other layer to expand) is the same model.
      const shape = (model.graph!.node ?? []).map((n) => n.op_type).sort().join();
      if (seen.has(shape)) continue;
      seen.add(shape);
      try {
        built.push({ format, ...await scorer.scoredSession(model, ctx.signal) });
      } catch (e) {
        if (e instanceof CancelledError) throw e;
        refused.push({ format, error: errorLine(e) });
      }
    }
    ctx.onProgress?.({ stage: 'weight-format', message: 'timing weight formats beside the float model' });
    const { medians, spread } = await interleavedLatency([float, ...built.map((b) => b.session)], scorer.samples[0], 4000, ctx.signal);
    const reference = built.find((b) => b.format === 'dequantize') ?? built[0];
    const candidates: WeightFormatCandidate[] = built.map((b, i) => ({
      format: b.format, int8InMemory: INT8_IN_MEMORY[b.format], latencyMs: medians[i + 1], drop: b.drop, nsr: b.nsr,
      faithful: b === reference || (b.drop <= reference.drop + 0.01 && b.nsr <= reference.nsr * 1.5 + 1e-9),
    }));
    const faithful = candidates.filter((c) => c.faithful);
    const fastest = faithful.reduce((a, c) => (c.latencyMs < a.latencyMs ? c : a));
    // Within the noise of the fastest, the first in WEIGHT_FORMATS' order: int8 in memory before float,
    // DequantizeLinear's exact arithmetic before MatMulNBits' quantized activations.
    const margin = 1 + Math.max(0.05, spread);
    const best = faithful.filter((c) => c.latencyMs <= fastest.latencyMs * margin).sort((a, b) => WEIGHT_FORMATS.indexOf(a.format) - WEIGHT_FORMATS.indexOf(b.format))[0];
    const ms = (c: WeightFormatCandidate) => `${c.format} ${c.latencyMs.toFixed(2)} ms${c.faithful ? '' : ' (loses fidelity)'}`;
    const why = `${best === fastest ? 'fastest faithful' : `within the noise of the fastest (${fastest.format})`}: ${candidates.map(ms).join(', ')}; float ${medians[0].toFixed(2)} ms${refused.length ? `; refused by onnxruntime: ${refused.map((r) => r.format).join(', ')}` : ''}`;
    return { chosen: best.format, floatMs: medians[0], spread, samples: scorer.samples.length, candidates, refused, why };
  } finally {
    await scorer.close();
    await float.session.release();
    for (const b of built) await b.session.release();
  }
}
