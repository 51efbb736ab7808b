import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { FIXTURES } from '../../src/core/fixtures';
import { summarizeModel } from '../../src/core/inspect';
import { loadModel } from '../../src/core/onnx/model-io';
import { modulePathFromNodeName } from '../../src/core/onnx/module-path';
import type { ModelProto } from '../../src/core/onnx/proto';
import { feedsFor, runOrt, tmpDir } from '../helpers/util';

const LAYER_OPS = new Set(['MatMul', 'Gemm', 'Conv', 'LayerNormalization']);
const layerPaths = (m: ModelProto) =>
  [...new Set(m.graph!.node!.filter((n) => LAYER_OPS.has(n.op_type!)).map((n) => `${modulePathFromNodeName(n.name!)}:${n.op_type}`))].sort();

// samples/tiny_vlm/model.py is the "training code" the editor sits beside: a real PyTorch export of it
// must name its layers exactly as the tiny-vlm fixture does. Runs where Debian's python3-torch is installed.
describe('samples/tiny_vlm/model.py exported by real PyTorch', function () {
  this.timeout(180_000);
  let exported: string | undefined;

  before(function () {
    const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch, onnx'], { encoding: 'utf8' });
    if (probe.status !== 0) this.skip();
    exported = path.join(tmpDir(), 'torch-vlm.onnx');
    const r = spawnSync('/usr/bin/python3', [path.resolve('samples/tiny_vlm/model.py'), exported], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('has the same layer module paths as the tiny-vlm fixture', () => {
    assert.deepEqual(layerPaths(loadModel(exported!).model), layerPaths(FIXTURES['tiny-vlm'].build()));
  });

  it('loads, describes and runs in onnxruntime', async () => {
    const m = loadModel(exported!);
    const s = summarizeModel(m);
    assert.deepEqual(s.inputs.map((i) => i.name), ['pixel_values', 'input_ids']);
    assert.ok(s.parameters > 300_000);
    const out = await runOrt(exported!, feedsFor(m.model.graph!));
    assert.equal(out.logits.length, 24 * 128);
  });
});
