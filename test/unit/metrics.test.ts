import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import path from 'node:path';
import { FidelityAccumulator, nothingComparedText } from '../../src/core/eval/metrics';
import { DataType } from '../../src/core/onnx/dtypes';
import { intAttr } from '../../src/core/onnx/attributes';
import { saveModel } from '../../src/core/onnx/model-io';
import { onnx } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { cli } from '../helpers/cli';
import { vi } from '../helpers/models';
import { tmpDir } from '../helpers/util';
import { slowerWarning } from '../../src/core/eval/op-time';

/** [1, T, C] probabilities whose argmax per step is `seq`. */
const steps = (seq: number[], c = 4) => new ort.Tensor('float32', Float32Array.from(seq.flatMap((k) => Array.from({ length: c }, (_, j) => (j === k ? 0.9 : 0.1 / (c - 1))))), [1, seq.length, c]);

describe('fidelity metrics', function () {
  it('a CTC head: the text, not the steps, decides; the headline is the worst relevant metric', () => {
    const acc = new FidelityAccumulator();
    // "1 2" read with the blank one step later: the same text, a different step sequence.
    acc.add(steps([0, 1, 1, 0, 2, 0, 0, 0]), steps([0, 1, 0, 0, 2, 2, 0, 0]));
    // A space dropped: another text.
    acc.add(steps([0, 1, 0, 3, 0, 2, 0, 0]), steps([0, 1, 0, 0, 0, 2, 0, 0]));
    const m = acc.result();
    assert.equal(m.sequenceAgreement, 0);
    assert.equal(m.ctcAgreement, 0.5);
    assert.equal(m.top1Agreement, 13 / 16);
    assert.deepEqual(m.headline, { metric: 'ctc', value: 0.5 });
    assert.deepEqual(acc.result('top1').headline, { metric: 'top1', value: 13 / 16 });
  });

  it('data-dependent output sizes (detections after NMS): counted, and compared on what both kept', () => {
    const acc = new FidelityAccumulator();
    const boxes = (v: number[]) => new ort.Tensor('float32', Float32Array.from(v), [v.length / 4, 4]);
    acc.add(boxes([0, 0, 10, 10, 5, 5, 20, 20]), boxes([0, 0, 10, 10, 5, 5, 20, 20]));
    // Three boxes against two: the first two are compared, the third counts as a size disagreement.
    acc.add(boxes([1, 1, 9, 9, 2, 2, 8, 8, 50, 50, 60, 60]), boxes([1, 1, 9, 9, 2, 2, 8, 9]));
    const m = acc.result();
    assert.equal(m.sizeAgreement, 0.5);
    assert.equal(m.maxAbsError, 1);
    assert.deepEqual(m.headline, { metric: 'size', value: 0.5 });
    const same = new FidelityAccumulator();
    same.add(boxes([0, 0, 1, 1]), boxes([0, 0, 1, 1]));
    assert.equal(same.result().sizeAgreement, undefined, 'not reported when every size matched');
    assert.throws(() => same.add(boxes([0, 0, 1, 1]), new ort.Tensor('float32', new Float32Array(4), [4])), /output shapes differ/);
  });

  it('a probability map: IoU of the maps thresholded at 0.5, not top-1 along its width', () => {
    const acc = new FidelityAccumulator();
    const map = (v: number[]) => new ort.Tensor('float32', Float32Array.from(v), [1, 1, 2, 4]);
    acc.add(map([0.9, 0.8, 0.1, 0, 0, 0.7, 0.6, 0]), map([0.9, 0.4, 0.2, 0, 0, 0.7, 0.6, 0.55]));
    const m = acc.result();
    // Reference on: 4 pixels; candidate on: 4; both: 3; either: 5.
    assert.equal(m.iou, 3 / 5);
    assert.deepEqual(m.headline, { metric: 'iou', value: 0.6 });
  });

  it('classification logits: top-1 is the headline when it is worse than cosine', () => {
    const acc = new FidelityAccumulator();
    acc.add(new ort.Tensor('float32', Float32Array.of(1, 1.01, 0), [1, 3]), new ort.Tensor('float32', Float32Array.of(1.01, 1, 0), [1, 3]));
    const m = acc.result();
    assert.equal(m.iou, undefined);
    assert.equal(m.sequenceAgreement, undefined);
    assert.deepEqual(m.headline, { metric: 'top1', value: 0 });
  });

  it('features (hidden states, embeddings) are judged by cosine alone: their argmax picks a feature, not an answer', async () => {
    const { isFeatureOutput } = await import('../../src/core/eval/output-kind');
    const graph = {
      node: [
        { op_type: 'LayerNormalization', input: ['h', 'g', 'b'], output: ['n'] }, { op_type: 'Identity', input: ['n'], output: ['out0'] },
        { op_type: 'MatMul', input: ['n', 'w'], output: ['logits'] },
        { op_type: 'SkipLayerNormalization', domain: 'com.microsoft', input: ['h', 'h', 'g', 'b'], output: ['y'] },
      ],
    };
    assert.deepEqual(['last_hidden_state', 'image_embeds', 'pooler_output', 'present.0.key', 'out0', 'y', 'logits', 'softmax_11.tmp_0'].map((n) => isFeatureOutput(graph, n)), [true, true, true, true, true, true, false, false]);
    // Norms as exporters below opset 17 write them: LayerNorm (torchaudio's Conformer ends in one, then a
    // Transpose) and RMSNorm; a scaled score (x / Sqrt of a stored size, attention's) is not one.
    const decomposed = {
      initializer: [{ name: 'g' }, { name: 'b' }, { name: 'eps' }, { name: 'd' }, { name: 'one' }],
      node: [
        { op_type: 'ReduceMean', input: ['h'], output: ['mu'] }, { op_type: 'Sub', input: ['h', 'mu'], output: ['c'] }, { op_type: 'Pow', input: ['c', 'two'], output: ['c2'] },
        { op_type: 'ReduceMean', input: ['c2'], output: ['var'] }, { op_type: 'Add', input: ['var', 'eps'], output: ['ve'] }, { op_type: 'Sqrt', input: ['ve'], output: ['sd'] },
        { op_type: 'Div', input: ['c', 'sd'], output: ['z'] }, { op_type: 'Mul', input: ['z', 'g'], output: ['zg'] }, { op_type: 'Add', input: ['zg', 'b'], output: ['ln'] },
        { op_type: 'Transpose', input: ['ln'], output: ['encoded'] },
        { op_type: 'Sqrt', input: ['var'], output: ['rms'] }, { op_type: 'Div', input: ['one', 'rms'], output: ['inv'] }, { op_type: 'Mul', input: ['h', 'inv'], output: ['hn'] }, { op_type: 'Mul', input: ['g', 'hn'], output: ['rmsnormed'] },
        { op_type: 'Sqrt', input: ['d'], output: ['sqrt_d'] }, { op_type: 'MatMul', input: ['q', 'k'], output: ['qk'] }, { op_type: 'Div', input: ['qk', 'sqrt_d'], output: ['scores'] },
      ],
    };
    assert.deepEqual(['encoded', 'rmsnormed', 'scores'].map((n) => isFeatureOutput(decomposed, n)), [true, true, false]);
    // The same [1, T, C] tensors: as token scores their sequence decides, as features only cosine.
    for (const features of [false, true]) {
      const acc = new FidelityAccumulator(features);
      acc.add(steps([0, 1, 1, 0, 2]), steps([0, 1, 0, 0, 2]));
      const m = acc.result();
      assert.equal(m.headline.metric, features ? 'cosine' : 'ctc'); // (mostly class 0: read as a CTC head)
      assert.equal(m.top1Agreement, features ? null : 0.8);
      assert.equal(m.sequenceAgreement, features ? undefined : 0);
    }
  });

  it('string outputs (labels, normalised text) are equal or not: the share of equal strings, never NaN read as agreement', () => {
    const strings = (v: string[]) => new ort.Tensor('string', v, [v.length]);
    const same = new FidelityAccumulator();
    same.add(strings(['cat', 'dog']), strings(['cat', 'dog']));
    assert.deepEqual([same.result().headline, same.result().cosine], [{ metric: 'top1', value: 1 }, 1]);
    const apart = new FidelityAccumulator();
    apart.add(strings(['cat', 'dog']), strings(['cat', 'dog']));
    apart.add(strings(['cat', 'dog']), strings(['cat', 'cow']));
    const r = apart.result();
    assert.deepEqual([r.headline, r.top1Agreement, r.nonFinite], [{ metric: 'top1', value: 0.75 }, 0.75, undefined]);
    assert.ok(r.sqnr !== Infinity && r.maxAbsError > 0);
  });

  it('class ids and indices (int64 labels, ArgMax, TopK indices): top-1 agreement is the share of equal values, not an argmax over the ids', () => {
    const ids = (v: number[], dims = [v.length]) => new ort.Tensor('int64', BigInt64Array.from(v, BigInt), dims);
    const labels = new FidelityAccumulator();
    labels.add(ids([3, 7, 3, 1]), ids([3, 7, 5, 1]));
    assert.deepEqual([labels.result().top1Agreement, labels.result().headline], [0.75, { metric: 'top1', value: 0.75 }]);
    // The largest id stayed where it was, which an argmax along the last axis would call full agreement.
    const topk = new FidelityAccumulator();
    topk.add(ids([9, 4, 2, 8, 1, 0], [2, 3]), ids([9, 2, 4, 8, 0, 1], [2, 3]));
    assert.equal(topk.result().top1Agreement, 2 / 6);
  });

  it('a slower result says so, with the operator types that grew; a faster one says nothing', () => {
    const p = (ops: Array<[string, number]>) => ({ runs: 5, totalMs: ops.reduce((a, [, ms]) => a + ms, 0), byOpType: ops.map(([op, ms]) => ({ op, ms, nodes: 1 })) });
    const profile = { reference: p([['Conv', 8], ['Add', 3]]), candidate: p([['Conv', 9], ['DequantizeLinear', 6], ['Add', 2]]) };
    const w = slowerWarning('quantized', { reference: 10, candidate: 15 }, profile)!;
    assert.match(w, /median 10\.00 ms -> 15\.00 ms.*DequantizeLinear 0\.00 -> 6\.00, Conv 8\.00 -> 9\.00/);
    assert.doesNotMatch(w, /Add/);
    assert.equal(slowerWarning('quantized', { reference: 10, candidate: 10.4 }, profile), undefined);
    // The Q/DQ onnxruntime left unfused, by name.
    const dq = (node: string, ms: number) => ({ node, op: 'DequantizeLinear', ms });
    const named = { ...profile, candidate: { ...profile.candidate, unfusedQdq: { count: 3, ms: 6, slowest: [dq('a_DequantizeLinear', 3), dq('b_DequantizeLinear', 2), dq('c_DequantizeLinear', 1)] } } };
    assert.match(slowerWarning('quantized', { reference: 10, candidate: 15 }, named)!, /3 QuantizeLinear\/DequantizeLinear onnxruntime could not fuse took 6\.00 ms, the slowest 'a_DequantizeLinear', 'b_DequantizeLinear', 'c_DequantizeLinear'/);
  });
  // A detector that keeps no box on these inputs: cosine 1 and SQNR 200 dB would read as perfect while
  // measuring nothing.
  it('empty outputs: nothing compared is said, never read as perfect fidelity; sizes with nothing in common too', () => {
    const boxes = (n: number) => new ort.Tensor('float32', Float32Array.from({ length: 4 * n }, (_, i) => i + 1), [n, 4]);
    const both = new FidelityAccumulator();
    both.add(boxes(0), boxes(0));
    both.add(boxes(0), boxes(0));
    const m = both.result();
    assert.equal(m.nothing, 'empty');
    assert.equal(m.sizeAgreement, undefined);
    assert.deepEqual(m.headline, { metric: 'size', value: 1 });
    assert.equal(nothingComparedText(m), 'empty in both models on every sample: nothing compared');
    // The float model found three boxes, the candidate none: no value in common, every size differs.
    const one = new FidelityAccumulator();
    one.add(boxes(3), boxes(0));
    const d = one.result();
    assert.equal(d.nothing, 'empty');
    assert.deepEqual(d.headline, { metric: 'size', value: 0 });
    assert.equal(nothingComparedText(d), 'output size agreement 0.00%, no value in common: nothing compared');
    // Empty in one sample only: the other sample's values are compared as before.
    const some = new FidelityAccumulator();
    some.add(boxes(0), boxes(0));
    some.add(boxes(2), boxes(2));
    const s = some.result();
    assert.equal(s.nothing, undefined);
    assert.ok(Math.abs(s.cosine - 1) < 1e-12, `cosine ${s.cosine}`);
    assert.equal(nothingComparedText(s), undefined);
    // A head that outputs zeros whatever the input (torchvision's ViT zero-initialises it): they agree, and
    // that measures nothing.
    const zero = new FidelityAccumulator();
    zero.add(new ort.Tensor('float32', new Float32Array(10), [1, 10]), new ort.Tensor('float32', new Float32Array(10), [1, 10]));
    assert.equal(zero.result().nothing, 'zero');
    assert.equal(nothingComparedText(zero.result()), 'zero in both models on every sample: nothing compared');
  });

  it('an output the float model gives unchanged on every sample (untrained weights) is flagged; one that moves, or one sample, is not', async () => {
    const t = (v: number[]) => new ort.Tensor('float32', Float32Array.from(v), [1, v.length]);
    const still = new FidelityAccumulator();
    for (let k = 0; k < 3; k++) still.add(t([0.5, -1, 2]), t([0.5, -1, 2.1]));
    assert.deepEqual(still.result().unmoved, { samples: 3, by: 0 });
    const once = new FidelityAccumulator();
    once.add(t([0.5, -1, 2]), t([0.5, -1, 2]));
    assert.equal(once.result().unmoved, undefined);
    const moves = new FidelityAccumulator();
    moves.add(t([0.5, -1, 2]), t([0.5, -1, 2]));
    moves.add(t([0.5, -1, 2.01]), t([0.5, -1, 2.01]));
    assert.equal(moves.result().unmoved, undefined);
    // y ignores x; z moves by 1e-5 of x (under 0.1% of its size); w is x itself.
    const dir = tmpDir();
    const file = path.join(dir, 'still.onnx');
    saveModel(onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'g', input: [vi('x', DataType.FLOAT, [4])], output: [vi('y', DataType.FLOAT, [4]), vi('z', DataType.FLOAT, [4]), vi('w', DataType.FLOAT, [4])],
        initializer: [makeTensor('zero', DataType.FLOAT, [], Float32Array.of(0)), makeTensor('tiny', DataType.FLOAT, [], Float32Array.of(1e-5)), makeTensor('b', DataType.FLOAT, [4], Float32Array.of(3, -2, 1, 4))],
        node: [
          { name: 'm0', op_type: 'Mul', input: ['x', 'zero'], output: ['x0'] }, { name: 'a0', op_type: 'Add', input: ['x0', 'b'], output: ['y'] },
          { name: 'm1', op_type: 'Mul', input: ['x', 'tiny'], output: ['x1'] }, { name: 'a1', op_type: 'Add', input: ['x1', 'b'], output: ['z'] },
          { name: 'id', op_type: 'Identity', input: ['x'], output: ['w'] },
        ],
      },
    }), file);
    const j = JSON.parse((await cli(['compare', file, file, '--data', 'random:3', '--json'])).stdout);
    assert.deepEqual(j.outputs.y.unmoved, { samples: 3, by: 0 });
    assert.ok(j.outputs.z.unmoved && j.outputs.z.unmoved.by > 0 && j.outputs.z.unmoved.by < 1e-3, JSON.stringify(j.outputs.z));
    assert.equal(j.outputs.w.unmoved, undefined);
    assert.match(j.warning, /the float model gave 'y', 'z' unchanged on all 3 samples of random:3 \(moving by at most 0\.000\d+% of the largest value\): it does not respond to these inputs \(untrained weights\?\), so agreement with it shows little; pass data it responds to \(--data DIR\)/);
  });

  it('compare on a model whose outputs are empty on the data: each line and the warning say nothing was compared', async () => {
    // Compress keeps the rows of x above a threshold: none of random normal values pass 1e6.
    const model = (threshold: number) => onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'g', input: [vi('x', DataType.FLOAT, [6])], output: [vi('kept', DataType.FLOAT, ['n']), vi('all', DataType.FLOAT, [6])],
        initializer: [makeTensor('t', DataType.FLOAT, [], Float32Array.of(threshold))],
        node: [
          { name: 'gt', op_type: 'Greater', input: ['x', 't'], output: ['mask'] },
          { name: 'keep', op_type: 'Compress', input: ['x', 'mask'], output: ['kept'], attribute: [intAttr('axis', 0)] },
          { name: 'id', op_type: 'Identity', input: ['x'], output: ['all'] },
        ],
      },
    });
    const dir = tmpDir();
    const [none, every] = [path.join(dir, 'none.onnx'), path.join(dir, 'every.onnx')];
    saveModel(model(1e6), none);
    saveModel(model(-1e6), every);
    const r = await cli(['compare', none, none, '--data', 'random:3']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /kept: empty in both models on every sample: nothing compared/);
    assert.match(r.stdout, /all: cosine 1\.00000/);
    // One output was compared: no warning that fidelity measured nothing.
    assert.doesNotMatch(r.stdout + r.stderr, /no output had a value/);
    const j = JSON.parse((await cli(['compare', none, every, '--data', 'random:3', '--json'])).stdout);
    assert.equal(j.outputs.kept.nothing, 'empty');
    assert.equal(j.outputs.kept.headline.metric, 'size');
    assert.equal(j.outputs.kept.headline.value, 0);
    assert.equal(j.outputs.all.nothing, undefined);
    // Every output empty: the warning says fidelity was not measured.
    const only = onnx.ModelProto.create({ ...model(1e6), graph: { ...model(1e6).graph, output: [vi('kept', DataType.FLOAT, ['n'])] } });
    const lone = path.join(dir, 'lone.onnx');
    saveModel(only, lone);
    const w = JSON.parse((await cli(['compare', lone, lone, '--data', 'random:3', '--json'])).stdout);
    // run: an empty output has no mean or range to print.
    assert.match((await cli(['run', lone])).stdout, /kept: float32\[0\] empty\n/);
    assert.match(w.warning, /no output had a value to compare on random:3 \(each was empty or zero in both models, or empty in one\), so fidelity was not measured; pass data on which the model gives outputs \(--data DIR\)/);
  });
});
