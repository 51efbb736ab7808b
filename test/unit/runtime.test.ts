import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURES } from '../../src/core/fixtures';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { onnx } from '../../src/core/onnx/proto';
import { withExtraOutputs } from '../../src/core/runtime/expose-outputs';
import { randomFeeds } from '../../src/core/runtime/feeds';
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
