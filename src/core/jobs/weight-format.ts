import type { CalibrationData } from '../calib/data';
import type { JobContext } from '../base/jobs';
import { WEIGHT_FORMATS, type WeightFormat } from '../quant/options';
import { applyQuantization, type PreparedQuantization } from '../quant/prepare';
import { pairedComparator, timeVariants } from './timed-variants';

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
  const refused: WeightFormatChoice['refused'] = [];
  const seen = new Set<string>();
  const t = await timeVariants(input, prep, data, formats, {
    stage: 'weight-format', label: (f) => `--weight-format ${f}`, refused: (format, error) => refused.push({ format, error }),
    build: async (format) => {
      const { model } = await applyQuantization(prep, () => true, { signal: ctx.signal, weightFormat: format });
      // A form that changes nothing here (no MatMul for MatMulNBits, no other layer to expand) is the same model.
      const shape = (model.graph!.node ?? []).map((n) => n.op_type).sort().join();
      if (seen.has(shape)) return undefined;
      seen.add(shape);
      return model;
    },
  }, ctx);
  const reference = t.timed.find((b) => b.item === 'dequantize') ?? t.timed[0];
  const candidates: WeightFormatCandidate[] = t.timed.map((b) => ({
    format: b.item, int8InMemory: INT8_IN_MEMORY[b.item], latencyMs: b.latencyMs, drop: b.drop, nsr: b.nsr,
    faithful: b === reference || (b.drop <= reference.drop + 0.01 && b.nsr <= reference.nsr * 1.5 + 1e-9),
  }));
  const faithful = candidates.filter((c) => c.faithful);
  const fastest = faithful.reduce((a, c) => (c.latencyMs < a.latencyMs ? c : a));
  // Within the noise of the fastest (it did not run clearly faster), the first in WEIGHT_FORMATS' order:
  // int8 in memory before float, DequantizeLinear's exact arithmetic before MatMulNBits' quantized activations.
  const faster = pairedComparator(candidates, t.timed);
  const best = faithful.filter((c) => c === fastest || !faster(fastest, c)).sort((a, b) => WEIGHT_FORMATS.indexOf(a.format) - WEIGHT_FORMATS.indexOf(b.format))[0];
  const ms = (c: WeightFormatCandidate) => `${c.format} ${c.latencyMs.toFixed(2)} ms${c.faithful ? '' : ' (loses fidelity)'}`;
  const why = `${best === fastest ? 'fastest faithful' : `within the noise of the fastest (${fastest.format})`}: ${candidates.map(ms).join(', ')}; float ${t.floatMs.toFixed(2)} ms${refused.length ? `; refused by onnxruntime: ${refused.map((r) => r.format).join(', ')}` : ''}`;
  return { chosen: best.format, floatMs: t.floatMs, spread: t.spread, samples: t.samples, candidates, refused, why };
}
