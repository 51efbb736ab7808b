import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cli } from '../helpers/cli';
import { FIXTURES } from '../../src/core/fixtures';
import { saveModel } from '../../src/core/onnx/model-io';
import { tmpDir } from '../helpers/util';


describe('quantlens quantize / compare (CLI contract)', function () {
  this.timeout(120_000);
  const dir = tmpDir();
  const model = path.join(dir, 'mlp.onnx');
  before(() => saveModel(FIXTURES.mlp.build(), model));

  it('quantize --json prints the contract fields and writes the model and its report', async () => {
    const out = path.join(dir, 'mlp-int8.onnx');
    const r = await cli(['quantize', model, '-o', out, '--mode', 'weight', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    for (const k of ['output', 'sizeBefore', 'sizeAfter', 'quantized', 'skipped', 'device', 'seconds']) assert.ok(k in j, `missing ${k}`);
    assert.equal(j.quantized.length, 3);
    assert.ok(j.sizeAfter < j.sizeBefore / 3);
    const report = JSON.parse(fs.readFileSync(`${out}.report.json`, 'utf8'));
    assert.equal(report.options.mode, 'weight');
    assert.equal(report.nodes.length, 3);
    assert.ok(report.fidelity.logits.cosine > 0.999);
  });

  it('compare --json reports cosine, SQNR, max error, top-1 agreement, latency and sizes', async () => {
    const out = path.join(dir, 'mlp-dyn.onnx');
    assert.equal((await cli(['quantize', model, '-o', out, '--mode', 'dynamic'])).code, 0);
    const r = await cli(['compare', model, out, '--samples', '4', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    const m = j.outputs.logits;
    assert.ok(m.cosine > 0.99 && m.sqnr > 20 && m.maxAbsError > 0 && m.top1Agreement >= 0.75, JSON.stringify(m));
    assert.ok(j.latencyMs.reference > 0 && j.latencyMs.candidate > 0);
    assert.ok(j.sizeBytes.candidate < j.sizeBytes.reference);
    assert.equal(j.samples, 4);
  });

  // Bad usage exits 2 (the message, then the usage line); bad input exits 1 in one line.
  const BAD: Array<[string, string[], RegExp, number]> = [
    ['--bits 3', ['--bits', '3'], /--bits must be 4, 8, not '3'/, 2],
    ['--block-size 24', ['--bits', '4', '--block-size', '24'], /--block-size must be 16, 32, 64, 128, 256, not '24'/, 2],
    ['static without calibration', ['--mode', 'static'], /--mode static needs --calibration/, 2],
    ['empty calibration folder', ['--mode', 'static', '--calibration', 'EMPTY'], /calib: no usable calibration files/, 1],
    ['a recipe with a bad key', ['--recipe', 'RECIPE'], /recipe.yaml:2: unknown key 'mod'/, 1],
  ];
  for (const [name, extra, expect, code] of BAD) {
    it(`refuses ${name}: exit ${code}, nothing written`, async () => {
      const d = tmpDir();
      const empty = path.join(d, 'calib');
      fs.mkdirSync(empty);
      const recipe = path.join(d, 'recipe.yaml');
      fs.writeFileSync(recipe, 'rules:\n  fc1: {mod: static}\n');
      const args = extra.map((a) => (a === 'EMPTY' ? empty : a === 'RECIPE' ? recipe : a));
      const before = fs.readdirSync(d).sort();
      const r = await cli(['quantize', model, '-o', path.join(d, 'out.onnx'), ...args]);
      assert.equal(r.code, code, r.stderr);
      assert.equal(r.stderr.trimEnd().split('\n').length, code, r.stderr);
      assert.match(r.stderr, code === 1 ? /^quantlens: error: / : /^quantlens: --/);
      assert.match(r.stderr.split('\n')[0], expect);
      assert.deepEqual(fs.readdirSync(d).sort(), before);
    });
  }

  it('refuses to overwrite the input model', async () => {
    const r = await cli(['quantize', model, '-o', model]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /would overwrite the input model/);
  });
});
