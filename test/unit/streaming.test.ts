import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURES } from '../../src/core/fixtures';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { isExternal } from '../../src/core/onnx/external-data';
import { tensorRawBytes } from '../../src/core/onnx/tensor';
import { walkTensors } from '../../src/core/onnx/walk';
import { CancelledError } from '../../src/core/base/errors';
import { quantizeModel, type QuantizeReport } from '../../src/core/jobs/quantize-model';
import { pruneModel } from '../../src/core/prune/prune-model';
import { openCalibration } from '../../src/core/calib/data';
import { planSegments } from '../../src/core/runtime/segments';
import { runSegmented } from '../../src/core/runtime/segmented-run';
import { createSession } from '../../src/core/runtime/session';
import { tmpDir } from '../helpers/util';

/** Every stored tensor of a saved model by name, as bytes (wherever it lives). */
/**
 * Asserts two saved models hold the same tensors, byte for byte; tensors matching `close` only to 1e-5
 * (float32 values computed from activations that onnxruntime reduced in differently cut graphs).
 */
function assertSameTensors(a: string, b: string, close?: RegExp): void {
  const ta = tensorsOf(a), tb = tensorsOf(b);
  assert.deepEqual([...tb.keys()].sort(), [...ta.keys()].sort());
  for (const [name, bytes] of ta) {
    if (close?.test(name)) {
      const [x, y] = [bytes, tb.get(name)!].map((v) => new Float32Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)));
      assert.ok(x.every((v, i) => Math.abs(v - y[i]) <= 1e-5 * (1 + Math.abs(v))), `tensor ${name} differs beyond 1e-5`);
    } else assert.ok(bytes.equals(tb.get(name)!), `tensor ${name} differs`);
  }
}

/** Runs `fn` with segmented runs cut at `bytes` of weights (QUANTLENS_VERIFY_SEGMENT_BYTES), then restores it. */
async function withSegmentBudget<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
  process.env.QUANTLENS_VERIFY_SEGMENT_BYTES = String(bytes);
  try {
    return await fn();
  } finally {
    delete process.env.QUANTLENS_VERIFY_SEGMENT_BYTES;
  }
}

/** The transformer fixture saved with its weights in external data (every tensor of 256 bytes or more). */
function externalTransformer(): { dir: string; file: string } {
  const dir = tmpDir();
  const file = path.join(dir, 't.onnx');
  saveModel(FIXTURES.transformer.build(), file, { externalData: 'always', sizeThreshold: 256 });
  return { dir, file };
}

function tensorsOf(file: string): Map<string, Buffer> {
  const l = loadModel(file);
  return new Map([...walkTensors(l.model.graph!)].map(({ tensor }) => [tensor.name ?? '', Buffer.from(tensorRawBytes(tensor, l.loc))]));
}

// External-data models are rewritten tensor by tensor (TensorSpill): every quantized tensor goes to the
// output's data file as it is made. The fixtures are small, so a 256-byte external threshold and the
// spill's own 1 KiB threshold force that path on them; the bench runs it on a model of several GB.
describe('streamed quantization of external-data models', function () {
  this.timeout(120_000);
  const dir = tmpDir();
  const inline = path.join(dir, 'inline', 't.onnx');
  const external = path.join(dir, 'ext', 't.onnx');
  before(() => {
    fs.mkdirSync(path.dirname(inline));
    fs.mkdirSync(path.dirname(external));
    saveModel(FIXTURES.transformer.build(), inline, { externalData: 'never' });
    saveModel(FIXTURES.transformer.build(), external, { externalData: 'always', sizeThreshold: 256 });
  });

  for (const [label, opts] of [
    // Streamed models are not timed in several forms (--weight-format auto writes 'dequantize' for them): ask both paths for it.
    ['weight INT8', { mode: 'weight', bits: 8, weightFormat: 'dequantize' }],
    ['weight INT4 (MatMulNBits, GPTQ)', { mode: 'weight', bits: 4, algorithm: 'gptq', calibration: 'random:8' }],
    ['static INT8 QDQ', { mode: 'static', calibration: 'random:8' }],
    // Smoothing measures its channel maxima in a pass of its own before the histograms.
    ['static INT8 QDQ, percentile', { mode: 'static', calibration: 'random:8', calibrationMethod: 'percentile' }],
    ['dynamic INT8', { mode: 'dynamic' }],
    ['mixed precision under a budget', { mode: 'static', calibration: 'random:8', budget: 0.001 }],
  ] as const) {
    it(`${label}: writes the same tensors as the in-memory path, streamed, and onnxruntime checks it`, async () => {
      const out = tmpDir();
      const a = await quantizeModel(inline, path.join(out, 'a.onnx'), opts);
      const b = await quantizeModel(external, path.join(out, 'b.onnx'), opts);
      const report = JSON.parse(fs.readFileSync(b.report, 'utf8')) as QuantizeReport;
      assert.ok(report.streamed && report.streamed.tensors > 0, `streamed: ${JSON.stringify(report.streamed)}`);
      assert.ok(!(JSON.parse(fs.readFileSync(a.report, 'utf8')) as QuantizeReport).streamed, 'an inline model is not streamed');
      // Same quantized values, whichever path wrote them.
      assertSameTensors(a.output, b.output);
      // The streamed tensors live in the output's own data file, next to it.
      const lb = loadModel(b.output);
      assert.deepEqual(lb.externalFiles.map((f) => path.basename(f)), ['b.onnx.data']);
      const big = [...walkTensors(lb.model.graph!)].filter(({ tensor }) => (tensor.dims ?? []).map(Number).reduce((x, y) => x * y, 1) >= 1024);
      assert.ok(big.length > 0 && big.every(({ tensor }) => isExternal(tensor)), 'large tensors are external');
      assert.deepEqual(Object.values(b.fidelity)[0], Object.values(a.fidelity)[0]);
      assert.ok(Object.values(b.fidelity)[0].cosine > 0.99);
      assert.deepEqual(fs.readdirSync(out).sort(), ['a.onnx', 'a.onnx.report.json', 'b.onnx', 'b.onnx.data', 'b.onnx.report.json']);
    });
  }

  for (const [label, opts] of [
    ['magnitude, global threshold', { method: 'magnitude', sparsity: 0.6, minDensity: 0.1 }],
    ['N:M 2:4', { method: 'nm' }],
    ['structured 50% with bias compensation', { method: 'structured', sparsity: 0.5, calibration: 'random:8' }],
    ['magnitude with activation importance and reconstruction', { method: 'magnitude', sparsity: 0.5, importance: 'activation', reconstruct: true, calibration: 'random:8' }],
  ] as const) {
    it(`prune, ${label}: a layer at a time, the same weights as the in-memory path`, async () => {
      const out = tmpDir();
      const a = await pruneModel(inline, path.join(out, 'a.onnx'), opts, {}, { masks: path.join(out, 'a.masks.json') });
      const b = await pruneModel(external, path.join(out, 'b.onnx'), opts, {}, { masks: path.join(out, 'b.masks.json') });
      assertSameTensors(a.output, b.output);
      assert.equal(b.sparsity, a.sparsity);
      const streamed = JSON.parse(fs.readFileSync(b.report, 'utf8')).streamed;
      assert.equal(streamed?.tensors, b.layers.length, `streamed: ${JSON.stringify(streamed)}`);
      assert.deepEqual(JSON.parse(fs.readFileSync(b.report, 'utf8')).maps, JSON.parse(fs.readFileSync(a.report, 'utf8')).maps);
      assert.equal(JSON.parse(fs.readFileSync(a.report, 'utf8')).streamed, undefined);
      assert.deepEqual(b.layers.map((l) => [l.name, l.sparsity, l.nmViolations]), a.layers.map((l) => [l.name, l.sparsity, l.nmViolations]));
      const masks = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8')).layers;
      assert.deepEqual(masks(path.join(out, 'b.masks.json')), masks(path.join(out, 'a.masks.json')));
      assert.deepEqual(loadModel(b.output).externalFiles.map((f) => path.basename(f)), ['b.onnx.data']);
    });
  }

  it('prune, structured with reconstruction: streamed models refit from float inputs (and say so), in-memory ones side by side', async () => {
    const out = tmpDir();
    const opts = { method: 'structured', sparsity: 0.5, reconstruct: true, calibration: 'random:8' } as const;
    const a = await pruneModel(inline, path.join(out, 'a.onnx'), opts);
    const b = await pruneModel(external, path.join(out, 'b.onnx'), opts);
    assert.ok(a.layers.some((l) => /fed by the pruned model/.test(l.reconstruction ?? '')), JSON.stringify(a.layers));
    assert.ok(b.layers.some((l) => l.reconstruction === 'least-squares refit of the kept inputs from calibration data'), JSON.stringify(b.layers));
    assert.ok(b.notes.some((n) => /external data/.test(n)), JSON.stringify(b.notes));
    assert.deepEqual(b.layers.map((l) => [l.name, l.shapeAfter]), a.layers.map((l) => [l.name, l.shapeAfter]));
    for (const r of [a, b]) assert.ok(Object.values(r.fidelity)[0].cosine > 0.5, JSON.stringify(r.fidelity));
  });

  it('cnn, static INT8 with BatchNorm folded first and int32 biases: the same tensors streamed', async () => {
    const src = tmpDir();
    fs.mkdirSync(path.join(src, 'i'));
    fs.mkdirSync(path.join(src, 'e'));
    saveModel(FIXTURES.cnn.build(), path.join(src, 'i', 'c.onnx'), { externalData: 'never' });
    saveModel(FIXTURES.cnn.build(), path.join(src, 'e', 'c.onnx'), { externalData: 'always', sizeThreshold: 256 });
    const out = tmpDir();
    const a = await quantizeModel(path.join(src, 'i', 'c.onnx'), path.join(out, 'a.onnx'), { mode: 'static', calibration: 'random:8' });
    const b = await quantizeModel(path.join(src, 'e', 'c.onnx'), path.join(out, 'b.onnx'), { mode: 'static', calibration: 'random:8' });
    assert.ok((JSON.parse(fs.readFileSync(b.report, 'utf8')) as QuantizeReport).streamed!.tensors > 0);
    assertSameTensors(a.output, b.output);
  });

  it('a cancelled streamed quantization leaves nothing behind, and the input folder is untouched', async () => {
    const out = tmpDir();
    const before = fs.readdirSync(path.dirname(external)).sort();
    const ac = new AbortController();
    const job = quantizeModel(external, path.join(out, 'c.onnx'), { mode: 'weight', bits: 4, algorithm: 'gptq', calibration: 'random:8' }, {
      signal: ac.signal,
      // Cancel as soon as calibration reports progress: the quantization and its streamed file are under way or next.
      onProgress: () => ac.abort(),
    });
    await assert.rejects(job, (e) => e instanceof CancelledError);
    assert.deepEqual(fs.readdirSync(out), []);
    assert.deepEqual(fs.readdirSync(path.dirname(external)).sort(), before);
  });
});

describe('segmented runs (verification of models larger than memory)', function () {
  this.timeout(120_000);
  it('cuts a transformer into segments whose chained outputs equal the whole model, residual stream included', async () => {
    const { dir, file } = externalTransformer();
    const loaded = loadModel(file);
    const segs = planSegments(loaded.model.graph!, 8192)!;
    assert.ok(segs.length >= 4, `${segs.length} segments`);
    // Every value a segment reads comes from the graph inputs or an earlier segment's outputs.
    const have = new Set((loaded.model.graph!.input ?? []).map((v) => v.name));
    for (const s of segs) {
      for (const i of s.inputs) assert.ok(have.has(i), `${i} is available before its segment`);
      s.outputs.forEach((o) => have.add(o));
    }
    const samples = [...openCalibration('random:3', loaded.model.graph!, { maxSamples: 3 }).samples()];
    const r = await runSegmented(loaded, samples, { budgetBytes: 8192, device: 'cpu' });
    assert.ok(r && r.segments === segs.length);
    const whole = await createSession(file, { device: 'cpu' });
    for (let k = 0; k < samples.length; k++) {
      const want = await whole.session.run(samples[k]);
      for (const [name, t] of Object.entries(want)) {
        const got = r!.outputs[k][name].data as Float32Array, exp = t.data as Float32Array;
        assert.equal(got.length, exp.length);
        for (let i = 0; i < exp.length; i++) assert.ok(Math.abs(got[i] - exp[i]) <= 1e-4 * (1 + Math.abs(exp[i])), `${name}[${i}]: ${got[i]} vs ${exp[i]}`);
      }
    }
    await whole.session.release();
    assert.deepEqual(fs.readdirSync(dir).sort(), ['t.onnx', 't.onnx.data'], 'segment models are removed');
  });

  it('structured pruning probes shapes and verifies a segment at a time (budget lowered): the same pruned model', async () => {
    const { dir, file } = externalTransformer();
    const out = tmpDir();
    const whole = await pruneModel(file, path.join(out, 'w.onnx'), { method: 'structured', sparsity: 0.5 });
    const seg = await withSegmentBudget(8192, () => pruneModel(file, path.join(out, 's.onnx'), { method: 'structured', sparsity: 0.5 }));
    assert.ok(JSON.parse(fs.readFileSync(seg.report, 'utf8')).verifiedInSegments?.reference > 2);
    // Bias compensation's input means were reduced in the graph, a segment at a time: the same biases.
    assert.ok(seg.compensation && seg.compensation.layers === whole.compensation?.layers, JSON.stringify(seg.compensation));
    assertSameTensors(whole.output, seg.output, /\.compensated$/);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['t.onnx', 't.onnx.data']);
  });

  it('weights held in Constant nodes (older exports) count toward the budget and travel with their reader', () => {
    const m = FIXTURES.transformer.build();
    const g = m.graph!;
    // Every initializer becomes a Constant node at the top of the graph, as paddle2onnx and old exporters write them.
    g.node = [...(g.initializer ?? []).map((t) => ({ op_type: 'Constant', name: `const_${t.name}`, output: [t.name!], attribute: [{ name: 'value', type: 4, t }] })), ...(g.node ?? [])];
    g.initializer = [];
    const segs = planSegments(g, 8192)!;
    assert.ok(segs.length >= 4, `${segs.length} segments`);
    const segOf = new Map(segs.flatMap((s, k) => s.nodes.map((n) => [n, k] as const)));
    for (const s of segs) for (const i of s.inputs) assert.ok(!i.includes('weight') && !i.includes('bias'), `weight '${i}' crosses a cut`);
    const constants = g.node.filter((n) => n.op_type === 'Constant');
    for (const c of constants) {
      const readers = g.node.filter((n) => (n.input ?? []).includes(c.output![0]));
      assert.ok(readers.some((r) => segOf.get(r) === segOf.get(c)), `${c.name} sits with a reader`);
    }
  });

  it('MinMax calibration of a large external-data model runs a segment at a time: the same quantized model', async () => {
    const { file } = externalTransformer();
    const out = tmpDir();
    const whole = await quantizeModel(file, path.join(out, 'w.onnx'), { mode: 'static', calibration: 'random:8', calibrationMethod: 'minmax', smoothing: 'off' });
    const events: string[] = [];
    const seg = await withSegmentBudget(8192, () => quantizeModel(file, path.join(out, 's.onnx'), { mode: 'static', calibration: 'random:8', calibrationMethod: 'minmax', smoothing: 'off' }, { onProgress: (p) => events.push(`${p.stage} ${p.message ?? ''}`) }));
    // Calibration reports its segments ('layers k/n') before its samples.
    assert.ok(events.some((e) => /^calibration layers \d+\/\d+/.test(e)), events.slice(0, 12).join('; '));
    // Activation scales come from ranges onnxruntime computed in differently cut graphs: equal to float rounding.
    assertSameTensors(whole.output, seg.output, /_scale$/);
    assert.ok(Math.abs(Object.values(whole.fidelity)[0].cosine - Object.values(seg.fidelity)[0].cosine) < 1e-4);
  });

  it('a streamed quantization verifies a segment at a time (budget lowered) and measures the same fidelity', async () => {
    const { file } = externalTransformer();
    const out = tmpDir();
    const whole = await quantizeModel(file, path.join(out, 'w.onnx'), { mode: 'weight', bits: 8 });
    const segRun = await withSegmentBudget(8192, () => quantizeModel(file, path.join(out, 's.onnx'), { mode: 'weight', bits: 8 }));
    const seg = JSON.parse(fs.readFileSync(segRun.report, 'utf8')) as QuantizeReport;
    assert.ok(seg.verifiedInSegments && seg.verifiedInSegments.reference > 2 && seg.verifiedInSegments.candidate > 2, JSON.stringify(seg.verifiedInSegments));
    assert.ok(!(JSON.parse(fs.readFileSync(whole.report, 'utf8')) as QuantizeReport).verifiedInSegments);
    const [a, b] = [Object.values(whole.fidelity)[0], Object.values(seg.fidelity)[0]];
    assert.ok(Math.abs(a.cosine - b.cosine) < 1e-5 && Math.abs(a.sqnr - b.sqnr) < 0.01, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  });
});
