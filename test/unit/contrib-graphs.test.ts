import assert from 'node:assert/strict';
import path from 'node:path';
import { quantizeModel } from '../../src/core/jobs/quantize-model';
import { pruneModel } from '../../src/core/prune/prune-model';
import { analyzeSensitivity } from '../../src/core/sensitivity/analyze';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import type { ModelProto } from '../../src/core/onnx/proto';
import { BERT, GENAI, genaiDecoder, genaiEmbedding, optimizedBert } from '../helpers/contrib-models';
import fs from 'node:fs';
import { quantizePipeline } from '../../src/core/jobs/quantize-pipeline';
import { tmpDir } from '../helpers/util';

const opsOf = (file: string) => {
  const ops: Record<string, number> = {};
  for (const n of loadModel(file).model.graph!.node!) ops[n.op_type!] = (ops[n.op_type!] ?? 0) + 1;
  return ops;
};
const save = (m: ModelProto, name: string) => { const f = path.join(tmpDir(), `${name}.onnx`); saveModel(m, f); return f; };

// Exports run through onnxruntime's own tools are full of contrib ops: every mode must take what it can and
// leave the rest running. Random weights: these check that outputs load and stay close, not accuracy.
describe('graphs of onnxruntime contrib ops (genai decoder, optimized BERT)', function () {
  this.timeout(300_000);
  const { hidden: H, kvHeads, headSize, layers } = GENAI;
  const decoderShapes = {
    input_ids: [1, 6], attention_mask: [1, 9],
    ...Object.fromEntries(Array.from({ length: layers }, (_, l) => ['key', 'value'].map((kv) => [`past_key_values.${l}.${kv}`, [1, kvHeads, 3, headSize]])).flat()),
  };
  const bertShapes = { input_ids: [1, 12], token_type_ids: [1, 12], attention_mask: [1, 12] };
  const matmuls = layers * 7 + 1;

  for (const [label, options, kernel, count, cosine] of [
    ['static INT8', { mode: 'static' }, 'QuantizeLinear', undefined, 0.98],
    ['dynamic INT8', { mode: 'dynamic' }, 'MatMulInteger', matmuls, 0.98],
    ['weight INT4', { mode: 'weight', bits: 4 }, 'MatMulNBits', matmuls, 0.9],
  ] as const) {
    it(`genai-style decoder (GroupQueryAttention, SkipSimplifiedLayerNormalization), ${label}: every MatMul quantized, the contrib ops kept, logits close`, async () => {
      const input = save(genaiDecoder(), 'decoder');
      const out = path.join(tmpDir(), 'q.onnx');
      const r = await quantizeModel(input, out, { ...options, calibration: 'random:4', inputShapes: decoderShapes });
      const ops = opsOf(out);
      assert.ok(ops[kernel], JSON.stringify(ops));
      if (count !== undefined) assert.equal(ops[kernel], count, JSON.stringify(ops));
      assert.equal(ops.GroupQueryAttention, layers);
      assert.equal(ops.SkipSimplifiedLayerNormalization, 2 * layers); // before attention (not the first layer), after it, and the final norm
      assert.ok(r.fidelity.logits.cosine > cosine, `logits cosine ${r.fidelity.logits.cosine}`);
      assert.ok(r.sizeAfter < r.sizeBefore / 2.5, `${r.sizeBefore} -> ${r.sizeAfter}`);
    });
  }

  it('genai-style decoder: structured pruning removes MLP units and the result runs; sensitivity ranks every MatMul', async () => {
    const input = save(genaiDecoder(), 'decoder');
    const out = path.join(tmpDir(), 'p.onnx');
    const r = await pruneModel(input, out, { method: 'structured', sparsity: 0.25, roundTo: 1, calibration: 'random:4', inputShapes: decoderShapes });
    assert.ok(r.parametersAfter < r.parametersBefore * 0.9, `${r.parametersBefore} -> ${r.parametersAfter}`);
    const up = loadModel(out).model.graph!.initializer!.find((t) => t.name === 'model.layers.0.mlp.up_proj.MatMul.weight')!;
    assert.deepEqual(up.dims!.map(Number), [H, 3 * H]);
    const s = await analyzeSensitivity(input, { calibration: 'random:4', inputShapes: decoderShapes, output: null });
    assert.equal(s.layers.length, matmuls);
  });

  it('an onnxruntime-genai folder (embedding + GroupQueryAttention decoder): calibrated by generation with the KV cache, quantized, judged by tokens', async () => {
    const dir = tmpDir();
    const folder = path.join(dir, 'genai');
    fs.mkdirSync(folder);
    saveModel(genaiEmbedding(), path.join(folder, 'embeds.onnx'));
    saveModel(genaiDecoder(3, true), path.join(folder, 'model.onnx'));
    fs.writeFileSync(path.join(folder, 'genai_config.json'), JSON.stringify({ model: { eos_token_id: 2, embedding: { filename: 'embeds.onnx' }, decoder: { filename: 'model.onnx', num_hidden_layers: layers } } }));
    const prompts = (seed: number) => Array.from({ length: 6 }, (_, i) => Array.from({ length: 3 + (i % 3) }, (_, k) => 3 + ((seed * 31 + i * 17 + k * 7) % (GENAI.vocab - 3))));
    for (const [name, seed] of [['calib', 1], ['eval', 2]] as const) {
      fs.mkdirSync(path.join(dir, name));
      fs.writeFileSync(path.join(dir, name, 'prompts.json'), JSON.stringify(prompts(seed)));
    }
    const r = await quantizePipeline(folder, path.join(dir, 'out'), { calibration: path.join(dir, 'calib'), evaluation: path.join(dir, 'eval') });
    assert.ok(r.decoderSteps > 6, `${r.decoderSteps} decoder steps recorded`);
    const decoder = r.components.find((c) => c.role === 'decoder')!;
    assert.ok(decoder.result && decoder.result.quantized.length === matmuls, JSON.stringify(decoder.result?.quantized));
    assert.equal(opsOf(path.join(dir, 'out', 'model.onnx')).GroupQueryAttention, layers);
    // random weights: this checks that generation runs through the cache and the quantized decoder, not accuracy
    assert.ok(r.judged.tokens.agreement > 0.5, `${r.judged.tokens.agreement}`);
  });

  it('optimized BERT, dynamic INT8: each Attention becomes QAttention, the embeddings QEmbedLayerNormalization and each MatMul MatMulInteger', async () => {
    const input = save(optimizedBert(), 'bert');
    const out = path.join(tmpDir(), 'q.onnx');
    const r = await quantizeModel(input, out, { mode: 'dynamic', calibration: 'random:4', inputShapes: bertShapes });
    const ops = opsOf(out);
    assert.equal(ops.QAttention, BERT.layers, JSON.stringify(ops));
    assert.equal(ops.Attention, undefined);
    assert.equal(ops.MatMulInteger, 3 * BERT.layers);
    assert.equal(ops.QEmbedLayerNormalization, 1);
    assert.ok(r.fidelity.last_hidden_state.cosine > 0.99, `cosine ${r.fidelity.last_hidden_state.cosine}`);
    // every weight matrix and table is int8 now (scales and the SkipLayerNormalization vectors stay float)
    assert.ok(r.sizeAfter < r.sizeBefore / 3, `${r.sizeBefore} -> ${r.sizeAfter}`);
    const s = await analyzeSensitivity(input, { mode: 'dynamic', calibration: 'random:4', inputShapes: bertShapes, output: null });
    assert.deepEqual([...new Set(s.layers.map((l) => l.opType))].sort(), ['Attention', 'EmbedLayerNormalization', 'MatMul']);
    // static mode leaves the fused ops float and says so
    const st = await quantizeModel(input, out, { mode: 'static', calibration: 'random:4', inputShapes: bertShapes });
    assert.deepEqual(st.skipped.map((x) => x.reason).sort(), [
      'static mode leaves Attention float (--mode weight or --mode dynamic quantizes it)', 'static mode leaves Attention float (--mode weight or --mode dynamic quantizes it)',
      'static mode leaves EmbedLayerNormalization float (--mode dynamic quantizes it)',
    ]);
  });

  for (const gelu of ['BiasGelu', 'FastGelu'] as const) {
    it(`optimized BERT with ${gelu}: structured pruning removes intermediate units (the ${gelu} bias sliced) and the result runs`, async () => {
      const input = save(optimizedBert(gelu), 'bert');
      const out = path.join(tmpDir(), 'p.onnx');
      const r = await pruneModel(input, out, { method: 'structured', sparsity: 0.25, roundTo: 1, calibration: 'random:4', inputShapes: bertShapes });
      assert.ok(r.parametersAfter < r.parametersBefore, `${r.parametersBefore} -> ${r.parametersAfter}`);
      const g = loadModel(out).model.graph!;
      const bias = g.node!.find((n) => n.op_type === gelu)!.input![1];
      assert.deepEqual(g.initializer!.find((t) => t.name === bias)!.dims!.map(Number), [3 * BERT.hidden]);
    });
  }
});
