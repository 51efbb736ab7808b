import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../src/core/onnx/model-io';
import { GraphView } from '../../src/core/onnx/graph';
import { tensorDims } from '../../src/core/onnx/tensor';
import { weightSource } from '../../src/core/onnx/module-path';
import { modulePathOfNode } from '../../src/core/quant/prepare';
import { analyzeSensitivity } from '../../src/core/sensitivity/analyze';
import { tmpDir } from '../helpers/util';

type Oracle = Record<string, { cls: string; params: Record<string, number[]> }>;
const numel = (d: number[]) => d.reduce((a, b) => a * b, 1);

// Real model code (torchvision's ResNet-18, MobileNetV3-small, EfficientNet-B0, ViT, Swin, ConvNeXt, and
// HF-style decoder code) exported by Debian's python3-torch; the oracle is each model's own named_modules()
// (test/python/module_oracle.py). A weight-bearing node maps to the module that owns its weight when the
// module path we give it exists in named_modules() and owns a parameter of the weight's size.
describe('module paths against named_modules() of real PyTorch exports', function () {
  this.timeout(300_000);
  const dir = tmpDir();
  let exported: Record<string, { opset?: number; folding?: boolean; error?: string }> = {};

  before(function () {
    if (spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision'], { encoding: 'utf8' }).status !== 0) this.skip();
    const r = spawnSync('/usr/bin/python3', [path.resolve('test/python/module_oracle.py'), dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    exported = JSON.parse(r.stdout.trim().split('\n').pop()!);
  });

  it('every weight-bearing node of ≥ 6 architectures maps to the module that owns its weight (≥ 99% each)', () => {
    const names = Object.keys(exported).filter((n) => !exported[n].error);
    assert.ok(names.length >= 7, JSON.stringify(exported));
    const lines: string[] = [];
    for (const name of names) {
      const file = path.join(dir, `${name}.onnx`);
      const oracle: Oracle = JSON.parse(fs.readFileSync(path.join(dir, `${name}.modules.json`), 'utf8'));
      const { model, loc } = loadModel(file);
      const view = new GraphView(model.graph!);
      let total = 0;
      const missed: string[] = [];
      for (const n of model.graph!.node ?? []) {
        const op = n.op_type ?? '';
        const wi = op === 'Gather' ? 0 : ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'].includes(op) ? 1 : -1;
        // A weight stored as it is, or behind the Transpose/Reshape an exporter put before its reader.
        const w = wi >= 0 && n.input?.[wi] ? view.constant(weightSource(view, n.input[wi])) : undefined;
        if (!w || numel(tensorDims(w, loc)) <= 1) continue;
        total++;
        const p = modulePathOfNode(n, view);
        const owner = oracle[p];
        if (!owner || !Object.values(owner.params).some((d) => numel(d) === numel(tensorDims(w, loc)))) missed.push(`${n.name} -> '${p}'${owner ? ` (${owner.cls}: no parameter of ${numel(tensorDims(w, loc))})` : ' (no such module)'}`);
      }
      const share = (total - missed.length) / total;
      lines.push(`${name} (opset ${exported[name].opset}, folding ${exported[name].folding}): ${total - missed.length}/${total} mapped${missed.length ? `; not: ${missed.slice(0, 4).join(', ')}` : ''}`);
      assert.ok(total > 0 && share >= 0.99, `${name}: ${lines[lines.length - 1]}`);
    }
    console.log(lines.map((l) => `      ${l}`).join('\n'));
  });

  it('sensitivity reports list modules of named_modules() that hold weights, never Identity or shape ops', async () => {
    for (const name of ['vit', 'swin', 'tiny_llava', 'mobilenet_v3_small'].filter((n) => exported[n] && !exported[n].error)) {
      const oracle: Oracle = JSON.parse(fs.readFileSync(path.join(dir, `${name}.modules.json`), 'utf8'));
      const r = await analyzeSensitivity(path.join(dir, `${name}.onnx`), { mode: 'weight', calibration: 'random:2', output: null });
      const layers = r.layers.map((l) => l.name);
      assert.ok(layers.length > 0);
      const strangers = layers.filter((l) => !oracle[l]);
      assert.deepEqual(strangers, [], `${name}: layers that are not modules with weights`);
      assert.ok(!layers.some((l) => /Identity|Reshape|Transpose|Concat|Expand|^\//.test(l)), layers.join(', '));
    }
  });
});
