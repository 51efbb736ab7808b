import assert from 'node:assert/strict';
import { FIXTURES } from '../../src/core/fixtures';
import { quantizeAndMeasure } from '../helpers/quant';

describe('automatic mixed precision (--budget) and progressive quantization', function () {
  this.timeout(300_000);

  it('--budget: meets the budget on a real run with the fewest sensitive layers kept float', async () => {
    const all = await quantizeAndMeasure(FIXTURES['tiny-vlm'].build(), { mode: 'static', calibration: 'random:16' });
    const fullDrop = 1 - all.fidelity.cosine;
    const budget = fullDrop / 3;
    const r = await quantizeAndMeasure(FIXTURES['tiny-vlm'].build(), { mode: 'static', calibration: 'random:16', budget });
    const mp = r.report.mixedPrecision;
    assert.equal(mp.met, true);
    assert.ok(mp.drop <= budget, `drop ${mp.drop} > ${budget}`);
    // measured again on the same data by compare: within the budget
    assert.ok(1 - r.fidelity.cosine <= budget * 1.05, `compare says drop ${1 - r.fidelity.cosine}`);
    const layers = new Set(r.report.nodes.map((n: { modulePath: string }) => n.modulePath)).size;
    assert.ok(mp.keptFloat.length > 0 && mp.keptFloat.length < layers / 3, `${mp.keptFloat.length} layers kept float`);
    // binary search: the next smaller count misses the budget
    const fewer = mp.evaluations.find((e: { keptFloat: number }) => e.keptFloat === mp.keptFloat.length - 1);
    if (fewer) assert.ok(fewer.drop > budget);
    assert.ok(r.report.nodes.some((n: { skipped?: string }) => /kept float to stay within the budget/.test(n.skipped ?? '')));
    // it beats a fixed rule that keeps the same number of layers float, taken in graph order
    const fixed = await quantizeAndMeasure(FIXTURES['tiny-vlm'].build(), { mode: 'static', calibration: 'random:16', exclude: mp.keptFloat.map((_: string, i: number) => all.report.nodes.filter((n: { how?: string }) => n.how)[i].modulePath) });
    assert.ok(1 - fixed.fidelity.cosine > 1 - r.fidelity.cosine, 'sensitivity-chosen layers beat the first layers in graph order');
  });

  it('--progressive: least sensitive first, the curve is monotone in layers quantized, stops at the budget', async () => {
    const r = await quantizeAndMeasure(FIXTURES.transformer.build(), { mode: 'weight', bits: 4, calibration: 'random:8', progressive: true, progressiveSteps: 4, budget: 0.004 });
    const curve = r.report.progressive as Array<{ layersQuantized: number; drop: number; sizeBytes: number }>;
    assert.ok(curve.length >= 2);
    for (let i = 1; i < curve.length; i++) {
      assert.ok(curve[i].layersQuantized > curve[i - 1].layersQuantized);
      assert.ok(curve[i].sizeBytes < curve[i - 1].sizeBytes);
    }
    const within = curve.filter((s) => s.drop <= 0.004);
    assert.equal(r.result.quantized.length, within.length ? within[within.length - 1].layersQuantized : 0);
  });

  it('says so when a budget cannot be met', async () => {
    const r = await quantizeAndMeasure(FIXTURES.mlp.build(), { mode: 'weight', calibration: 'random:4', budget: 0 });
    assert.deepEqual(r.result.quantized, []);
    assert.ok(r.result.warnings.some((w: string) => /the budget 0 cannot be met with any layer quantized, so every layer stays float; best found: drop [\d.e-]+ with 2 of 3 layers float/.test(w)), r.result.warnings.join('\n'));
  });
});
