import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { compareModels } from '../../src/core/compare';
import { pruneModel } from '../../src/core/prune/prune-model';
import { tmpDir } from '../helpers/util';

// Fine-tuning handoff with real PyTorch (Debian's python3-torch): samples/tiny_vlm/model.py exported by
// torch.onnx → pruned by QuantLens with --masks → python/quantlens_prune.py applies the masks to the same
// weights in PyTorch → that export must compute exactly what QuantLens's pruned model computes, and the
// removed weights must stay zero through training steps.
describe('pruning handoff: masks and kept channels applied in PyTorch (python/quantlens_prune.py)', function () {
  this.timeout(300_000);
  const dir = tmpDir();
  const exported = path.join(dir, 'tiny-vlm.torch.onnx');
  const state = path.join(dir, 'state.pt');
  const py = (...args: string[]) => {
    const r = spawnSync('/usr/bin/python3', [path.resolve('test/python/prune_roundtrip.py'), ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  };

  before(function () {
    if (spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0) this.skip();
    py('export', exported, state);
  });

  for (const method of ['magnitude', 'structured'] as const) {
    it(`${method}: the PyTorch model with the masks applied equals QuantLens's pruned model, and trains with the zeros held`, async () => {
      const masks = path.join(dir, `${method}.masks.json`);
      const pruned = path.join(dir, `${method}.onnx`);
      const r = await pruneModel(exported, pruned, { method, sparsity: 0.5 }, {}, { masks });
      if (method === 'structured') {
        assert.ok(r.parametersAfter < r.parametersBefore * 0.6, `${r.parametersBefore} -> ${r.parametersAfter}`);
        // PyTorch builds the head reshape targets from Shape→Gather pieces: heads are pruned all the same.
        assert.ok(r.groups!.some((g) => g.width > 1 && g.removed > 0), 'attention heads pruned in the real export');
      }
      const masked = path.join(dir, `${method}.masked.onnx`);
      const res = py('apply', state, masks, masked);
      assert.ok(res.applied >= 12);
      assert.equal(res.zerosHeld, true);
      assert.ok(res.losses.every(Number.isFinite));
      assert.match(res.mismatch, /the masks name \d+ module\(s\) this model does not have: .*language_model/);
      const c = await compareModels(pruned, masked, { samples: 4, latencyRuns: 1 });
      assert.ok(c.outputs.logits.cosine > 0.99999 && c.outputs.logits.maxAbsError < 1e-3, JSON.stringify(c.outputs.logits));
    });
  }
});
