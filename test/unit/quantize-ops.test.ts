import assert from 'node:assert/strict';
import { DataType } from '../../src/core/onnx/dtypes';
import { AttributeType, onnx, type NodeProto } from '../../src/core/onnx/proto';
import { makeTensor, readTensor } from '../../src/core/onnx/tensor';
import { floatToHalf } from '../../src/core/onnx/half';
import { intAttr } from '../../src/core/onnx/attributes';
import { identitySharedBiasModel, vi } from '../helpers/models';
import { quantizeAndMeasure } from '../helpers/quant';
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { quantizeModel, type QuantizeReport } from '../../src/core/jobs/quantize-model';
import { compareModels } from '../../src/core/compare';
import { tmpDir } from '../helpers/util';
import { Rng } from '../../src/core/calib/rng';
import { FIXTURES } from '../../src/core/fixtures';
import { openCalibration } from '../../src/core/calib/data';
import { profiledKernels } from '../../src/core/runtime/profile';
import { analyzeSensitivity } from '../../src/core/sensitivity/analyze';
import { ModelEditor } from '../../src/core/onnx/editor';
import { summarizeModel } from '../../src/core/inspect';
import { upgradeBlocker, upgradeToOpset10, upgradeToOpset11 } from '../../src/core/onnx/opset-upgrade';

// One tiny graph per op, quantized in each mode: count the inserted nodes and check closeness to the
// float model, the habit of onnxruntime's test_op_* tests.
const rnd = (n: number, seed: number, scale = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * scale);
const t = (name: string, dims: number[], seed: number, scale = 1) => makeTensor(name, DataType.FLOAT, dims, rnd(dims.reduce((a, b) => a * b, 1), seed, scale));

function model(nodes: NodeProto[], inits: ReturnType<typeof t>[], inputs: ReturnType<typeof vi>[], outputs: ReturnType<typeof vi>[], opset = 17) {
  return onnx.ModelProto.create({ ir_version: 8, opset_import: [{ domain: '', version: opset }], graph: { name: 'g', node: nodes, initializer: inits, input: inputs, output: outputs } });
}

const matmul = () => model([{ name: '/fc/MatMul', op_type: 'MatMul', input: ['x', 'fc.weight'], output: ['y'] }], [t('fc.weight', [64, 32], 1, 0.2)], [vi('x', 1, ['n', 64])], [vi('y', 1, ['n', 32])]);
const gemm = () => model([{ name: '/fc/Gemm', op_type: 'Gemm', input: ['x', 'fc.weight', 'fc.bias'], output: ['y'], attribute: [{ name: 'transB', type: AttributeType.INT, i: 1 }] }],
  [t('fc.weight', [32, 64], 2, 0.2), t('fc.bias', [32], 3, 0.1)], [vi('x', 1, ['n', 64])], [vi('y', 1, ['n', 32])]);
const conv = () => model([
  { name: '/conv/Conv', op_type: 'Conv', input: ['x', 'conv.weight', 'conv.bias'], output: ['c'], attribute: [{ name: 'kernel_shape', type: AttributeType.INTS, ints: [3, 3] }, { name: 'pads', type: AttributeType.INTS, ints: [1, 1, 1, 1] }] },
  { name: '/relu/Relu', op_type: 'Relu', input: ['c'], output: ['r'] },
  { name: '/pool/MaxPool', op_type: 'MaxPool', input: ['r'], output: ['p'], attribute: [{ name: 'kernel_shape', type: AttributeType.INTS, ints: [2, 2] }, { name: 'strides', type: AttributeType.INTS, ints: [2, 2] }] },
  { name: '/flat/Flatten', op_type: 'Flatten', input: ['p'], output: ['y'] },
], [t('conv.weight', [8, 3, 3, 3], 4, 0.3), t('conv.bias', [8], 5, 0.1)], [vi('x', 1, ['n', 3, 8, 8])], [vi('y', 1, ['n', 128])]);
const embedding = () => model([{ name: '/embed/Gather', op_type: 'Gather', input: ['embed.weight', 'ids'], output: ['y'] }], [t('embed.weight', [50, 16], 6)], [vi('ids', DataType.INT64, ['n', 4])], [vi('y', 1, ['n', 4, 16])]);
const addConcat = () => model([
  { name: '/a/Add', op_type: 'Add', input: ['x', 'x2'], output: ['s'] },
  { name: '/c/Concat', op_type: 'Concat', input: ['s', 'x'], output: ['y'], attribute: [{ name: 'axis', type: AttributeType.INT, i: 1 }] },
], [], [vi('x', 1, ['n', 16]), vi('x2', 1, ['n', 16])], [vi('y', 1, ['n', 32])]);

describe('quantize, op by op (weight / dynamic / static)', function () {
  this.timeout(120_000);

  it('MatMul, weight INT8: one DequantizeLinear on an int8 per-channel weight', async () => {
    const r = await quantizeAndMeasure(matmul(), { mode: 'weight', bits: 8, weightFormat: 'dequantize' });
    assert.deepEqual(r.ops, { DequantizeLinear: 1, MatMul: 1 });
    assert.ok(r.fidelity.cosine > 0.9999, `cosine ${r.fidelity.cosine}`);
    assert.deepEqual(r.result.quantized, ['/fc/MatMul']);
  });

  it('MatMul, weight INT4: MatMulNBits replaces MatMul; GPTQ beats RTN on output error', async () => {
    const rtn = await quantizeAndMeasure(matmul(), { mode: 'weight', bits: 4, blockSize: 32 }, 'random:16');
    assert.deepEqual(rtn.ops, { 'com.microsoft.MatMulNBits': 1 });
    assert.ok(rtn.fidelity.cosine > 0.99, `cosine ${rtn.fidelity.cosine}`);
    const gptq = await quantizeAndMeasure(matmul(), { mode: 'weight', bits: 4, blockSize: 32, algorithm: 'gptq', calibration: 'random:16' });
    assert.deepEqual(gptq.ops, { 'com.microsoft.MatMulNBits': 1 });
    assert.ok(gptq.fidelity.sqnr > rtn.fidelity.sqnr, `GPTQ ${gptq.fidelity.sqnr} dB vs RTN ${rtn.fidelity.sqnr} dB`);
    const act = await quantizeAndMeasure(matmul(), { mode: 'weight', bits: 4, blockSize: 32, algorithm: 'gptq', gptqActOrder: true, calibration: 'random:16' });
    assert.ok(act.fidelity.sqnr > rtn.fidelity.sqnr, `GPTQ act-order ${act.fidelity.sqnr} dB vs RTN ${rtn.fidelity.sqnr} dB`);
  });

  it('Gemm with transB, weight INT8 (axis 0) and dynamic INT8 (DynamicQuantizeLinear + MatMulInteger + bias Add)', async () => {
    const w = await quantizeAndMeasure(gemm(), { mode: 'weight', weightFormat: 'dequantize' });
    assert.deepEqual(w.ops, { DequantizeLinear: 1, Gemm: 1 });
    assert.ok(w.fidelity.cosine > 0.9999);
    const d = await quantizeAndMeasure(gemm(), { mode: 'dynamic' });
    assert.deepEqual(d.ops, { DynamicQuantizeLinear: 1, MatMulInteger: 1, Cast: 1, Mul: 2, Add: 1 });
    assert.ok(d.fidelity.cosine > 0.999, `cosine ${d.fidelity.cosine}`);
  });

  it('Gemm with a vocabulary-sized bias, static INT8 with one scale for the weight: its scale covers every output\'s bias floor', async () => {
    // 250k outputs, as an LM head over a large vocabulary: the tensor's scale is the largest of the
    // per-output floors, which was taken by spreading them into Math.max (past about 125k arguments,
    // V8 throws "Maximum call stack size exceeded").
    const wide = model([{ name: '/head/Gemm', op_type: 'Gemm', input: ['x', 'head.weight', 'head.bias'], output: ['y'], attribute: [{ name: 'transB', type: AttributeType.INT, i: 1 }] }],
      [t('head.weight', [250_000, 2], 7, 0.5), t('head.bias', [250_000], 8, 0.1)], [vi('x', 1, ['n', 2])], [vi('y', 1, ['n', 250_000])]);
    const r = await quantizeAndMeasure(wide, { mode: 'static', calibration: 'random:4', perChannel: false, smoothing: 'off' });
    assert.deepEqual(r.result.quantized, ['/head/Gemm']);
    assert.ok(r.fidelity.cosine > 0.99, `cosine ${r.fidelity.cosine}`);
  });

  it('MatMul, dynamic INT8: the weight shrinks 4x', async () => {
    const d = await quantizeAndMeasure(matmul(), { mode: 'dynamic' });
    assert.equal(d.ops.MatMulInteger, 1);
    assert.ok(d.result.weightBytes.before / d.result.weightBytes.after > 3.5);
  });

  it('Conv, dynamic INT8: DynamicQuantizeLinear + ConvInteger with uint8 per-channel weights, as onnxruntime writes it', async () => {
    const d = await quantizeAndMeasure(conv(), { mode: 'dynamic' });
    assert.deepEqual(d.ops, { DynamicQuantizeLinear: 1, ConvInteger: 1, Cast: 1, Mul: 2, Add: 1, Relu: 1, MaxPool: 1, Flatten: 1 });
    assert.ok(d.fidelity.cosine > 0.999, `cosine ${d.fidelity.cosine}`);
    assert.ok(d.result.weightBytes.before / d.result.weightBytes.after > 2.5);
    const q = loadModel(d.output).model.graph!;
    const w = q.initializer!.find((x) => x.name === q.node!.find((n) => n.op_type === 'ConvInteger')!.input![1])!;
    assert.equal(w.data_type, DataType.UINT8);
  });

  it('Conv net, dynamic INT8: under --objective latency its convs are timed as ConvInteger and as float, the faster written; --objective size quantizes them all', async () => {
    const { FIXTURES } = await import('../../src/core/fixtures');
    const timed = await quantizeAndMeasure(FIXTURES.cnn.build(), { mode: 'dynamic' });
    const choice = timed.result.dynamicConvs!;
    assert.deepEqual(choice.candidates.map((c) => c.convs), ['all', 'none']); // no grouped conv in this net
    const [all, none] = choice.candidates;
    // the one written is the fastest, or one that quantizes more within the noise of it
    const chosen = choice.candidates.find((c) => c.convs === choice.chosen)!;
    assert.ok(chosen.latencyMs <= Math.min(all.latencyMs, none.latencyMs) * (1 + Math.max(0.05, choice.spread)) + 1e-9, JSON.stringify(choice));
    assert.equal(timed.ops.ConvInteger ?? 0, choice.chosen === 'all' ? 2 : 0);
    assert.equal(timed.result.quantized.length, chosen.nodes);
    if (choice.chosen === 'none') assert.ok(timed.result.skipped.filter((s) => /kept float for speed: onnxruntime's ConvInteger ran slower/.test(s.reason)).length === 2);
    // Dynamic convs written though not faster than float: the warning points at static mode.
    const advised = timed.result.warnings.some((w) => /convs is not faster than float on this CPU .*--mode static \(calibrated\) runs convs as integer kernels/.test(w));
    assert.equal(advised, choice.chosen !== 'none' && chosen.latencyMs >= choice.floatMs, JSON.stringify(timed.result.warnings));
    // Both convs kept float: they hold 94% of the weights (3x3 kernels 16x3 and 32x16 against fc's 10x32),
    // so the model is barely smaller, and the warning says so and points at static mode.
    const floatConvs = timed.result.warnings.some((w) => /^dynamic INT8 kept 2 convs float for speed, 94% of the weights it would quantize .*--mode static \(calibrated\)/.test(w));
    assert.equal(floatConvs, choice.chosen === 'none', JSON.stringify(timed.result.warnings));
    const size = await quantizeAndMeasure(FIXTURES.cnn.build(), { mode: 'dynamic', objective: 'size' });
    assert.equal(size.result.dynamicConvs, undefined);
    assert.equal(size.ops.ConvInteger, 2);
  });

  it('Conv, dynamic INT8 below opset 11: DynamicQuantizeLinear built from opset-10 ops gives the same outputs', async () => {
    const at = async (opset: number) => {
      const m = conv();
      m.opset_import = [{ domain: '', version: opset }];
      return quantizeAndMeasure(m, { mode: 'dynamic' });
    };
    const [v13, v10, v9] = [await at(13), await at(10), await at(9)];
    assert.equal(v10.ops.DynamicQuantizeLinear, undefined);
    assert.deepEqual([v10.ops.ConvInteger, v10.ops.QuantizeLinear, v10.ops.ReduceMin, v10.ops.ReduceMax], [1, 2, 1, 1]);
    assert.match(v9.result.warnings.join('\n'), /upgraded from opset 9 to 10/);
    for (const v of [v10, v9]) {
      const same = await compareModels(v13.output, v.output, { data: 'random:8', samples: 8, latencyRuns: 1 });
      assert.equal(Object.values(same.outputs)[0].maxAbsError, 0, 'the same quantization as DynamicQuantizeLinear');
    }
  });

  for (const opset of [7, 8, 9]) {
    it(`an opset-${opset} export (BatchNormalization, Upsample${opset < 9 ? ' with scales in an attribute' : ''}) is raised to 11 for static INT8 and to 10 for dynamic`, async () => {
      const ints = (name: string, v: number[]) => ({ name, type: AttributeType.INTS, ints: v });
      const k3 = [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])];
      const upsample: NodeProto = opset < 9
        ? { name: '/up/Upsample', op_type: 'Upsample', input: ['r'], output: ['u'], attribute: [{ name: 'scales', type: AttributeType.FLOATS, floats: [1, 1, 2, 2] }, { name: 'mode', type: AttributeType.STRING, s: new TextEncoder().encode('nearest') }] }
        : { name: '/up/Upsample', op_type: 'Upsample', input: ['r', 'up.scales'], output: ['u'], attribute: [{ name: 'mode', type: AttributeType.STRING, s: new TextEncoder().encode('nearest') }] };
      const m = model([
        { name: '/c1/Conv', op_type: 'Conv', input: ['x', 'c1.weight', 'c1.bias'], output: ['c'], attribute: k3 },
        { name: '/bn/BatchNormalization', op_type: 'BatchNormalization', input: ['c', 'bn.scale', 'bn.bias', 'bn.mean', 'bn.var'], output: ['b'], attribute: opset < 9 ? [{ name: 'spatial', type: AttributeType.INT, i: 1 }] : [] },
        { name: '/relu/Relu', op_type: 'Relu', input: ['b'], output: ['r'] },
        upsample,
        { name: '/c2/Conv', op_type: 'Conv', input: ['u', 'c2.weight', 'c2.bias'], output: ['y'], attribute: k3 },
      ], [t('c1.weight', [8, 3, 3, 3], 31, 0.3), t('c1.bias', [8], 32, 0.1), makeTensor('bn.scale', DataType.FLOAT, [8], new Float32Array(8).fill(1.2)), t('bn.bias', [8], 33, 0.1),
        t('bn.mean', [8], 34, 0.1), makeTensor('bn.var', DataType.FLOAT, [8], new Float32Array(8).fill(0.8)), t('c2.weight', [4, 8, 3, 3], 35, 0.3), t('c2.bias', [4], 36, 0.1),
        ...(opset < 9 ? [] : [makeTensor('up.scales', DataType.FLOAT, [4], Float32Array.of(1, 1, 2, 2))])],
      [vi('x', 1, [1, 3, 8, 8])], [vi('y', 1, [1, 4, 16, 16])], opset);
      m.ir_version = 3;
      for (const mode of ['static', 'dynamic'] as const) {
        const q = await quantizeAndMeasure(m, { mode, calibration: 'random:4' });
        assert.ok(q.result.warnings.some((w) => w.includes(`upgraded from opset ${opset} to ${mode === 'static' ? 11 : 10}`)), q.result.warnings.join('\n'));
        assert.equal(q.ops.Resize, 1, JSON.stringify(q.ops));
        assert.equal(q.ops.Upsample, undefined);
        // (below opset 13 the Q/DQ are onnxruntime's com.microsoft ones)
        assert.ok(q.ops[mode === 'static' ? 'com.microsoft.QuantizeLinear' : 'ConvInteger'] >= 1, JSON.stringify(q.ops));
        assert.ok(q.fidelity.cosine > 0.999, `${mode}: cosine ${q.fidelity.cosine}`);
      }
    });
  }

  for (const opset of [21, 23]) {
    it(`an opset-${opset} block (LayerNormalization, Gelu-20, ReduceMean with its axes as an input) goes through static, dynamic and weight INT8`, async () => {
      const m = model([
        { name: '/ln/LayerNormalization', op_type: 'LayerNormalization', input: ['x', 'ln.weight', 'ln.bias'], output: ['n'], attribute: [{ name: 'axis', type: AttributeType.INT, i: -1 }] },
        { name: '/fc1/MatMul', op_type: 'MatMul', input: ['n', 'fc1.weight'], output: ['h'] },
        { name: '/act/Gelu', op_type: 'Gelu', input: ['h'], output: ['a'] },
        { name: '/fc2/MatMul', op_type: 'MatMul', input: ['a', 'fc2.weight'], output: ['o'] },
        { name: '/res/Add', op_type: 'Add', input: ['o', 'x'], output: ['r'] },
        { name: '/pool/ReduceMean', op_type: 'ReduceMean', input: ['r', 'pool.axes'], output: ['p'], attribute: [{ name: 'keepdims', type: AttributeType.INT, i: 0 }] },
        { name: '/head/MatMul', op_type: 'MatMul', input: ['p', 'head.weight'], output: ['y'] },
      ], [makeTensor('ln.weight', DataType.FLOAT, [64], new Float32Array(64).fill(1)), t('ln.bias', [64], 81, 0.1), t('fc1.weight', [64, 128], 82, 0.2), t('fc2.weight', [128, 64], 83, 0.2),
        makeTensor('pool.axes', DataType.INT64, [1], BigInt64Array.of(1n)), t('head.weight', [64, 10], 84, 0.3)],
      [vi('x', 1, [1, 16, 64])], [vi('y', 1, [1, 10])], opset);
      m.ir_version = 10;
      for (const mode of ['static', 'dynamic', 'weight'] as const) {
        const q = await quantizeAndMeasure(m, { mode, calibration: 'random:4', objective: 'size' });
        // Random weights and inputs: this checks that each mode runs at these opsets, not accuracy.
        assert.ok(q.fidelity.cosine > 0.995, `${mode}: cosine ${q.fidelity.cosine}`);
        assert.ok(q.result.weightBytes.after < q.result.weightBytes.before / 3, `${mode}: ${q.result.weightBytes.before} -> ${q.result.weightBytes.after}`);
      }
    });
  }

  it('the experimental ops opset 10 removed (ImageScaler, ScaledTanh, Crop, Affine, ParametricSoftplus, Scale) become standard ops that compute the same; static and dynamic INT8 then go through', async () => {
    const f = (name: string, v: number) => ({ name, type: AttributeType.FLOAT, f: v });
    const ints = (name: string, v: number[]) => ({ name, type: AttributeType.INTS, ints: v });
    const k3 = [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])];
    const m = model([
      { name: 'scaler', op_type: 'ImageScaler', input: ['x'], output: ['s'], attribute: [f('scale', 0.5), { name: 'bias', type: AttributeType.FLOATS, floats: [0.1, -0.2, 0.3] }] },
      { name: '/c1/Conv', op_type: 'Conv', input: ['s', 'c1.weight', 'c1.bias'], output: ['c1'], attribute: k3 },
      { name: 'tanh', op_type: 'ScaledTanh', input: ['c1'], output: ['th'], attribute: [f('alpha', 2), f('beta', 0.5)] },
      { name: 'crop', op_type: 'Crop', input: ['th'], output: ['cr'], attribute: [ints('border', [1, 2, 3, 1])] },
      { name: '/c2/Conv', op_type: 'Conv', input: ['cr', 'c2.weight', 'c2.bias'], output: ['c2'], attribute: k3 },
      { name: 'affine', op_type: 'Affine', input: ['c2'], output: ['a'], attribute: [f('alpha', 1.5), f('beta', -0.25)] },
      { name: 'softplus', op_type: 'ParametricSoftplus', input: ['a'], output: ['sp'], attribute: [f('alpha', 0.7), f('beta', 1.3)] },
      { name: 'window', op_type: 'Crop', input: ['sp'], output: ['w'], attribute: [ints('border', [2, 1, 0, 0]), ints('scale', [8, 9])] },
      { name: 'scale', op_type: 'Scale', input: ['w'], output: ['y'], attribute: [f('scale', 3)] },
    ], [t('c1.weight', [8, 3, 3, 3], 51, 0.3), t('c1.bias', [8], 52, 0.1), t('c2.weight', [4, 8, 3, 3], 53, 0.3), t('c2.bias', [4], 54, 0.1)],
    [vi('x', 1, [1, 3, 16, 16])], [vi('y', 1, [1, 4, 8, 9])], 8);
    m.ir_version = 3;
    const dir = tmpDir();
    saveModel(m, path.join(dir, 'm.onnx'));
    // The float model raised alone runs in onnxruntime's own kernels for the experimental ops' replacements:
    // the outputs must match the opset-8 model's (onnxruntime still runs the experimental ops there).
    const editor = new ModelEditor(loadModel(path.join(dir, 'm.onnx')).model);
    assert.deepEqual(upgradeToOpset10(editor), ['scaler', 'tanh', 'crop', 'affine', 'softplus', 'window', 'scale']);
    assert.deepEqual((editor.graph.node ?? []).map((n) => n.op_type).filter((op) => !['Mul', 'Add', 'Tanh', 'Softplus', 'Slice', 'Conv'].includes(op!)), []);
    saveModel(editor.model, path.join(dir, 'm10.onnx'));
    const same = await compareModels(path.join(dir, 'm.onnx'), path.join(dir, 'm10.onnx'), { data: 'random:4', samples: 4, latencyRuns: 1 });
    assert.ok(Object.values(same.outputs)[0].maxAbsError < 1e-5, JSON.stringify(same.outputs));
    for (const mode of ['static', 'dynamic'] as const) {
      const q = await quantizeAndMeasure(m, { mode, calibration: 'random:4', objective: 'size' });
      assert.match(q.result.warnings.join('\n'), new RegExp(`upgraded from opset 8 to ${mode === 'static' ? 11 : 10}\\b.*7 nodes rewritten`));
      assert.ok(q.fidelity.cosine > 0.999, `${mode}: cosine ${q.fidelity.cosine}`);
    }
  });

  it('opset 10 to 11 (static INT8): Clip and Pad take their attributes as inputs, Resize keeps Resize-10\'s coordinates, Scatter becomes ScatterElements; the outputs are the same', async () => {
    const f = (name: string, v: number) => ({ name, type: AttributeType.FLOAT, f: v });
    const s = (name: string, v: string) => ({ name, type: AttributeType.STRING, s: new TextEncoder().encode(v) });
    const m = model([
      { name: 'clip', op_type: 'Clip', input: ['x'], output: ['c1'], attribute: [f('min', -0.5), f('max', 0.7)] },
      { name: 'clip_max', op_type: 'Clip', input: ['c1'], output: ['c2'], attribute: [f('max', 0.6)] },
      { name: 'pad', op_type: 'Pad', input: ['c2'], output: ['p1'], attribute: [{ name: 'pads', type: AttributeType.INTS, ints: [0, 0, 1, 2, 0, 0, 2, 1] }, f('value', 0.25)] },
      { name: 'reflect', op_type: 'Pad', input: ['p1'], output: ['p2'], attribute: [{ name: 'pads', type: AttributeType.INTS, ints: [0, 0, 1, 1, 0, 0, 1, 1] }, s('mode', 'reflect')] },
      { name: 'nearest', op_type: 'Resize', input: ['p2', 'up'], output: ['r1'], attribute: [s('mode', 'nearest')] },
      { name: 'linear', op_type: 'Resize', input: ['r1', 'odd'], output: ['r2'], attribute: [s('mode', 'linear')] },
      { name: 'conv', op_type: 'Conv', input: ['r2', 'conv.weight'], output: ['y'] },
      { name: 'scatter', op_type: 'Scatter', input: ['x', 'where', 'what'], output: ['z'], attribute: [{ name: 'axis', type: AttributeType.INT, i: 3 }] },
    ], [makeTensor('up', DataType.FLOAT, [4], Float32Array.of(1, 1, 2, 2)), makeTensor('odd', DataType.FLOAT, [4], Float32Array.of(1, 1, 1.5, 0.75)), t('conv.weight', [4, 3, 1, 1], 91),
      makeTensor('where', DataType.INT64, [1, 3, 6, 1], BigInt64Array.from({ length: 18 }, (_, i) => BigInt(i % 5))), t('what', [1, 3, 6, 1], 98)],
    [vi('x', 1, [1, 3, 6, 5])], [vi('y', 1, [1, 4, 30, 9]), vi('z', 1, [1, 3, 6, 5])], 10);
    const dir = tmpDir();
    saveModel(m, path.join(dir, 'm10.onnx'));
    const editor = new ModelEditor(loadModel(path.join(dir, 'm10.onnx')).model);
    assert.deepEqual(upgradeToOpset11(editor), ['clip', 'clip_max', 'pad', 'reflect', 'nearest', 'linear', 'scatter']);
    assert.deepEqual(editor.graph.node!.find((n) => n.name === 'clip_max')!.input!.slice(0, 2), ['c1', '']);
    saveModel(editor.model, path.join(dir, 'm11.onnx'));
    const same = await compareModels(path.join(dir, 'm10.onnx'), path.join(dir, 'm11.onnx'), { data: 'random:4', samples: 4, latencyRuns: 1 });
    for (const o of ['y', 'z']) assert.ok(same.outputs[o].maxAbsError < 1e-6, JSON.stringify(same.outputs));
  });

  it('opset 8, progressive static INT8: a float Gemm between Q/DQ no longer makes onnxruntime write a Round opset 10 lacks', async () => {
    // An emotion-ferplus-style export. At some step the first Gemm stays float while Reshape hands it a
    // dequantized input and its output reaches a QuantizeLinear: onnxruntime then quantizes its bias itself,
    // with Div/Round/Cast ("No Op registered for Round with domain_version of 10").
    const k3 = [{ name: 'kernel_shape', type: AttributeType.INTS, ints: [3, 3] }, { name: 'pads', type: AttributeType.INTS, ints: [1, 1, 1, 1] }];
    const pool = [{ name: 'kernel_shape', type: AttributeType.INTS, ints: [2, 2] }, { name: 'strides', type: AttributeType.INTS, ints: [2, 2] }];
    const transB = [{ name: 'transB', type: AttributeType.INT, i: 1 }];
    const m = model([
      { name: 'sub', op_type: 'Sub', input: ['x', 'mean'], output: ['a'] },
      { name: 'div', op_type: 'Div', input: ['a', 'std'], output: ['b'] },
      { name: 'conv0', op_type: 'Conv', input: ['b', 'w0', 'b0'], output: ['c0'], attribute: k3 },
      { name: 'relu0', op_type: 'Relu', input: ['c0'], output: ['r0'] },
      { name: 'pool0', op_type: 'MaxPool', input: ['r0'], output: ['p0'], attribute: pool },
      { name: 'conv1', op_type: 'Conv', input: ['p0', 'w1', 'b1'], output: ['c1'], attribute: k3 },
      { name: 'relu1', op_type: 'Relu', input: ['c1'], output: ['r1'] },
      { name: 'pool1', op_type: 'MaxPool', input: ['r1'], output: ['p1'], attribute: pool },
      { name: 'flat', op_type: 'Reshape', input: ['p1', 'shape'], output: ['f'] },
      { name: 'fc', op_type: 'Gemm', input: ['f', 'fw', 'fb'], output: ['h'], attribute: transB },
      { name: 'relu2', op_type: 'Relu', input: ['h'], output: ['hr'] },
      { name: 'drop', op_type: 'Dropout', input: ['hr'], output: ['hd'] },
      { name: 'out', op_type: 'Gemm', input: ['hd', 'ow', 'ob'], output: ['y'], attribute: transB },
    ], [makeTensor('mean', DataType.FLOAT, [1], Float32Array.of(0.5)), makeTensor('std', DataType.FLOAT, [1], Float32Array.of(2)), t('w0', [16, 1, 3, 3], 92, 0.3), t('b0', [16], 93, 0.1),
      t('w1', [32, 16, 3, 3], 94, 0.1), t('b1', [32], 95, 0.1), makeTensor('shape', DataType.INT64, [2], BigInt64Array.of(1n, 2048n)), t('fw', [64, 2048], 96, 0.02), t('fb', [64], 97, 0.1), t('ow', [8, 64], 98, 0.2), t('ob', [8], 99, 0.1)],
    [vi('x', 1, [1, 1, 32, 32])], [vi('y', 1, [1, 8])], 8);
    m.ir_version = 3;
    const q = await quantizeAndMeasure(m, { mode: 'static', calibration: 'random:4', progressive: true });
    assert.match(q.result.warnings.join('\n'), /upgraded from opset 8 to 11/);
    assert.ok(q.fidelity.cosine > 0.999, `cosine ${q.fidelity.cosine}`);
  });

  it('an experimental op opset 10 removed with nothing to stand for it (GivenTensorFill) blocks the upgrade in one line', async () => {
    const m = model([
      { name: 'fill', op_type: 'GivenTensorFill', input: [], output: ['k'], attribute: [{ name: 'values', type: AttributeType.FLOATS, floats: [1, 2] }, { name: 'shape', type: AttributeType.INTS, ints: [2] }] },
      { name: '/c/Conv', op_type: 'Conv', input: ['x', 'c.weight'], output: ['y'] },
    ], [t('c.weight', [4, 3, 1, 1], 55)], [vi('x', 1, [1, 3, 4, 4])], [vi('y', 1, [1, 4, 4, 4])], 8);
    assert.equal(upgradeBlocker(new ModelEditor(m)), "GivenTensorFill 'fill' is an experimental op that opset 10 removed");
  });

  // spatial=0 keeps a statistic per element: over [N, C, H, W] that is not what opset 9's BatchNormalization means.
  const spatial0 = (scale: number[], input: number[]) => {
    const n = scale.reduce((a, b) => a * b, 1);
    const m = model([
      { name: '/bn/BatchNormalization', op_type: 'BatchNormalization', input: ['x', 'bn.scale', 'bn.bias', 'bn.mean', 'bn.var'], output: ['b'], attribute: [{ name: 'spatial', type: AttributeType.INT, i: 0 }] },
      { name: '/flat/Flatten', op_type: 'Flatten', input: ['b'], output: ['f'] },
      { name: '/fc/MatMul', op_type: 'MatMul', input: ['f', 'fc.weight'], output: ['y'] },
    ], [t('bn.scale', scale, 41), t('bn.bias', scale, 42), t('bn.mean', scale, 43), makeTensor('bn.var', DataType.FLOAT, scale, new Float32Array(n).fill(1.5)), t('fc.weight', [n, 8], 44)],
    [vi('x', 1, input)], [vi('y', 1, [input[0], 8])], 7);
    m.ir_version = 3;
    return m;
  };

  it('an opset-7 BatchNormalization over elements (spatial=0 with a [C, H, W] scale) cannot be raised: static INT8 says so in one line', async () => {
    const dir = tmpDir();
    saveModel(spatial0([4, 2, 2], [2, 4, 2, 2]), path.join(dir, 'm.onnx'));
    await assert.rejects(quantizeModel(path.join(dir, 'm.onnx'), path.join(dir, 'q.onnx'), { mode: 'static', calibration: 'random:4' }), /static INT8 needs opset 11 .*spatial=0.*--mode weight/);
    assert.ok(!fs.existsSync(path.join(dir, 'q.onnx')));
  });

  it('an opset-7 BatchNormalization with spatial=0 over [N, C] features (ArcFace\'s embedding) is per channel, so it is raised (to 11 for static INT8)', async () => {
    const q = await quantizeAndMeasure(spatial0([16], [2, 16]), { mode: 'static', calibration: 'random:4', objective: 'size' });
    assert.match(q.result.warnings.join('\n'), /upgraded from opset 7 to 11/);
    assert.ok(q.fidelity.cosine > 0.999, `cosine ${q.fidelity.cosine}`);
  });

  it('a weight several layers read (a block applied in a loop, unrolled): dynamic INT8 writes it once', async () => {
    const k3 = [{ name: 'kernel_shape', type: AttributeType.INTS, ints: [3, 3] }, { name: 'pads', type: AttributeType.INTS, ints: [1, 1, 1, 1] }];
    const steps = 4;
    const loop = () => model(Array.from({ length: steps }, (_, i) => [
      { name: `/step${i}/Conv`, op_type: 'Conv', input: [i ? `r${i - 1}` : 'x', 'block.weight', 'block.bias'], output: [`c${i}`], attribute: k3 },
      { name: `/step${i}/Relu`, op_type: 'Relu', input: [`c${i}`], output: [i === steps - 1 ? 'y' : `r${i}`] },
    ]).flat(), [t('block.weight', [32, 32, 3, 3], 16, 0.06), t('block.bias', [32], 17, 0.1)], [vi('x', 1, ['n', 32, 8, 8])], [vi('y', 1, ['n', 32, 8, 8])]);
    const r = await quantizeAndMeasure(loop(), { mode: 'dynamic' });
    assert.equal(r.ops.ConvInteger, steps);
    const g = loadModel(r.output).model.graph!;
    assert.equal(g.initializer!.filter((x) => x.data_type === DataType.UINT8 && (x.dims ?? []).length === 4).length, 1, 'one uint8 weight for the four convs');
    assert.equal(r.report.nodes.filter((n: { how?: string }) => /shared/.test(n.how ?? '')).length, steps - 1);
    assert.ok(r.result.sizeAfter < r.result.sizeBefore / 2, `${r.result.sizeBefore} -> ${r.result.sizeAfter} bytes`);
    assert.ok(r.fidelity.cosine > 0.999, `cosine ${r.fidelity.cosine}`);
  });

  // ALBERT shares one layer's weights across its depth, and torch's exporter deduplicates equal
  // initializers (an nn.TransformerEncoder's clones before training): several MatMuls read one weight.
  const sharedLayers = () => {
    const steps = 3;
    return model([
      ...Array.from({ length: steps }, (_, i) => [
        { name: `/layers.${i}/fc/MatMul`, op_type: 'MatMul', input: [i ? `h${i - 1}` : 'x', 'layer.fc.weight'], output: [`m${i}`] },
        { name: `/layers.${i}/Tanh`, op_type: 'Tanh', input: [`m${i}`], output: [`h${i}`] },
      ]).flat(),
      { name: '/head/MatMul', op_type: 'MatMul', input: [`h${steps - 1}`, 'head.weight'], output: ['y'] },
    ], [normal('layer.fc.weight', [64, 64], 21), normal('head.weight', [64, 16], 22)], [vi('x', 1, ['n', 64])], [vi('y', 1, ['n', 16])]);
  };
  // Gaussian weights of unit gain (the sine pattern of `t` is nearly rank 2 along a 64×64 matrix, and a
  // chain of three such layers carries little but rounding)
  const normal = (name: string, dims: number[], seed: number) => {
    const rng = new Rng(seed);
    return makeTensor(name, DataType.FLOAT, dims, Float32Array.from({ length: dims[0] * dims[1] }, () => rng.normal() / Math.sqrt(dims[0])));
  };
  const floatBytes = (64 * 64 + 64 * 16) * 4;

  for (const algorithm of ['rtn', 'gptq'] as const) {
    it(`a weight three MatMuls read (shared layers), weight INT4 ${algorithm}: one MatMulNBits weight for all three, counted once`, async () => {
      const r = await quantizeAndMeasure(sharedLayers(), { mode: 'weight', bits: 4, algorithm, calibration: 'random:8' });
      assert.equal(r.ops['com.microsoft.MatMulNBits'], 4);
      const g = loadModel(r.output).model.graph!;
      const packed = g.node!.filter((n) => n.op_type === 'MatMulNBits').map((n) => n.input!.slice(1).join(','));
      assert.equal(new Set(packed.slice(0, 3)).size, 1, `the three layers read one packed weight: ${packed.join(' | ')}`);
      assert.equal(g.initializer!.filter((x) => x.data_type === DataType.UINT8 && /_Q4$/.test(x.name ?? '')).length, 2, 'two packed weights: the shared one and the head\'s');
      assert.equal(r.report.nodes.filter((n: { how?: string }) => /, shared$/.test(n.how ?? '')).length, 2);
      assert.equal(r.report.weightBytes.before, floatBytes, 'each float weight counted once');
      // (Three int4 layers in a chain: RTN 0.985 here, GPTQ above 0.99.)
      assert.ok(r.fidelity.cosine > (algorithm === 'gptq' ? 0.99 : 0.98), `cosine ${r.fidelity.cosine}`);
    });
  }

  // torch writes nn.Linear on [N, features] (classifier heads, nn.MultiheadAttention's out_proj) as Gemm.
  const gemms = () => model([
    { name: '/fc1/Gemm', op_type: 'Gemm', input: ['x', 'fc1.weight', 'fc1.bias'], output: ['a'], attribute: [intAttr('transB', 1)] },
    { name: '/act/Tanh', op_type: 'Tanh', input: ['a'], output: ['h'] },
    // B [K, N] as stored, alpha and beta not 1, C as [1, N]
    { name: '/fc2/Gemm', op_type: 'Gemm', input: ['h', 'fc2.weight', 'fc2.bias'], output: ['b'], attribute: [{ name: 'alpha', type: AttributeType.FLOAT, f: 0.5 }, { name: 'beta', type: AttributeType.FLOAT, f: 2 }] },
    // transA: MatMulNBits cannot transpose A, so this one stays int8
    { name: '/fc3/Gemm', op_type: 'Gemm', input: ['b', 'fc3.weight'], output: ['c'], attribute: [intAttr('transA', 1)] },
    // C one value, broadcast
    { name: '/fc4/Gemm', op_type: 'Gemm', input: ['c', 'fc4.weight', 'fc4.bias'], output: ['y'] },
  ], [normal('fc1.weight', [48, 64], 31), t('fc1.bias', [48], 32, 0.1), normal('fc2.weight', [48, 32], 33), t('fc2.bias', [1, 32], 34, 0.1), normal('fc3.weight', [8, 16], 35), normal('fc4.weight', [16, 32], 36), t('fc4.bias', [], 37, 0.5)],
  [vi('x', 1, [8, 64])], [vi('y', 1, [32, 32])]);

  for (const algorithm of ['rtn', 'gptq'] as const) {
    it(`Gemm, weight INT4 ${algorithm}: MatMulNBits with B transposed back, alpha folded in, beta · C its bias (C a vector, [1, N] or one value); a transA Gemm stays int8 and says why`, async () => {
      const r = await quantizeAndMeasure(gemms(), { mode: 'weight', bits: 4, algorithm, calibration: 'random:8' });
      const nodes = loadModel(r.output).model.graph!.node!;
      const nb = nodes.filter((n) => n.op_type === 'MatMulNBits');
      assert.deepEqual(nb.map((n) => [n.name, n.attribute!.find((a) => a.name === 'K')!.i, n.attribute!.find((a) => a.name === 'N')!.i, n.input!.length]).map(String), ['/fc1/Gemm_Q4,64,48,6', '/fc2/Gemm_Q4,48,32,6', '/fc4/Gemm_Q4,16,32,6']);
      assert.equal(nodes.filter((n) => n.op_type === 'Gemm').length, 1, 'the transA one');
      assert.match(r.report.nodes.find((n: { node: string }) => n.node === '/fc3/Gemm').how, /4-bit applies to MatMul, and Gemm without transA/);
      for (const fc of ['/fc1/Gemm', '/fc2/Gemm', '/fc4/Gemm']) assert.match(r.report.nodes.find((n: { node: string }) => n.node === fc).how, new RegExp(`MatMulNBits int4 block 32 \\(${algorithm},`));
      assert.ok(r.report.warnings.includes('--bits 4 applies to MatMul and Gemm weights (MatMulNBits): 1 Gemm written at 8 bits'), r.report.warnings.join('\n'));
      assert.ok(r.fidelity.cosine > 0.99, `cosine ${r.fidelity.cosine}`);
    });
  }

  it('a float16 Gemm, weight INT4: MatMulNBits with float16 scales and bias, as its float16 input needs', async () => {
    const rng = new Rng(5);
    const half = (name: string, dims: number[], s: number) => makeTensor(name, DataType.FLOAT16, dims, Uint16Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => floatToHalf(rng.normal() * s)));
    const m = model([
      { name: '/fc/Gemm', op_type: 'Gemm', input: ['x', 'fc.weight', 'fc.bias'], output: ['a'], attribute: [intAttr('transB', 1)] },
      { name: '/act/Tanh', op_type: 'Tanh', input: ['a'], output: ['y'] },
    ], [half('fc.weight', [32, 64], 0.125), half('fc.bias', [32], 0.1)], [vi('x', DataType.FLOAT16, [4, 64])], [vi('y', DataType.FLOAT16, [4, 32])]);
    const r = await quantizeAndMeasure(m, { mode: 'weight', bits: 4 });
    const g = loadModel(r.output).model.graph!;
    const nb = g.node!.find((n) => n.op_type === 'MatMulNBits')!;
    const type = (i: number) => g.initializer!.find((x) => x.name === nb.input![i])!.data_type;
    assert.deepEqual([type(2), type(5)], [DataType.FLOAT16, DataType.FLOAT16], 'scales and bias');
    assert.ok(r.fidelity.cosine > 0.99, `cosine ${r.fidelity.cosine}`);
  });

  it('a weight three MatMuls read, dynamic INT8: written once and counted once', async () => {
    const r = await quantizeAndMeasure(sharedLayers(), { mode: 'dynamic' });
    assert.equal(r.report.weightBytes.before, floatBytes);
    assert.equal(r.report.nodes.filter((n: { how?: string }) => /shared/.test(n.how ?? '')).length, 2);
    assert.ok(r.fidelity.cosine > 0.999, `cosine ${r.fidelity.cosine}`);
  });

  it('LSTM, dynamic INT8: DynamicQuantizeLSTM with int8 weights stored transposed, per gate row (bidirectional, with biases and initial states)', async () => {
    const [T, I, H] = [7, 32, 16];
    const str = (name: string, v: string) => ({ name, type: AttributeType.STRING, s: new TextEncoder().encode(v) });
    const lstm = model([
      { name: '/rnn/LSTM', op_type: 'LSTM', input: ['x', 'rnn.W', 'rnn.R', 'rnn.B', '', 'h0', 'c0'], output: ['y'], attribute: [{ name: 'hidden_size', type: AttributeType.INT, i: H }, str('direction', 'bidirectional')] },
    ], [t('rnn.W', [2, 4 * H, I], 11, 0.4), t('rnn.R', [2, 4 * H, H], 12, 0.4), t('rnn.B', [2, 8 * H], 13, 0.1), t('h0', [2, 1, H], 14, 0.2), t('c0', [2, 1, H], 15, 0.2)],
    [vi('x', 1, [T, 1, I])], [vi('y', 1, [T, 2, 1, H])]);
    const d = await quantizeAndMeasure(lstm, { mode: 'dynamic' });
    assert.deepEqual(d.ops, { 'com.microsoft.DynamicQuantizeLSTM': 1 });
    assert.match(d.report.nodes[0].how, /DynamicQuantizeLSTM/);
    const g = loadModel(d.output).model.graph!;
    const w = g.initializer!.find((x) => x.name === g.node![0].input![1])!;
    assert.deepEqual([w.data_type, ...(w.dims ?? []).map(Number)], [DataType.INT8, 2, I, 4 * H]);
    // Random inputs: this checks the layout and the kernel, not accuracy on data.
    assert.ok(d.fidelity.cosine > 0.999, `cosine ${d.fidelity.cosine}`);
    assert.ok(d.result.weightBytes.before / d.result.weightBytes.after > 3, `${d.result.weightBytes.before} -> ${d.result.weightBytes.after} bytes`);
  });

  for (const [op, gates] of [['LSTM', 4], ['GRU', 3], ['RNN', 1]] as const) {
    it(`${op}, weight INT8: W and R stored int8 with a scale per gate row (bidirectional); static lists it as skipped`, async () => {
      const [T, I, H] = [7, 32, 16];
      const m = model([
        { name: `/rnn/${op}`, op_type: op, input: ['x', 'rnn.W', 'rnn.R', 'rnn.B'], output: ['y'], attribute: [{ name: 'hidden_size', type: AttributeType.INT, i: H }, { name: 'direction', type: AttributeType.STRING, s: new TextEncoder().encode('bidirectional') }] },
      ], [t('rnn.W', [2, gates * H, I], 21, 0.4), t('rnn.R', [2, gates * H, H], 22, 0.4), t('rnn.B', [2, 2 * gates * H], 23, 0.1)],
      [vi('x', 1, [T, 1, I])], [vi('y', 1, [T, 2, 1, H])]);
      const q = await quantizeAndMeasure(m, { mode: 'weight', bits: 8, weightFormat: 'dequantize' });
      assert.match(q.report.nodes[0].how, /int8 per-channel \(axis 1\) weight.*\(W and R, a scale per gate row\)/);
      const g = loadModel(q.output).model.graph!;
      const scales = g.node!.filter((n) => n.op_type === 'DequantizeLinear').map((n) => g.initializer!.find((x) => x.name === n.input![1])!.dims!.map(Number));
      assert.deepEqual(scales, [[gates * H], [gates * H]]); // one scale per gate row, for W and for R
      assert.ok(q.fidelity.cosine > 0.999, `cosine ${q.fidelity.cosine}`);
      assert.ok(q.result.weightBytes.before / q.result.weightBytes.after > 3, `${q.result.weightBytes.before} -> ${q.result.weightBytes.after} bytes`);
      // --bits 4 has no recurrent form: the weights stay 8-bit, and the row and the warning say so.
      const q4 = await quantizeAndMeasure(m, { mode: 'weight', bits: 4 });
      assert.match(q4.report.nodes[0].how, /\(W and R, a scale per gate row\) \(4-bit applies to MatMul and Gemm only\)$/);
      assert.ok(q4.report.warnings.includes(`--bits 4 applies to MatMul and Gemm weights (MatMulNBits): 1 ${op} written at 8 bits`), q4.report.warnings.join('\n'));
      const s = await quantizeAndMeasure(model([...m.graph!.node!, { name: '/fc/MatMul', op_type: 'MatMul', input: ['y', 'fc.weight'], output: ['z'] }], [...m.graph!.initializer!, t('fc.weight', [H, 8], 24)], [vi('x', 1, [T, 1, I])], [vi('z', 1, [T, 2, 1, 8])]), { mode: 'static', calibration: 'random:2', objective: 'size' });
      assert.ok(s.report.nodes.some((n: { node: string; skipped?: string }) => n.node === `/rnn/${op}` && /static mode leaves .* float \(--mode weight/.test(n.skipped ?? '')), JSON.stringify(s.report.nodes));
    });
  }

  it('fused Attention (onnxruntime-transformers), dynamic INT8: QAttention with an int8 per-column QKV weight; weight mode stores it int8; static lists it as skipped', async () => {
    const [S, H] = [6, 32];
    const attention = () => {
      const m = model([
        { name: '/layer/attention/Attention', op_type: 'Attention', domain: 'com.microsoft', input: ['x', 'attn.qkv.weight', 'attn.qkv.bias', 'mask_index'], output: ['a'], attribute: [{ name: 'num_heads', type: AttributeType.INT, i: 4 }] },
        { name: '/layer/out/MatMul', op_type: 'MatMul', input: ['a', 'out.weight'], output: ['y'] },
      ], [t('attn.qkv.weight', [H, 3 * H], 21, 0.3), t('attn.qkv.bias', [3 * H], 22, 0.05), t('out.weight', [H, H], 23, 0.3)],
      [vi('x', 1, [1, S, H]), vi('mask_index', DataType.INT32, [1])], [vi('y', 1, [1, S, H])]);
      m.opset_import!.push({ domain: 'com.microsoft', version: 1 });
      return m;
    };
    const d = await quantizeAndMeasure(attention(), { mode: 'dynamic' });
    assert.equal(d.ops['com.microsoft.QAttention'], 1, JSON.stringify(d.ops));
    assert.equal(d.ops['com.microsoft.Attention'], undefined);
    const g = loadModel(d.output).model.graph!;
    const q = g.node!.find((n) => n.op_type === 'QAttention')!;
    const init = (name: string) => g.initializer!.find((x) => x.name === name)!;
    assert.deepEqual([init(q.input![1]).data_type, ...init(q.input![1]).dims!.map(Number)], [DataType.INT8, H, 3 * H]);
    assert.deepEqual(init(q.input![4]).dims!.map(Number), [3 * H]); // a scale per column
    assert.equal(q.input![5], 'mask_index');
    // Random inputs: this checks the layout and the kernel, not accuracy on data.
    assert.ok(d.fidelity.cosine > 0.999, `cosine ${d.fidelity.cosine}`);
    assert.ok(d.report.nodes.some((n: { how?: string }) => /QAttention/.test(n.how ?? '')));
    // and sensitivity lists it as a layer of its own, named from its weight
    const sens = await analyzeSensitivity(d.input, { mode: 'dynamic', calibration: 'random:4', output: null });
    assert.deepEqual(sens.layers.map((l) => l.opType).sort(), ['Attention', 'MatMul']);

    const w = await quantizeAndMeasure(attention(), { mode: 'weight', bits: 8 });
    assert.ok(w.report.nodes.some((n: { opType: string; how?: string }) => n.opType === 'Attention' && n.how), JSON.stringify(w.report.nodes));
    assert.ok(w.fidelity.cosine > 0.999, `cosine ${w.fidelity.cosine}`);
    assert.ok(w.result.weightBytes.before / w.result.weightBytes.after > 3, `${w.result.weightBytes.before} -> ${w.result.weightBytes.after} bytes`);

    const st = await quantizeAndMeasure(attention(), { mode: 'static', calibration: 'random:4' });
    assert.match(st.report.nodes.find((n: { opType: string }) => n.opType === 'Attention')?.skipped ?? '', /static mode leaves Attention float \(--mode weight or --mode dynamic quantizes it\)/);
  });

  it('a weight stored as a sparse initializer (a pruned model saved with its non-zeros, coordinate indices) is read dense and quantized in every mode', async () => {
    const dense = rnd(64 * 32, 71, 0.3).map((v) => (Math.abs(v) < 0.25 ? 0 : v));
    const nz = [...dense.keys()].filter((i) => dense[i] !== 0);
    const m = model([
      { name: 'fc1', op_type: 'MatMul', input: ['x', 'fc1.weight'], output: ['a'] },
      { name: 'relu', op_type: 'Relu', input: ['a'], output: ['r'] },
      { name: 'fc2', op_type: 'MatMul', input: ['r', 'fc2.weight'], output: ['y'] },
    ], [t('fc2.weight', [32, 16], 72, 0.3)], [vi('x', 1, [4, 64])], [vi('y', 1, [4, 16])]);
    m.graph!.sparse_initializer = [{
      values: makeTensor('fc1.weight', DataType.FLOAT, [nz.length], Float32Array.from(nz, (i) => dense[i])),
      indices: makeTensor('fc1.weight_indices', DataType.INT64, [nz.length, 2], BigInt64Array.from(nz.flatMap((i) => [BigInt(Math.floor(i / 32)), BigInt(i % 32)]))),
      dims: [64, 32],
    }];
    const dir = tmpDir();
    saveModel(m, path.join(dir, 'sparse.onnx'));
    // inspect counts the sparse weight at its dense size.
    const summary = summarizeModel(loadModel(path.join(dir, 'sparse.onnx')));
    assert.deepEqual([summary.parameters, summary.parametersIn.sparse], [64 * 32 + 32 * 16, 64 * 32]);
    for (const mode of ['weight', 'dynamic', 'static'] as const) {
      const q = await quantizeAndMeasure(m, { mode, calibration: 'random:4', objective: 'size' });
      assert.ok(q.result.warnings.some((w) => w.includes('1 sparse initializer (fc1.weight) read as dense')), q.result.warnings.join('\n'));
      const report = JSON.parse(fs.readFileSync(q.result.report, 'utf8')) as QuantizeReport;
      assert.match(report.nodes.find((d) => d.node === 'fc1')?.how ?? '', /weight/, `${mode}: ${JSON.stringify(report.nodes)}`);
      assert.ok(q.fidelity.cosine > 0.999, `${mode}: cosine ${q.fidelity.cosine}`);
    }
  });

  it('weights behind Transpose, Reshape and Cast (an export without constant folding) are folded and quantized; other uses stay', async () => {
    const half = makeTensor('w2.half', DataType.FLOAT16, [16, 8], Uint16Array.from(rnd(128, 9, 0.3), floatToHalf));
    const unfolded = () => model([
      { name: '/fc1/Transpose', op_type: 'Transpose', input: ['fc1.weight'], output: ['w1t'], attribute: [{ name: 'perm', type: AttributeType.INTS, ints: [1, 0] }] },
      { name: '/fc1/MatMul', op_type: 'MatMul', input: ['x', 'w1t'], output: ['h'] },
      { name: '/fc2/Cast', op_type: 'Cast', input: ['w2.half'], output: ['w2f'], attribute: [{ name: 'to', type: AttributeType.INT, i: DataType.FLOAT }] },
      { name: '/fc2/Reshape', op_type: 'Reshape', input: ['w2f', 'shape'], output: ['w2'] },
      { name: '/fc2/MatMul', op_type: 'MatMul', input: ['h', 'w2'], output: ['y'] },
      // A transposed constant that is not a weight (added to the output): left as it is.
      { name: '/bias/Transpose', op_type: 'Transpose', input: ['offset'], output: ['offset_t'], attribute: [{ name: 'perm', type: AttributeType.INTS, ints: [1, 0] }] },
      { name: '/bias/Add', op_type: 'Add', input: ['y', 'offset_t'], output: ['z'] },
    ], [t('fc1.weight', [16, 32], 8, 0.2), half, makeTensor('shape', DataType.INT64, [2], BigInt64Array.of(16n, 8n)), t('offset', [8, 1], 10, 0.1)], [vi('x', 1, ['n', 32])], [vi('z', 1, ['n', 8])]);
    // (w2.half is stored [16, 8] and reshaped to the same shape: the Reshape is folded all the same.)
    for (const mode of ['weight', 'dynamic'] as const) {
      const r = await quantizeAndMeasure(unfolded(), mode === 'weight' ? { mode, weightFormat: 'dequantize' } : { mode });
      assert.deepEqual(r.result.quantized.sort(), ['/fc1/MatMul', '/fc2/MatMul'], mode);
      assert.equal(r.ops.Cast, mode === 'dynamic' ? 2 : undefined, `${mode}: ${JSON.stringify(r.ops)}`);
      assert.equal(r.ops.Transpose, 1, 'the non-weight Transpose stays');
      assert.equal(r.ops.Reshape, undefined);
      // Two chained MatMuls with activations quantized per run (dynamic) lose more than weights alone.
      assert.ok(r.fidelity.cosine > (mode === 'weight' ? 0.999 : 0.99), `${mode}: cosine ${r.fidelity.cosine}`);
      assert.match(r.result.warnings.join('\n'), /folded 3 Transpose\/Reshape\/Cast nodes/);
    }
  });

  it('static: elementwise ops after a TopK with a computed k (detection post-processing) stay float, even with --static-ops all', async () => {
    const post = () => model([
      { name: '/score/MatMul', op_type: 'MatMul', input: ['x', 'score.weight'], output: ['s'] },
      { name: '/k/Shape', op_type: 'Shape', input: ['x'], output: ['xs'] },
      { name: '/k/Gather', op_type: 'Gather', input: ['xs', 'zero'], output: ['k'] },
      { name: '/top/TopK', op_type: 'TopK', input: ['s', 'k'], output: ['v', 'i'], attribute: [{ name: 'axis', type: AttributeType.INT, i: 0 }] },
      { name: '/decode/Add', op_type: 'Add', input: ['v', 'v'], output: ['y'] },
      { name: '/other/Add', op_type: 'Add', input: ['s', 's'], output: ['z'] },
    ], [t('score.weight', [16, 8], 18, 0.3), makeTensor('zero', DataType.INT64, [1], BigInt64Array.of(0n))], [vi('x', 1, ['n', 16])], [vi('y', 1, ['k', 8]), vi('z', 1, ['n', 8])]);
    const r = await quantizeAndMeasure(post(), { mode: 'static', calibration: 'random:8', staticOps: 'all', objective: 'size' });
    assert.ok(r.result.quantized.includes('/other/Add') && r.result.quantized.includes('/score/MatMul'), r.result.quantized.join());
    assert.match(r.result.skipped.find((x) => x.node === '/decode/Add')?.reason ?? '', /after TopK\/NMS\/NonZero its size depends on the data/);
  });

  it('Conv biases handed out by Identity nodes (torch.onnx shares equal biases that way) are quantized in every mode', async () => {
    for (const o of [{ mode: 'dynamic' }, { mode: 'static', calibration: 'random:8', objective: 'size' }, { mode: 'weight', weightFormat: 'dequantize' }] as const) {
      const r = await quantizeAndMeasure(identitySharedBiasModel(), o);
      assert.deepEqual(r.result.quantized.sort(), ['/c1/Conv', '/c2/Conv'], `${o.mode}: ${JSON.stringify(r.result.skipped)}`);
      assert.equal(r.ops.Identity, undefined, `${o.mode}: the Identities are gone`);
      assert.ok(r.fidelity.cosine > 0.999, `${o.mode}: cosine ${r.fidelity.cosine}`);
    }
  });

  it('MatMul with the constant on the left (W·x) and with a batched [B, K, N] constant, static: both weights int8 with one scale, and onnxruntime runs them', async () => {
    const m = model([
      { name: 'left', op_type: 'MatMul', input: ['left.weight', 'x'], output: ['a'] },
      { name: 'relu', op_type: 'Relu', input: ['a'], output: ['r'] },
      { name: 'split', op_type: 'Reshape', input: ['r', 'shape'], output: ['r3'] },
      { name: 'batched', op_type: 'MatMul', input: ['r3', 'batched.weight'], output: ['y'] },
    ], [t('left.weight', [128, 64], 61, 0.2), t('batched.weight', [4, 32, 48], 62, 0.2), makeTensor('shape', DataType.INT64, [3], BigInt64Array.of(4n, 32n, 32n))],
    [vi('x', 1, [64, 32])], [vi('y', 1, [4, 32, 48])]);
    // Before: the batched weight got a zero point per column, which onnxruntime's integer MatMul refuses
    // ("b zero point is not valid"), and the left weight stayed float behind a pointless Q/DQ of x.
    const q = await quantizeAndMeasure(m, { mode: 'static', calibration: 'random:4', objective: 'size' });
    const report = JSON.parse(fs.readFileSync(q.result.report, 'utf8')) as QuantizeReport;
    const how = new Map(report.nodes.map((d) => [d.node, d.how ?? d.skipped ?? '']));
    for (const n of ['left', 'batched']) assert.match(how.get(n) ?? '', /int8 .*per-tensor weight/, `${n}: ${how.get(n)}`);
    assert.ok(q.fidelity.cosine > 0.999, `cosine ${q.fidelity.cosine}`);
  });

  for (const dims of [[1, 16, 64], ['n', 16, 64]]) {
    const fixed = dims[0] === 1;
    it(`MatMul + bias Add read by float ops (a Linear on a sequence, then GELU), static, x ${dims.join('x')}: ${fixed ? 'the bias is int32, so onnxruntime runs an integer Gemm, not a float one that dequantizes its weight every run' : 'onnxruntime makes no Gemm of it (x\'s size unknown at load), so the bias stays float'}`, async () => {
      const m = model([
        { name: '/fc1/MatMul', op_type: 'MatMul', input: ['x', 'fc1.weight'], output: ['h'] },
        { name: '/fc1/Add', op_type: 'Add', input: ['fc1.bias', 'h'], output: ['hb'] },
        { name: '/act/Erf', op_type: 'Erf', input: ['hb'], output: ['e'] },
        { name: '/fc2/MatMul', op_type: 'MatMul', input: ['e', 'fc2.weight'], output: ['y'] },
      ], [t('fc1.weight', [64, 128], 71, 0.2), t('fc1.bias', [128], 72, 0.1), t('fc2.weight', [128, 32], 73, 0.2)], [vi('x', 1, dims)], [vi('y', 1, [dims[0], 16, 32])]);
      const q = await quantizeAndMeasure(m, { mode: 'static', calibration: 'random:8', staticOps: 'compute' });
      const report = JSON.parse(fs.readFileSync(q.result.report, 'utf8')) as QuantizeReport;
      assert.equal(/int32 bias/.test(report.nodes.find((d) => d.node === '/fc1/MatMul')?.how ?? ''), fixed);
      assert.ok(q.fidelity.cosine > 0.999, `cosine ${q.fidelity.cosine}`);
      // With the float bias and x's size known, onnxruntime fused MatMul + Add into a float Gemm behind two
      // DequantizeLinear kernels (the weight's every run); with an int32 bias and x's size unknown, it
      // dequantized the bias every run.
      const [feeds] = openCalibration('random:1', loadModel(q.output).model.graph!, { inputShapes: { x: [1, 16, 64] } }).samples();
      const ops = new Set((await profiledKernels(q.output, feeds, 1)).map((k) => k.op));
      assert.ok(!ops.has('Gemm') && !ops.has('DequantizeLinear'), [...ops].join(', '));
      assert.ok(ops.has(fixed ? 'QGemm' : 'MatMulIntegerToFloat'), [...ops].join(', '));
    });
  }

  it('MatMul + bias Add after a Reshape to a computed 2-D shape (Concat of Shape(x)[:1] and a constant, as Paddle exports a classifier head), static: the bias is int32 and onnxruntime runs QGemm', async () => {
    const i64 = (name: string, v: number[]) => makeTensor(name, DataType.INT64, [v.length], BigInt64Array.from(v.map(BigInt)));
    const m = model([
      { name: '/pool/GlobalAveragePool', op_type: 'GlobalAveragePool', input: ['x'], output: ['p'] },
      { name: '/shape/Shape', op_type: 'Shape', input: ['p'], output: ['s'] },
      { name: '/shape/Slice', op_type: 'Slice', input: ['s', 'zero', 'one'], output: ['n'] },
      { name: '/shape/Concat', op_type: 'Concat', input: ['n', 'eight'], output: ['target'], attribute: [intAttr('axis', 0)] },
      { name: '/flat/Reshape', op_type: 'Reshape', input: ['p', 'target'], output: ['f'] },
      { name: '/fc/MatMul', op_type: 'MatMul', input: ['f', 'fc.weight'], output: ['h'] },
      { name: '/fc/Add', op_type: 'Add', input: ['h', 'fc.bias'], output: ['hb'] },
      { name: '/fc/Softmax', op_type: 'Softmax', input: ['hb'], output: ['y'], attribute: [intAttr('axis', 1)] },
    ], [t('fc.weight', [8, 10], 81, 0.3), t('fc.bias', [10], 82, 0.1), i64('zero', [0]), i64('one', [1]), i64('eight', [8])], [vi('x', 1, ['n', 8, 4, 4])], [vi('y', 1, ['n', 10])]);
    const q = await quantizeAndMeasure(m, { mode: 'static', calibration: 'random:8', staticOps: 'compute' });
    const report = JSON.parse(fs.readFileSync(q.result.report, 'utf8')) as QuantizeReport;
    assert.match(report.nodes.find((d) => d.node === '/fc/MatMul')?.how ?? '', /int32 bias/);
    assert.ok(q.fidelity.cosine > 0.999, `cosine ${q.fidelity.cosine}`);
    const [feeds] = openCalibration('random:1', loadModel(q.output).model.graph!, { inputShapes: { x: [1, 8, 4, 4] } }).samples();
    const ops = new Set((await profiledKernels(q.output, feeds, 1)).map((k) => k.op));
    assert.ok(ops.has('QGemm') && !ops.has('Gemm') && !ops.has('DequantizeLinear'), [...ops].join(', '));
  });

  it('static smoothing leaves the ½ that ends a GELU scalar under --objective latency (onnxruntime fuses the GELU); --objective accuracy smooths the MLP\'s second input there', async () => {
    const dir = tmpDir();
    const input = path.join(dir, 'transformer.onnx');
    saveModel(FIXTURES.transformer.build(), input);
    const [feeds] = openCalibration('random:1', loadModel(input).model.graph!).samples();
    for (const objective of ['latency', 'accuracy'] as const) {
      const out = path.join(dir, `${objective}.onnx`);
      await quantizeModel(input, out, { mode: 'static', calibration: 'random:8', staticOps: 'compute', objective });
      const report = JSON.parse(fs.readFileSync(`${out}.report.json`, 'utf8')) as QuantizeReport;
      const fc2 = (report.smoothing ?? []).filter((d) => d.layers.some((l) => /mlp\/fc2/.test(l)));
      assert.equal(fc2.length, 2);
      const ops = new Set((await profiledKernels(out, feeds, 1)).map((k) => k.op));
      if (objective === 'latency') {
        for (const d of fc2) assert.match(d.skipped ?? '', /ends a GELU/);
        assert.ok(!ops.has('Erf') && (ops.has('Gelu') || ops.has('BiasGelu')), [...ops].join(', '));
      } else {
        assert.ok(fc2.every((d) => !d.skipped && d.alpha > 0), JSON.stringify(fc2));
        assert.ok(ops.has('Erf'), [...ops].join(', '));
      }
    }
  });

  it('static: what is computed from shapes and constants alone (a mask built from Shape) stays float, so onnxruntime still folds it at load', async () => {
    const i64 = (name: string, v: number[]) => makeTensor(name, DataType.INT64, [v.length], BigInt64Array.from(v.map(BigInt)));
    const m = model([
      { name: '/fc1/MatMul', op_type: 'MatMul', input: ['x', 'fc1.weight'], output: ['h'] },
      { name: '/mask/Shape', op_type: 'Shape', input: ['x'], output: ['s'] },
      { name: '/mask/ConstantOfShape', op_type: 'ConstantOfShape', input: ['s'], output: ['ones'], attribute: [{ name: 'value', type: AttributeType.TENSOR, t: makeTensor('v', DataType.FLOAT, [1], Float32Array.of(0.5)) }] },
      { name: '/mask/Reshape', op_type: 'Reshape', input: ['ones', 'flat'], output: ['r'] },
      { name: '/mask/Transpose', op_type: 'Transpose', input: ['r'], output: ['rt'], attribute: [{ name: 'perm', type: AttributeType.INTS, ints: [1, 0] }] },
      { name: '/mask/Slice', op_type: 'Slice', input: ['rt', 'starts', 'ends', 'axes'], output: ['mask'] },
      { name: '/fc2/MatMul', op_type: 'MatMul', input: ['mask', 'fc2.weight'], output: ['mw'] },
      { name: '/add/Add', op_type: 'Add', input: ['h', 'mw'], output: ['y'] },
    ], [t('fc1.weight', [64, 32], 81, 0.2), t('fc2.weight', [64, 32], 82, 0.2), i64('flat', [64, 16]), i64('starts', [0]), i64('ends', [16]), i64('axes', [0])],
    [vi('x', 1, [16, 64])], [vi('y', 1, [16, 32])]);
    const q = await quantizeAndMeasure(m, { mode: 'static', calibration: 'random:8', staticOps: 'compute' });
    const report = JSON.parse(fs.readFileSync(q.result.report, 'utf8')) as QuantizeReport;
    for (const n of ['/mask/Reshape', '/mask/Transpose', '/mask/Slice', '/fc2/MatMul']) assert.match(report.nodes.find((d) => d.node === n)?.skipped ?? '', /shapes and constants/, n);
    assert.match(report.nodes.find((d) => d.node === '/fc1/MatMul')?.how ?? '', /static QDQ/);
    assert.ok(q.fidelity.cosine > 0.999, `cosine ${q.fidelity.cosine}`);
    // onnxruntime folds the mask and its product at load, as in the float model: none of it runs.
    const [feeds] = openCalibration('random:1', loadModel(q.output).model.graph!).samples();
    const ran = new Set((await profiledKernels(q.output, feeds, 1)).map((k) => k.node));
    assert.ok(!['/mask/Transpose', '/mask/Slice', '/fc2/MatMul'].some((n) => ran.has(n)), [...ran].join(', '));
    // Weight mode still stores that layer's weight int8: there it is a file size, not a run-time cost.
    const w = await quantizeAndMeasure(m, { mode: 'weight', weightFormat: 'dequantize' });
    assert.match((JSON.parse(fs.readFileSync(w.result.report, 'utf8')) as QuantizeReport).nodes.find((d) => d.node === '/fc2/MatMul')?.how ?? '', /int8/);
  });

  it('static: a Gather of activations (q, k, v picked out of one tensor) takes its input\'s scale, and onnxruntime moves int8 values through it', async () => {
    const idx = (name: string, v: number) => makeTensor(name, DataType.INT64, [], BigInt64Array.of(BigInt(v)));
    const m = model([
      { name: '/qkv/MatMul', op_type: 'MatMul', input: ['x', 'qkv.weight'], output: ['qkv'] },
      { name: '/qkv/Reshape', op_type: 'Reshape', input: ['qkv', 'shape'], output: ['r'] },
      { name: '/qkv/Transpose', op_type: 'Transpose', input: ['r'], output: ['rt'], attribute: [{ name: 'perm', type: AttributeType.INTS, ints: [1, 0, 2] }] },
      { name: '/q/Gather', op_type: 'Gather', input: ['rt', 'i0'], output: ['q'] },
      { name: '/k/Gather', op_type: 'Gather', input: ['rt', 'i1'], output: ['k'] },
      { name: '/qk/MatMul', op_type: 'MatMul', input: ['q', 'kt'], output: ['y'] },
      { name: '/k/Transpose', op_type: 'Transpose', input: ['k'], output: ['kt'], attribute: [{ name: 'perm', type: AttributeType.INTS, ints: [1, 0] }] },
    ], [t('qkv.weight', [32, 96], 91, 0.2), makeTensor('shape', DataType.INT64, [3], BigInt64Array.of(16n, 3n, 32n)), idx('i0', 0), idx('i1', 1)],
    [vi('x', 1, [16, 32])], [vi('y', 1, [16, 16])]);
    const q = await quantizeAndMeasure(m, { mode: 'static', calibration: 'random:8', staticOps: 'compute' });
    const report = JSON.parse(fs.readFileSync(q.result.report, 'utf8')) as QuantizeReport;
    for (const n of ['/q/Gather', '/k/Gather']) assert.match(report.nodes.find((d) => d.node === n)?.how ?? '', /static QDQ/, n);
    const shared = new Map(report.calibration!.tensors.map((x) => [x.tensor, x.sharedWith]));
    assert.equal(shared.get('q'), 'rt');
    assert.ok(q.fidelity.cosine > 0.99, `cosine ${q.fidelity.cosine}`);
    // Against the same model with the Gathers left float: a DequantizeLinear before each of them.
    const float = await quantizeAndMeasure(m, { mode: 'static', calibration: 'random:8', staticOps: 'compute', exclude: ['/q/Gather', '/k/Gather'] });
    const [feeds] = openCalibration('random:1', loadModel(q.output).model.graph!).samples();
    const dq = async (file: string) => (await profiledKernels(file, feeds, 1)).filter((k) => k.op === 'DequantizeLinear').length;
    const [withGather, without] = [await dq(q.output), await dq(float.output)];
    assert.ok(withGather + 2 <= without, `DequantizeLinear kernels: ${withGather} with the Gathers quantized, ${without} without`);
  });

  it('Conv + Relu + MaxPool + Flatten, static: Q/DQ on activations, int8 weight, int32 bias; pass-through ops share scales', async () => {
    const s = await quantizeAndMeasure(conv(), { mode: 'static', calibration: 'random:16' });
    assert.equal(s.ops.Conv, 1);
    // The input and the Relu's output: the conv's own output goes through the Relu into that Q, which
    // onnxruntime folds the Relu into (no Q/DQ pair before the Relu, with or without boundaries).
    assert.equal(s.ops.QuantizeLinear, 2, JSON.stringify(s.ops));
    assert.equal(s.ops.DequantizeLinear, s.ops.QuantizeLinear + 2, 'weight and bias DequantizeLinear');
    const tensors = new Map<string, { scale: number; sharedWith?: string }>(s.report.calibration.tensors.map((x: { tensor: string }) => [x.tensor, x]));
    assert.equal(tensors.get('p')!.sharedWith, 'r');
    assert.equal(tensors.get('y')!.scale, tensors.get('p')!.scale);
    assert.ok(s.fidelity.cosine > 0.999, `cosine ${s.fidelity.cosine}`);
    const c = await quantizeAndMeasure(conv(), { mode: 'weight', weightFormat: 'dequantize' });
    assert.deepEqual(c.ops, { DequantizeLinear: 1, Conv: 1, Relu: 1, MaxPool: 1, Flatten: 1 });
  });

  // conv → Resize ×2 → conv: nearest and linear output values lie within the input's range, so the
  // Resize shares its input's scale, as onnxruntime's tool writes it, and onnxruntime resizes a nearest
  // Resize's uint8 values with the Q/DQ pair dropped; cubic overshoots the input's range and is calibrated
  // on its own.
  for (const mode of ['nearest', 'linear', 'cubic']) {
    it(`Conv → Resize (${mode}) → Conv, static: ${mode === 'cubic' ? 'the Resize output has its own range' : `the Resize shares its input's scale${mode === 'nearest' ? ' and onnxruntime runs it on uint8' : ''}`}`, async () => {
      const k3 = [{ name: 'kernel_shape', type: AttributeType.INTS, ints: [3, 3] }, { name: 'pads', type: AttributeType.INTS, ints: [1, 1, 1, 1] }];
      const m = model([
        { name: '/c1/Conv', op_type: 'Conv', input: ['x', 'c1.weight'], output: ['c'], attribute: k3 },
        { name: '/up/Resize', op_type: 'Resize', input: ['c', '', 'scales'], output: ['u'], attribute: [{ name: 'mode', type: AttributeType.STRING, s: new TextEncoder().encode(mode) }] },
        { name: '/c2/Conv', op_type: 'Conv', input: ['u', 'c2.weight'], output: ['y'], attribute: k3 },
      ], [t('c1.weight', [16, 3, 3, 3], 7, 0.3), t('c2.weight', [8, 16, 3, 3], 8, 0.1), makeTensor('scales', DataType.FLOAT, [4], new Float32Array([1, 1, 2, 2]))],
      [vi('x', 1, [1, 3, 8, 8])], [vi('y', 1, [1, 8, 16, 16])], 13);
      const s = await quantizeAndMeasure(m, { mode: 'static', calibration: 'random:16', objective: 'size' });
      const tensors = new Map<string, { scale: number; min: number; max: number; sharedWith?: string }>(s.report.calibration.tensors.map((x: { tensor: string }) => [x.tensor, x]));
      assert.ok(s.fidelity.cosine > 0.99, `cosine ${s.fidelity.cosine}`);
      if (mode === 'cubic') {
        assert.equal(tensors.get('u')!.sharedWith, undefined);
        assert.ok(tensors.get('u')!.max > tensors.get('c')!.max || tensors.get('u')!.min < tensors.get('c')!.min, 'cubic overshoots its input\'s range');
        return;
      }
      assert.equal(tensors.get('u')!.sharedWith, 'c');
      assert.equal(tensors.get('u')!.scale, tensors.get('c')!.scale);
      if (mode !== 'nearest') return;
      const optimized = path.join(s.dir, 'optimized.onnx');
      const ort = await import('onnxruntime-node');
      await (await ort.InferenceSession.create(s.output, { optimizedModelFilePath: optimized })).release();
      const g = loadModel(optimized).model.graph!;
      const resize = g.node!.find((n) => n.op_type === 'Resize')!;
      const feeder = g.node!.find((n) => n.output!.includes(resize.input![0]));
      assert.notEqual(feeder?.op_type, 'DequantizeLinear', `onnxruntime resizes int8 values: ${g.node!.map((n) => n.op_type).join()}`);
    });
  }

  // A MatMul weight stored [1, K, N] (some exporters keep a batch axis of one): read as [K, N] and the
  // product expanded back, so MatMulInteger and MatMulNBits take it, static gets a scale per column, and the
  // output keeps MatMul's shape whether x has fewer axes than the weight ([1, M, N] from a 2-D x) or as many.
  for (const rank of [2, 3]) {
    it(`MatMul with a [1, K, N] weight, x of rank ${rank}: dynamic, weight INT4 and static quantize it and keep the output shape`, async () => {
      const xDims = rank === 2 ? [8, 64] : [2, 8, 64];
      const yDims = rank === 2 ? [1, 8, 32] : [2, 8, 32];
      const m = model([{ name: '/fc/MatMul', op_type: 'MatMul', input: ['x', 'fc.weight'], output: ['y'] }], [t('fc.weight', [1, 64, 32], 14, 0.2)], [vi('x', 1, xDims)], [vi('y', 1, yDims)]);
      for (const [opts, kernel] of [[{ mode: 'dynamic' }, 'MatMulInteger'], [{ mode: 'weight', bits: 4 }, 'com.microsoft.MatMulNBits'], [{ mode: 'static', calibration: 'random:8', objective: 'size' }, 'DequantizeLinear']] as const) {
        const s = await quantizeAndMeasure(m, opts);
        assert.ok(s.result.quantized.includes('/fc/MatMul'), `${opts.mode}: ${JSON.stringify(s.report.skipped)}`);
        assert.ok((s.ops[kernel] ?? 0) >= 1 || (s.ops.DynamicQuantizeMatMul ?? 0) >= 1, `${opts.mode}: ${JSON.stringify(s.ops)}`);
        assert.ok(s.fidelity.cosine > 0.99, `${opts.mode}: cosine ${s.fidelity.cosine}`);
        const ort = await import('onnxruntime-node');
        const session = await ort.InferenceSession.create(s.output);
        const x = new ort.Tensor('float32', new Float32Array(xDims.reduce((a, b) => a * b, 1)).fill(0.5), xDims);
        assert.deepEqual((await session.run({ x })).y.dims, yDims, opts.mode);
        await session.release();
        if (opts.mode === 'static') {
          const w = loadModel(s.output).model.graph!.node!.find((n) => n.op_type === 'DequantizeLinear' && (n.input![0] ?? '').includes('fc.weight'));
          const scale = loadModel(s.output).model.graph!.initializer!.find((i) => i.name === w?.input![1]);
          assert.deepEqual(scale?.dims?.map(Number), [32], 'a scale per output column');
        }
      }
    });
  }

  it('Gather (embedding table), weight INT8: one scale per row', async () => {
    const r = await quantizeAndMeasure(embedding(), { mode: 'weight', weightFormat: 'dequantize' });
    assert.deepEqual(r.ops, { DequantizeLinear: 1, Gather: 1 });
    assert.ok(r.fidelity.cosine > 0.9999);
    assert.match(r.report.nodes[0].how, /per-channel \(axis 0\)/);
  });

  it('Gather (embedding table), dynamic INT8: GatherBlockQuantized keeps the table int8; a small table stays float', async () => {
    const table = () => model([{ name: '/embed/Gather', op_type: 'Gather', input: ['embed.weight', 'ids'], output: ['y'] }], [t('embed.weight', [512, 64], 7)], [vi('ids', DataType.INT64, ['n', 4])], [vi('y', 1, ['n', 4, 64])]);
    const r = await quantizeAndMeasure(table(), { mode: 'dynamic' });
    assert.deepEqual(r.ops, { 'com.microsoft.GatherBlockQuantized': 1 });
    assert.ok(r.fidelity.cosine > 0.9999, `cosine ${r.fidelity.cosine}`);
    assert.ok(r.result.weightBytes.before / r.result.weightBytes.after > 3.5);
    await assert.rejects(quantizeAndMeasure(embedding(), { mode: 'dynamic' }), /a small table \(50 × 16\)/);
  });

  for (const method of ['minmax', 'percentile', 'entropy', 'mse'] as const) {
    it(`Add + Concat, static with ${method} calibration: every activation through Q/DQ, close to float`, async () => {
      const r = await quantizeAndMeasure(addConcat(), { mode: 'static', calibration: 'random:16', calibrationMethod: method, staticOps: 'all' });
      // x, x2 and s; the graph output y stays float (nothing reads it inside the graph)
      assert.equal(r.ops.QuantizeLinear, 3, JSON.stringify(r.ops));
      assert.ok(r.fidelity.cosine > 0.99, `cosine ${r.fidelity.cosine}`);
      assert.equal(r.report.calibration.method, method);
      for (const tc of r.report.calibration.tensors) assert.ok(tc.clip[0] <= 0 && tc.clip[1] >= 0 && tc.scale > 0);
    });
  }

  it('quantizing nothing is an error naming why, and writes nothing (never a crash, never a silent copy)', async () => {
    const dir = tmpDir();
    const run = async (m: ReturnType<typeof model>, o: Parameters<typeof quantizeAndMeasure>[1]) => {
      const input = path.join(dir, 'in.onnx'), output = path.join(dir, 'out.onnx');
      saveModel(m, input);
      await assert.rejects(quantizeModel(input, output, o), (e: Error) => { assert.ok(!fs.existsSync(output), 'no output written'); throw e; });
    };
    const products = model([{ name: '/mm/MatMul', op_type: 'MatMul', input: ['x', 'x2'], output: ['y'] }], [], [vi('x', 1, [4, 16]), vi('x2', 1, [16, 4])], [vi('y', 1, [4, 4])]);
    await assert.rejects(run(products, { mode: 'weight' }), /nothing was quantized in weight mode: 1 node skipped \(1: input 1 is not a constant float32\/float16 weight\)/);
    // A conv net in dynamic mode at an opset that cannot be raised to 10 (a BatchNormalization that
    // normalises per element, which opset 9 dropped): say which mode would take it.
    const old = conv();
    old.opset_import = [{ domain: '', version: 8 }];
    old.graph!.node!.splice(1, 0, { name: '/bn/BatchNormalization', op_type: 'BatchNormalization', input: ['c', 'bn.s', 'bn.b', 'bn.m', 'bn.v'], output: ['cb'], attribute: [{ name: 'spatial', type: AttributeType.INT, i: 0 }] });
    old.graph!.node![2].input = ['cb'];
    old.graph!.initializer!.push(t('bn.s', [8, 8, 8], 7, 0.1), t('bn.b', [8, 8, 8], 8, 0.1), t('bn.m', [8, 8, 8], 9, 0.1), makeTensor('bn.v', DataType.FLOAT, [8, 8, 8], new Float32Array(512).fill(1)));
    await assert.rejects(run(old, { mode: 'dynamic' }), /nothing was quantized in dynamic mode: 1 node skipped \(1: dynamic Conv needs opset 10 \(ConvInteger\); this model is opset 8 and could not be raised \(BatchNormalization '\/bn\/BatchNormalization' normalises per element.*--mode weight/);
    // An already quantized model (an earlier output): refused in every mode, before anything runs.
    const q = await quantizeAndMeasure(conv(), { mode: 'static', calibration: 'random:8', objective: 'size' });
    for (const mode of ['static', 'dynamic', 'weight'] as const) {
      await assert.rejects(quantizeModel(q.output, path.join(dir, 'twice.onnx'), { mode, calibration: 'random:4' }), /is already quantized \(\d+ DequantizeLinear, \d+ QuantizeLinear\): quantize the float model it came from/);
      assert.ok(!fs.existsSync(path.join(dir, 'twice.onnx')));
    }
    // Nothing of the mode's kind at all (an embedding-free model in weight mode with only a Relu).
    const plain = model([{ name: '/r/Relu', op_type: 'Relu', input: ['x'], output: ['y'] }], [], [vi('x', 1, [4, 16])], [vi('y', 1, [4, 16])]);
    await assert.rejects(run(plain, { mode: 'weight' }), /nothing was quantized in weight mode: it quantizes MatMul, Gemm, Conv.*and the model has none it can take$/);
  });
  // onnxruntime quantizes a float bias of a Q/DQ ConvTranspose itself at load; below opset 13 it wrote a
  // standard DequantizeLinear with an axis there, which the opset refuses (Keypoint R-CNN at opset 11).
  for (const opset of [11, 13]) it(`static INT8: a ConvTranspose with a bias, its output quantized, at opset ${opset}: int32 bias written, the model loads`, async () => {
    const m = model([
      { name: '/up/ConvTranspose', op_type: 'ConvTranspose', input: ['x', 'up.weight', 'up.bias'], output: ['u'], attribute: [{ name: 'strides', type: AttributeType.INTS, ints: [2, 2] }] },
      { name: '/head/Conv', op_type: 'Conv', input: ['u', 'head.weight'], output: ['y'] },
    ], [t('up.weight', [8, 4, 2, 2], 8, 0.3), t('up.bias', [4], 9, 0.1), t('head.weight', [4, 4, 1, 1], 10, 0.3)], [vi('x', 1, [1, 8, 6, 6])], [vi('y', 1, [1, 4, 12, 12])], opset);
    const { fidelity, report } = await quantizeAndMeasure(m, { mode: 'static', calibration: 'random:4' });
    assert.ok(fidelity.cosine > 0.999, `cosine ${fidelity.cosine}`);
    assert.match(report.nodes.find((n: { node: string }) => n.node === '/up/ConvTranspose').how, /int32 bias/);
  });

  // A conv whose input range is tiny beside its bias (activations that shrink through a network without
  // trained statistics: torchvision's S3D with random weights). With the weight's own scale the int32 bias
  // overflowed (clamped, or wrapping in the kernel's accumulator once the products were added).
  it('static INT8: a bias far larger than its input\'s range still fits the int32 accumulator (the weight scale is raised for it)', async () => {
    const k3 = [{ name: 'kernel_shape', type: AttributeType.INTS, ints: [3, 3] }, { name: 'pads', type: AttributeType.INTS, ints: [1, 1, 1, 1] }];
    const bias = makeTensor('conv.bias', DataType.FLOAT, [8], Float32Array.from({ length: 8 }, (_, c) => 0.5 - 0.13 * c));
    const m = model([
      { name: '/shrink/Mul', op_type: 'Mul', input: ['x', 'tiny'], output: ['xs'] },
      { name: '/conv/Conv', op_type: 'Conv', input: ['xs', 'conv.weight', 'conv.bias'], output: ['y'], attribute: k3 },
    ], [makeTensor('tiny', DataType.FLOAT, [], Float32Array.of(1e-7)), t('conv.weight', [8, 16, 3, 3], 7, 0.3), bias], [vi('x', 1, [1, 16, 8, 8])], [vi('y', 1, [1, 8, 8, 8])]);
    const { fidelity, output } = await quantizeAndMeasure(m, { mode: 'static', calibration: 'random:8' });
    assert.ok(fidelity.cosine > 0.999, `cosine ${fidelity.cosine}`);
    // The stored bias leaves room for 16·9 products of 255 × 128 in int32.
    const g = loadModel(output).model.graph!;
    const q = g.initializer!.find((x) => x.name === 'conv.bias_quantized')!;
    const values = Array.from(readTensor(q).data as Int32Array);
    assert.ok(values.length === 8 && values.every((v) => Math.abs(v) <= 2 ** 31 - 1 - 16 * 9 * 255 * 128), `bias ${values}`);
  });
});

describe('float16 exports, weight-only', function () {
  this.timeout(120_000);
  it('INT8 and INT4 (MatMulNBits) keep the model in float16 and stay close to it', async () => {
    const { FIXTURES } = await import('../../src/core/fixtures');
    const { toHalfModel } = await import('../helpers/models');
    const m = toHalfModel(FIXTURES.transformer.build());
    const int8 = await quantizeAndMeasure(m, { mode: 'weight', bits: 8 });
    assert.ok(int8.result.quantized.length >= 13, `${int8.result.quantized.length} quantized`);
    assert.ok(int8.fidelity.cosine > 0.999, `cosine ${int8.fidelity.cosine}`);
    // Every weight format onnxruntime runs on float16 (the measured default may pick any of them).
    for (const weightFormat of ['dequantize', 'nbits', 'expand', 'nbits+expand'] as const) {
      const r = await quantizeAndMeasure(toHalfModel(FIXTURES.transformer.build()), { mode: 'weight', bits: 8, weightFormat });
      assert.ok(r.fidelity.cosine > 0.999, `${weightFormat}: cosine ${r.fidelity.cosine}`);
      assert.equal(loadModel(r.output).model.graph!.output![0].type!.tensor_type!.elem_type, DataType.FLOAT16, `${weightFormat}: float16 output`);
    }
    const int4 = await quantizeAndMeasure(toHalfModel(FIXTURES.transformer.build()), { mode: 'weight', bits: 4, algorithm: 'gptq', calibration: 'random:8' });
    assert.ok(int4.ops['com.microsoft.MatMulNBits'] >= 13, JSON.stringify(int4.ops));
    assert.ok(int4.fidelity.cosine > 0.99, `cosine ${int4.fidelity.cosine}`);
    assert.ok(int4.result.weightBytes.before / int4.result.weightBytes.after > 3, 'float16 → int4 shrinks ~3.5x');
  });
});
