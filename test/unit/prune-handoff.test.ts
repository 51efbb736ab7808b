import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
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

  it('structured through a ConvTranspose2d: its kept channels (outputs on weight axis 1) apply in PyTorch and give the same model', async () => {
    const model = path.join(dir, 'decoder.onnx');
    py('decoder-export', model, path.join(dir, 'decoder.pt'));
    const masks = path.join(dir, 'decoder.masks.json');
    const pruned = path.join(dir, 'decoder.pruned.onnx');
    const r = await pruneModel(model, pruned, { method: 'structured', sparsity: 0.5, roundTo: 1 }, {}, { masks });
    assert.ok(r.layers.some((l) => l.opType === 'ConvTranspose' && l.shapeAfter[0] === 8 && l.shapeAfter[1] === 6), JSON.stringify(r.layers));
    const res = py('decoder-apply', path.join(dir, 'decoder.pt'), masks, path.join(dir, 'decoder.masked.onnx'));
    assert.ok(res.applied.includes('up'));
    const c = await compareModels(pruned, path.join(dir, 'decoder.masked.onnx'), { samples: 4, latencyRuns: 1 });
    assert.ok(c.outputs.logits.cosine > 0.99999 && c.outputs.logits.maxAbsError < 1e-4, JSON.stringify(c.outputs.logits));
  });

  it('structured --prune-norm: norm scales, embedding columns and norm statistics follow the kept hidden channels in PyTorch, and the finalized export prunes back to the same model', async () => {
    const masks = path.join(dir, 'norm.masks.json');
    const pruned = path.join(dir, 'norm.onnx');
    const r = await pruneModel(exported, pruned, { method: 'structured', sparsity: 0.5, pruneNormalized: true }, {}, { masks });
    // torch.onnx shares equal LayerNorm scales through Identity nodes: the hidden sizes are pruned all the same.
    assert.ok(r.parametersAfter < r.parametersBefore * 0.35, `${r.parametersBefore} -> ${r.parametersAfter}`);
    const doc = JSON.parse(fs.readFileSync(masks, 'utf8'));
    assert.equal(Object.keys(doc.norms).length, 10); // 5 LayerNorms (vision) + 5 RMSNorms (language)
    assert.deepEqual(doc.params['language_model.model.embed_tokens.weight'].shape, [128, 96]);
    assert.equal(doc.params['language_model.model.embed_tokens.weight'].axis, 1);
    assert.equal(doc.params['vision_model.encoder.layers.1.layer_norm2.bias'].kept.length, 32);
    const wide = path.join(dir, 'norm.wide.onnx');
    const final = path.join(dir, 'norm.final.onnx');
    const res = py('norms', state, masks, wide, final);
    assert.equal(res.zerosHeld, true);
    assert.ok(res.normScaleMoved > 0, 'kept norm scales train');
    // The PyTorch model with the masks and restricted norms computes what QuantLens's pruned model does.
    const c = await compareModels(pruned, wide, { samples: 4, latencyRuns: 1 });
    assert.ok(c.outputs.logits.cosine > 0.99999 && c.outputs.logits.maxAbsError < 1e-3, JSON.stringify(c.outputs.logits));
    // The finalized export (full width, zeros in place) pruned again at the same sparsity: the same model.
    const again = await pruneModel(final, path.join(dir, 'norm.again.onnx'), { method: 'structured', sparsity: 0.5, pruneNormalized: true });
    assert.equal(again.parametersAfter, r.parametersAfter);
    const c2 = await compareModels(pruned, again.output, { samples: 4, latencyRuns: 1 });
    assert.ok(c2.outputs.logits.cosine > 0.99999 && c2.outputs.logits.maxAbsError < 1e-3, JSON.stringify(c2.outputs.logits));
  });
});
