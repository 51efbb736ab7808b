import assert from 'node:assert/strict';
import path from 'node:path';
import { FIXTURES, FIXTURE_NAMES } from '../../src/core/fixtures';
import { summarizeModel } from '../../src/core/inspect';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { modulePathFromNodeName } from '../../src/core/onnx/module-path';
import { onnx } from '../../src/core/onnx/proto';
import { feedsFor, runOrt, tmpDir } from '../helpers/util';

describe('fixtures', () => {
  const dir = tmpDir();

  for (const name of FIXTURE_NAMES) {
    it(`${name} is deterministic, loads, and runs in onnxruntime with finite outputs`, async () => {
      const file = path.join(dir, `${name}.onnx`);
      saveModel(FIXTURES[name].build(), file);
      const again = onnx.ModelProto.encode(FIXTURES[name].build()).finish();
      const loaded = loadModel(file);
      assert.deepEqual(Buffer.from(onnx.ModelProto.encode(loaded.model).finish()), Buffer.from(again), 'two builds differ');
      const out = await runOrt(file, feedsFor(loaded.model.graph!));
      const [logits] = Object.values(out);
      assert.ok(logits.length > 0);
      assert.ok(logits.every(Number.isFinite), 'non-finite output');
      const std = Math.sqrt(logits.reduce((a, v) => a + v * v, 0) / logits.length);
      assert.ok(std > 0.05 && std < 50, `output scale ${std} is not that of a working network`);
      assert.ok(summarizeModel(loaded).parameters > 1000);
    });
  }

  it('inspect detects the VLM module groups (and none in a CNN)', () => {
    const dir2 = tmpDir();
    saveModel(FIXTURES['tiny-vlm'].build(), path.join(dir2, 'v.onnx'));
    saveModel(FIXTURES.cnn.build(), path.join(dir2, 'c.onnx'));
    const groups = summarizeModel(loadModel(path.join(dir2, 'v.onnx'))).moduleGroups;
    assert.deepEqual(groups.map((g) => [g.name, g.role]), [['vision_model', 'vision'], ['multi_modal_projector', 'projector'], ['language_model', 'language']]);
    assert.deepEqual(summarizeModel(loadModel(path.join(dir2, 'c.onnx'))).moduleGroups, []);
  });

  it('tiny-vlm has the three module groups in its node names, and torch-style weight names', () => {
    const model = FIXTURES['tiny-vlm'].build();
    const groups = new Set(model.graph!.node!.map((n) => modulePathFromNodeName(n.name!).split('.')[0]));
    for (const g of ['vision_model', 'multi_modal_projector', 'language_model']) assert.ok(groups.has(g), `missing ${g}`);
    const names = model.graph!.node!.map((n) => n.name!);
    assert.ok(names.includes('/vision_model/encoder/layers.0/self_attn/q_proj/MatMul'));
    assert.ok(names.includes('/language_model/model/layers.1/mlp/down_proj/MatMul'));
    const inits = model.graph!.initializer!.map((t) => t.name!);
    assert.ok(inits.includes('vision_model.encoder.layers.0.self_attn.q_proj.bias'));
    assert.ok(inits.some((n) => n.startsWith('onnx::MatMul_')), 'transposed Linear weights are renamed as torch does');
  });
});
