import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { loadModel } from '../../src/core/onnx/model-io';
import { pruneModel } from '../../src/core/prune/prune-model';
import { randomFeeds } from '../../src/core/calib/random-feeds';
import { assertDeadChannelsPruneExactly } from '../helpers/dead-channels';
import { runOrt, tmpDir } from '../helpers/util';

// Structured pruning on what torch.onnx really writes for common architectures (test/python/torch_models.py,
// Debian's python3-torch): ResNet basic blocks, MobileNet inverted residuals with squeeze-excite, a ViT with a
// fused q/k/v projection and a class token, a YOLO-style C2f neck with torch.chunk and an Upsample, a
// diffusion-style UNet whose GroupNorms torch writes as Reshape, InstanceNormalization and Reshape back, with
// diffusers' attention (scores by baddbmm over torch.empty) and a GEGLU feed-forward, and ResNeXt/RegNet-style
// bottlenecks whose 3x3 convs are grouped, and torchvision's ShuffleNetV2 (channel shuffles).
describe('structured pruning of real torch.onnx exports', function () {
  this.timeout(300_000);
  const dir = tmpDir();
  let files: Record<string, string> = {};

  before(function () {
    if (spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision'], { encoding: 'utf8' }).status !== 0) this.skip();
    const r = spawnSync('/usr/bin/python3', [path.resolve('test/python/torch_models.py'), dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    files = JSON.parse(r.stdout.trim().split('\n').pop()!);
  });

  const cases: Array<{ model: string; norm?: boolean; sparsity?: number; kept: number; allowed: RegExp; cosine?: number }> = [
    { model: 'resnet', kept: 0.6, allowed: /model output/ },
    { model: 'mobilenet', kept: 0.75, allowed: /model output/ },
    { model: 'vit', kept: 0.8, allowed: /model output|reduces over the channels/ },
    { model: 'vit', norm: true, kept: 0.65, allowed: /model output/ },
    // 20%: no head goes (4 heads) while the hidden size shrinks; the head merge's computed size must stay.
    { model: 'vit', norm: true, sparsity: 0.2, kept: 0.75, allowed: /model output/ },
    { model: 'yolo', kept: 0.65, allowed: /model output/ },
    // GroupNorm's channels go a whole group at a time (its Reshape back to Shape(x) follows by itself), and
    // diffusers-style heads with them (the scores' ConstantOfShape follows q). Its random weights give every
    // group an equal share, so a third of them gone moves the output further (cosine 0.65); the dead-channel
    // oracle above is what shows the pruning exact. The LayerNorms keep the attention's width.
    { model: 'unet', kept: 0.7, allowed: /model output|over the channels/, cosine: 0.5 },
    // Grouped 3x3 convs (groups of 8): a position goes from every group, so each keeps as many.
    { model: 'resnext', kept: 0.65, allowed: /model output/ },
    // Channel shuffles tie a stage's blocks into one family of a few position sets: at 30% some keep all.
    { model: 'shufflenet', kept: 0.8, allowed: /model output|too small to prune/ },
  ];
  for (const model of ['resnet', 'mobilenet', 'vit', 'yolo', 'unet', 'resnext', 'shufflenet']) {
    for (const share of [0.1, 0.3]) {
      it(`${model}: dead-channel oracle at ${share * 100}% (dead channels pruned, outputs unchanged)`, async () => {
        console.log(`      ${await assertDeadChannelsPruneExactly(files[model], tmpDir(), share)}`);
      });
    }
  }
  for (const c of cases) {
    it(`${c.model}${c.norm ? ' --prune-norm' : ''} at ${(c.sparsity ?? 0.3) * 100}%: every family but the outputs is pruned, the result runs at another batch size and stays close`, async () => {
      const out = path.join(dir, `${c.model}${c.norm ? '.norm' : ''}.${c.sparsity ?? 0.3}.pruned.onnx`);
      const r = await pruneModel(files[c.model], out, { method: 'structured', sparsity: c.sparsity ?? 0.3, pruneNormalized: !!c.norm });
      assert.ok(r.parametersAfter < r.parametersBefore * c.kept, `${r.parametersBefore} -> ${r.parametersAfter}`);
      const held = r.groups!.filter((g) => g.skipped && !c.allowed.test(g.skipped));
      assert.deepEqual(held.map((g) => `${g.layers.join(',')}: ${g.skipped}`), []);
      assert.ok(Object.values(r.fidelity)[0].cosine > (c.cosine ?? 0.9), JSON.stringify(r.fidelity));
      // The batch axis stays dynamic: shapes frozen by pruning are only those of the channels.
      const feeds = randomFeeds(loadModel(files[c.model]).model.graph!, { batch: 3, seed: 4 });
      const [a, b] = [await runOrt(files[c.model], feeds), await runOrt(out, feeds)];
      assert.equal(b.y.length, a.y.length);
    });
  }
});
