import { int8Saturates } from '../../src/core/runtime/cpu-block';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { main } from '../../src/cli/main';
import { compareModels } from '../../src/core/compare';
import { FIXTURES } from '../../src/core/fixtures';
import { summarizeModel } from '../../src/core/inspect';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { analyzeSensitivity } from '../../src/core/sensitivity/analyze';
import { tmpDir } from '../helpers/util';

// QAT handoff with real PyTorch (Debian's python3-torch): plan from QuantLens → fake-quant training of
// samples/tiny_vlm/model.py → ONNX export with Q/DQ → back into QuantLens.
describe('QAT handoff: qat-plan, python/quantlens_qat.py, and the PyTorch round trip', function () {
  this.timeout(300_000);
  const dir = tmpDir();
  const fixture = path.join(dir, 'tiny-vlm.onnx');
  const planFile = path.join(dir, 'plan.json');

  before(() => saveModel(FIXTURES['tiny-vlm'].build(), fixture));

  it('qat-plan lists per module path the bits, per-channel weights and calibrated input ranges, and what stays float', async () => {
    let out = '';
    const code = await main(['qat-plan', fixture, '-o', planFile, '--calibration', 'random:8', '--exclude', 'multi_modal_projector.linear_2', '--json'], { stdout: (s) => (out += s), stderr: () => undefined });
    assert.equal(code, 0);
    const plan = JSON.parse(fs.readFileSync(planFile, 'utf8'));
    assert.deepEqual(JSON.parse(out), plan);
    assert.equal(plan.format, 'quantlens-qat-plan/1');
    const q = plan.modules['vision_model.encoder.layers.0.self_attn.q_proj'];
    // 7-bit weights where this CPU's int8 kernels saturate (no VNNI), as quantize writes them.
    const levels = int8Saturates().saturates ? 63 : 127;
    assert.deepEqual(q.weight, { bits: 8, symmetric: true, perChannel: true, axis: 0, qmin: -levels, qmax: levels });
    assert.ok(q.input.min < 0 && q.input.max > 0 && q.input.scale > 0 && q.input.qmax === 255);
    assert.ok(plan.modules['vision_model.embeddings.patch_embedding'], 'the patch Conv is planned');
    assert.deepEqual(plan.float.map((f: { module: string }) => f.module), ['multi_modal_projector.linear_2']);
    assert.equal(Object.keys(plan.modules).length, 29);
  });

  it('trains model.py with the plan applied, exports Q/DQ, and QuantLens inspects, compares and analyses the result', function () {
    const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
    if (probe.status !== 0) this.skip();
    const qat = path.join(dir, 'tiny-vlm.qat.onnx');
    const plain = path.join(dir, 'tiny-vlm.trained.onnx');
    const r = spawnSync('/usr/bin/python3', [path.resolve('test/python/qat_roundtrip.py'), planFile, qat, plain], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(res.wrapped, 29);
    assert.ok(res.losses.every(Number.isFinite));
    assert.match(res.mismatch, /the plan names \d+ module\(s\) this model does not have: .*language_model\.lm_head/);
    return (async () => {
      const s = summarizeModel(loadModel(qat));
      assert.ok(s.opTypes.QuantizeLinear >= 29 && s.opTypes.DequantizeLinear >= 29, JSON.stringify(s.opTypes));
      const c = await compareModels(plain, qat, { samples: 4, latencyRuns: 1 });
      assert.ok(c.outputs.logits.cosine > 0.99, `QAT vs float export: cosine ${c.outputs.logits.cosine}`);
      const sens = await analyzeSensitivity(qat, { calibration: 'random:4', output: null });
      assert.ok(sens.layers.length > 10, sens.layers.map((l) => `${l.name} ${l.opType}`).join(", "));
    })();
  });
});
