import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURES } from '../../src/core/fixtures';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { onnx } from '../../src/core/onnx/proto';
import { withExtraOutputs } from '../../src/core/runtime/expose-outputs';
import { randomFeeds } from '../../src/core/calib/random-feeds';
import { runModel } from '../../src/core/runtime/run-model';
import { createSession } from '../../src/core/runtime/session';
import { tmpDir } from '../helpers/util';

describe('onnxruntime sessions', () => {
  const file = path.join(tmpDir(), 'vlm.onnx');
  before(() => saveModel(FIXTURES['tiny-vlm'].build(), file));

  it('records the provider that ran and why CUDA was not used', async () => {
    const s = await createSession(file, { device: 'auto' });
    try {
      assert.ok(['cpu', 'cuda'].includes(s.provider));
      if (s.provider === 'cpu') assert.ok(s.fallbackReason && s.fallbackReason.length > 10, 'auto fell back without saying why');
    } finally {
      await s.session.release();
    }
    const cpu = await createSession(file, { device: 'cpu' });
    assert.equal(cpu.provider, 'cpu');
    assert.equal(cpu.fallbackReason, undefined);
    await cpu.session.release();
  });

  it('opens a session from bytes in memory', async () => {
    const s = await createSession(fs.readFileSync(file), { device: 'cpu' });
    assert.deepEqual([...s.session.inputNames], ['pixel_values', 'input_ids']);
    await s.session.release();
  });

  it('exposes intermediate tensors on a copy; the file and the model object are untouched', async () => {
    const before = fs.readFileSync(file);
    const loaded = loadModel(file);
    const inner = ['/multi_modal_projector/linear_2/Add_output_0', '/vision_model/encoder/layers.1/Add_1_output_0'];
    const copy = withExtraOutputs(loaded.model, inner);
    assert.equal(loaded.model.graph!.output!.length, 1);
    const s = await createSession(onnx.ModelProto.encode(copy).finish(), { device: 'cpu' });
    const out = await s.session.run(randomFeeds(loaded.model.graph!));
    await s.session.release();
    assert.deepEqual(out[inner[0]].dims, [1, 16, 96]);
    assert.deepEqual(out[inner[1]].dims, [1, 16, 64]);
    assert.ok(fs.readFileSync(file).equals(before));
  });

  it('runModel reports outputs, latency and the random-input warning', async () => {
    const r = await runModel(file, { device: 'cpu', runs: 2 });
    assert.equal(r.inputs, 'random');
    assert.ok(r.latencyMs > 0);
    assert.ok(r.outputs.logits.finite && r.outputs.logits.std > 0);
  });
});

describe('float16 models', () => {
  it('run with float16 random inputs; outputs are decoded to numbers in reports and comparisons', async () => {
    const { linearReluModel } = await import('../helpers/models');
    const { DataType } = await import('../../src/core/onnx/dtypes');
    const { makeTensor, readTensor } = await import('../../src/core/onnx/tensor');
    const { floatToHalf } = await import('../../src/core/onnx/half');
    const { compareModels } = await import('../../src/core/compare');
    const m = linearReluModel(17);
    const g = m.graph!;
    g.initializer = g.initializer!.map((t) => makeTensor(t.name!, DataType.FLOAT16, t.dims as number[], Uint16Array.from(readTensor(t).data as Float32Array, floatToHalf)));
    g.input![0].type!.tensor_type!.elem_type = DataType.FLOAT16;
    g.output![0].type!.tensor_type!.elem_type = DataType.FLOAT16;
    const file = path.join(tmpDir(), 'fp16.onnx');
    saveModel(m, file);
    const r = await runModel(file, { device: 'cpu', runs: 1 });
    assert.equal(r.outputs.Y.type, 'float16');
    assert.ok(r.outputs.Y.max < 100 && r.outputs.Y.min >= 0, JSON.stringify(r.outputs.Y)); // ReLU outputs, not raw half bits
    const c = await compareModels(file, file, { samples: 2, latencyRuns: 1 });
    assert.ok(Math.abs(c.outputs.Y.cosine - 1) < 1e-12 && c.outputs.Y.maxAbsError === 0);
  });
});
