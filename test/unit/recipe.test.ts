import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURES } from '../../src/core/fixtures';
import { loadRecipe } from '../../src/core/quant/policy';
import { quantizeAndMeasure } from '../helpers/quant';
import { tmpDir } from '../helpers/util';

const write = (text: string, ext = 'yaml') => {
  const f = path.join(tmpDir(), `recipe.${ext}`);
  fs.writeFileSync(f, text);
  return f;
};

describe('per-module policies: --exclude and --recipe', function () {
  this.timeout(120_000);

  it('applies a VLM recipe: vision static INT8, projector float, language INT4 GPTQ', async () => {
    const recipe = write([
      'rules:',
      '  vision_model.**: {mode: static, bits: 8}',
      '  multi_modal_projector.**: {keep: float}',
      '  language_model.**: {mode: weight, bits: 4, algorithm: gptq}',
      '',
    ].join('\n'));
    const r = await quantizeAndMeasure(FIXTURES['tiny-vlm'].build(), { mode: 'weight', recipe, calibration: 'random:16' });
    const nodes = r.report.nodes as Array<{ modulePath: string; how?: string; skipped?: string; opType: string }>;
    const inGroup = (g: string) => nodes.filter((n) => n.modulePath.startsWith(g));
    assert.ok(inGroup('vision_model').some((n) => n.how?.startsWith('static QDQ')), 'vision is static');
    assert.ok(inGroup('multi_modal_projector').every((n) => !n.how), 'projector stays float');
    assert.ok(inGroup('multi_modal_projector').some((n) => /kept float by recipe rule 'multi_modal_projector.\*\*' \(line 3\)/.test(n.skipped ?? '')));
    const lm = inGroup('language_model.model.layers').filter((n) => n.opType === 'MatMul' && n.how);
    assert.ok(lm.length >= 14 && lm.every((n) => /MatMulNBits int4 block 32 \(gptq/.test(n.how!)), JSON.stringify(lm.slice(0, 2)));
    assert.ok(r.fidelity.cosine > 0.98, `cosine ${r.fidelity.cosine}`);
  });

  it('--exclude keeps matching modules float, by module path or node name', async () => {
    const r = await quantizeAndMeasure(FIXTURES.transformer.build(), { mode: 'weight', exclude: ['layers.0.**', '/lm_head/MatMul'] });
    const skipped = r.result.skipped.map((s) => s.node);
    assert.ok(skipped.includes('/layers.0/self_attn/q_proj/MatMul'));
    assert.ok(skipped.includes('/lm_head/MatMul'));
    assert.ok(r.result.quantized.includes('/layers.1/self_attn/q_proj/MatMul'));
  });

  it('points at the bad line of a recipe', () => {
    assert.throws(() => loadRecipe(write('rules:\n  vision_model.**: {mode: static}\n  language_model.**: {bitz: 4}\n')), /recipe.yaml:3: unknown key 'bitz'/);
    assert.throws(() => loadRecipe(write('vision_model.**:\n  bits: 3\n')), /recipe.yaml:2: 'bits' must be 8 or 4, not 3/);
    assert.throws(() => loadRecipe(write('rules: [1, 2\n')), /recipe.yaml:\d+: /);
    assert.throws(() => loadRecipe(write('{"lm_head": {"mode": "fast"}}', 'json')), /recipe.json:1: 'mode' must be weight, dynamic or static/);
    assert.deepEqual(loadRecipe(write('{"lm_head": {"keep": "float"}}', 'json')).rules.map((r) => r.pattern), ['lm_head']);
  });
});
