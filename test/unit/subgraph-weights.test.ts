import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { quantizeModel } from '../../src/core/jobs/quantize-model';
import { analyzeSensitivity } from '../../src/core/sensitivity/analyze';
import { pruneModel } from '../../src/core/prune/prune-model';
import { DataType } from '../../src/core/onnx/dtypes';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { AttributeType, onnx, type GraphProto, type ModelProto } from '../../src/core/onnx/proto';
import { makeTensor, readTensor, toFloat32 } from '../../src/core/onnx/tensor';
import { walkGraphs } from '../../src/core/onnx/walk';
import { errorStats } from '../../src/core/quant/tensor-quant';
import { vi } from '../helpers/models';
import { writeSampleFolders } from '../helpers/npy';
import { attrGraph } from '../../src/core/onnx/attributes';
import { profileOpTypes } from '../../src/core/runtime/profile';
import { runOrt, tmpDir } from '../helpers/util';

const weights = (name: string, dims: number[], seed: number) => makeTensor(name, DataType.FLOAT, dims, Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37 + seed) * 0.2));
const graphAttr = (name: string, g: GraphProto) => ({ name, type: AttributeType.GRAPH, g });

/**
 * If(cond): the then branch multiplies X by its own initializer `w`, the else branch by another of the
 * same name (scopes allow it) and then, one If deeper, a Gemm whose weight `G` is the main graph's.
 */
function branchedModel(): ModelProto {
  const inner: GraphProto = {
    name: 'inner', node: [{ name: 'gemm', op_type: 'Gemm', input: ['e1', 'G'], output: ['e2'], attribute: [{ name: 'transB', type: AttributeType.INT, i: 1 }] }],
    output: [vi('e2', DataType.FLOAT, ['n', 24])],
  };
  const innerElse: GraphProto = { name: 'inner_else', node: [{ name: 'id', op_type: 'Identity', input: ['e1'], output: ['e3'] }], output: [vi('e3', DataType.FLOAT, ['n', 24])] };
  const thenG: GraphProto = {
    name: 'then', node: [{ name: 'then_mm', op_type: 'MatMul', input: ['X', 'w'], output: ['t1'] }, { name: 'then_relu', op_type: 'Relu', input: ['t1'], output: ['t2'] }],
    initializer: [weights('w', [32, 24], 1)], output: [vi('t2', DataType.FLOAT, ['n', 24])],
  };
  const elseG: GraphProto = {
    name: 'else',
    node: [
      { name: 'else_mm', op_type: 'MatMul', input: ['X', 'w'], output: ['e1'] },
      { name: 'inner_if', op_type: 'If', input: ['cond'], output: ['e4'], attribute: [graphAttr('then_branch', innerElse), graphAttr('else_branch', inner)] },
    ],
    initializer: [weights('w', [32, 24], 2)], output: [vi('e4', DataType.FLOAT, ['n', 24])],
  };
  return onnx.ModelProto.create({
    ir_version: 8, opset_import: [{ domain: '', version: 17 }], producer_name: 'test',
    graph: {
      name: 'g', node: [{ name: 'if', op_type: 'If', input: ['cond'], output: ['Y'], attribute: [graphAttr('then_branch', thenG), graphAttr('else_branch', elseG)] }],
      initializer: [weights('G', [24, 24], 3)], input: [vi('cond', DataType.BOOL, []), vi('X', DataType.FLOAT, ['n', 32])], output: [vi('Y', DataType.FLOAT, ['n', 24])],
    },
  });
}

/** If(cond): then relu(X·W), else sigmoid(X·W), W [32, 48] the main graph's (a merged decoder's branches share every weight). */
function sharedWeightModel(): ModelProto {
  const branch = (name: string, act: string): GraphProto => ({
    name, node: [{ name: `${name}_mm`, op_type: 'MatMul', input: ['X', 'W'], output: [`${name}_m`] }, { name: `${name}_act`, op_type: act, input: [`${name}_m`], output: [`${name}_y`] }],
    output: [vi(`${name}_y`, DataType.FLOAT, ['n', 48])],
  });
  return onnx.ModelProto.create({
    ir_version: 8, opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'g', node: [{ name: 'if', op_type: 'If', input: ['cond'], output: ['Y'], attribute: [graphAttr('then_branch', branch('then', 'Relu')), graphAttr('else_branch', branch('else', 'Sigmoid'))] }],
      initializer: [weights('W', [32, 48], 9)], input: [vi('cond', DataType.BOOL, []), vi('X', DataType.FLOAT, ['n', 32])], output: [vi('Y', DataType.FLOAT, ['n', 48])],
    },
  });
}

// Layers inside If branches and Loop/Scan bodies (Silero VAD, merged decoders): weight and dynamic mode
// quantize them whether their weights are the main graph's or the body's own initializers (moved to the main graph).
describe('weight and dynamic mode inside subgraphs', function () {
  this.timeout(120_000);
  const dir = tmpDir();
  const input = path.join(dir, 'branched.onnx');
  saveModel(branchedModel(), input);
  const X = new ort.Tensor('float32', Float32Array.from({ length: 4 * 32 }, (_, i) => Math.cos(i * 0.91)), [4, 32]);
  const feeds = (c: boolean) => ({ cond: new ort.Tensor('bool', [c], []), X });

  for (const format of ['dequantize', 'expand'] as const) {
    it(`weight INT8 (${format}): every branch's layer quantized, each branch still reading its own weight`, async () => {
      const output = path.join(dir, `q-${format}.onnx`);
      const r = await quantizeModel(input, output, { mode: 'weight', bits: 8, weightFormat: format, calibration: 'random:4' });
      assert.deepEqual([...r.quantized].sort(), ['else_mm', 'gemm', 'then_mm']);
      // No float weight is left in the file: the bodies' own ones were moved out, and all three replaced.
      const q = loadModel(output).model;
      for (const { graph } of walkGraphs(q.graph!)) assert.ok(!(graph.initializer ?? []).some((t) => t.data_type === DataType.FLOAT && (t.dims ?? []).reduce((a, d) => a * Number(d), 1) >= 24 * 24), graph.name ?? '');
      // Both branches, the nested one too: as the float model computes them (a branch reading the other's
      // `w` after the move would be far off).
      for (const c of [true, false]) {
        const [f, g] = [await runOrt(input, feeds(c)), await runOrt(output, feeds(c))];
        const sqnr = errorStats(f.Y, g.Y).sqnr;
        assert.ok(sqnr > 25, `cond ${c}: ${sqnr.toFixed(1)} dB`);
      }
    });
  }

  it('dynamic INT8: the activations quantized inside the branches, where they are', async () => {
    const output = path.join(dir, 'dynamic.onnx');
    const r = await quantizeModel(input, output, { mode: 'dynamic', calibration: 'random:4' });
    assert.deepEqual([...r.quantized].sort(), ['else_mm', 'gemm', 'then_mm']);
    // Each DynamicQuantizeLinear sits in the body that reads its activation (the main graph cannot see it).
    const q = loadModel(output).model;
    const bodies = [...walkGraphs(q.graph!)].filter(({ depth }) => depth > 0);
    assert.equal(bodies.reduce((a, { graph }) => a + (graph.node ?? []).filter((n) => n.op_type === 'DynamicQuantizeLinear').length, 0), 3);
    assert.ok(!(q.graph!.node ?? []).some((n) => n.op_type === 'DynamicQuantizeLinear'));
    for (const c of [true, false]) {
      const sqnr = errorStats((await runOrt(input, feeds(c))).Y, (await runOrt(output, feeds(c))).Y).sqnr;
      assert.ok(sqnr > 25, `cond ${c}: ${sqnr.toFixed(1)} dB`);
    }
  });

  it('magnitude and 2:4 pruning: every branch\'s layer pruned in place, a weight both branches share once; structured pruning says it keeps to the main graph', async () => {
    const weightOf = (file: string, node: string) => {
      const m = loadModel(file).model;
      const n = [...walkGraphs(m.graph!)].flatMap(({ graph }) => graph.node ?? []).find((x) => x.name === node)!;
      const t = [...walkGraphs(m.graph!)].flatMap(({ graph }) => graph.initializer ?? []).find((x) => x.name === n.input![1])!;
      return toFloat32(readTensor(t));
    };
    const mm = (a: Float32Array, b: Float32Array, n: number, k: number, m: number, bT = false) => Float32Array.from({ length: n * m }, (_, i) => {
      let acc = 0;
      for (let j = 0; j < k; j++) acc += a[Math.floor(i / m) * k + j] * (bT ? b[(i % m) * k + j] : b[j * m + (i % m)]);
      return acc;
    });
    const x = X.data as Float32Array;
    for (const method of ['magnitude', 'nm'] as const) {
      const output = path.join(dir, `pruned-${method}.onnx`);
      const r = await pruneModel(input, output, { method, sparsity: 0.5, calibration: 'random:2' });
      assert.deepEqual(r.layers.map((l) => l.node).sort(), ['else_mm', 'gemm', 'then_mm'], method);
      assert.ok(r.warnings.some((w) => /moved 2 weights that If\/Loop\/Scan bodies kept as their own initializers to the main graph .*to prune them/.test(w)), r.warnings.join('\n'));
      // Half of the weights are zero (N:M: half of each layer's; magnitude ranks them together), the then
      // and else `w` each pruned from its own values.
      const ws = ['then_mm', 'else_mm', 'gemm'].map((node) => weightOf(output, node));
      const zeros = ws.map((w) => w.filter((v) => v === 0).length);
      if (method === 'nm') ws.forEach((w, k) => assert.equal(zeros[k], w.length / 2, `${method} layer ${k}`));
      else ws.forEach((w, k) => assert.ok(zeros[k] > 0.3 * w.length && zeros[k] < 0.7 * w.length, `${method} layer ${k}: ${zeros[k]} of ${w.length}`));
      assert.ok(Math.abs(zeros.reduce((a, b) => a + b, 0) / ws.reduce((a, w) => a + w.length, 0) - 0.5) < 0.01, `${method}: ${zeros.join(', ')}`);
      assert.notDeepEqual(weightOf(output, 'then_mm'), weightOf(output, 'else_mm'));
      // Both branches run in onnxruntime and compute with their own pruned weights: then relu(X·w), else
      // (X·w')·Gᵀ through the nested If.
      const expected = { then: mm(x, ws[0], 4, 32, 24).map((v) => Math.max(0, v)), else: mm(mm(x, ws[1], 4, 32, 24), ws[2], 4, 24, 24, true) };
      for (const c of [true, false]) {
        const y = (await runOrt(output, feeds(c))).Y, want = c ? expected.then : expected.else;
        assert.ok(errorStats(want, y).sqnr > 100, `${method} cond ${c}: ${errorStats(want, y).sqnr.toFixed(1)} dB from X and the pruned weights`);
      }
    }
    // A weight both branches read alike is pruned once, and both compute with it.
    const shared = path.join(dir, 'shared-weight.onnx');
    saveModel(sharedWeightModel(), shared);
    const r = await pruneModel(shared, path.join(dir, 'shared-pruned.onnx'), { method: 'magnitude', sparsity: 0.5, calibration: 'random:2' });
    assert.deepEqual(r.layers.map((l) => l.node), ['then_mm']);
    const w = weightOf(path.join(dir, 'shared-pruned.onnx'), 'else_mm');
    assert.equal(w.filter((v) => v === 0).length, w.length / 2);
    const xw = mm(x, w, 4, 32, 48);
    for (const [c, f] of [[true, (v: number) => Math.max(0, v)], [false, (v: number) => 1 / (1 + Math.exp(-v))]] as const) {
      const y = (await runOrt(path.join(dir, 'shared-pruned.onnx'), feeds(c))).Y;
      assert.ok(errorStats(xw.map(f), y).sqnr > 100, `shared, cond ${c}`);
    }
    await assert.rejects(pruneModel(input, path.join(dir, 'structured.onnx'), { method: 'structured', sparsity: 0.5, calibration: 'random:2' }), /has no layer to prune \(MatMul, Gemm, Conv or ConvTranspose with a stored float weight\): 3 inside If\/Loop\/Scan bodies, which structured pruning does not reach \(--method magnitude or nm prunes them\)$/);
  });

  it('sensitivity ranks main-graph layers only, and says so when every layer is in a body', async () => {
    await assert.rejects(analyzeSensitivity(input, { mode: 'weight', calibration: 'random:2', output: null }), /has no layer that weight-mode quantization applies to in its main graph \(3 inside If\/Loop\/Scan bodies, which quantize takes but sensitivity does not rank\)/);
    // Static mode in a Loop body (a torch.jit.script loop): no calibrated ranges there, and the error says where they are.
    const body: GraphProto = {
      name: 'body', input: [vi('i', DataType.INT64, []), vi('cond_in', DataType.BOOL, []), vi('h', DataType.FLOAT, ['n', 32])],
      node: [{ name: 'loop_mm', op_type: 'MatMul', input: ['h', 'L'], output: ['h2'] }, { name: 'keep', op_type: 'Identity', input: ['cond_in'], output: ['cond_out'] }],
      output: [vi('cond_out', DataType.BOOL, []), vi('h2', DataType.FLOAT, ['n', 32])],
    };
    const looped = path.join(dir, 'looped.onnx');
    saveModel(onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'g', node: [{ name: 'loop', op_type: 'Loop', input: ['trips', 'go', 'X'], output: ['Y'], attribute: [graphAttr('body', body)] }],
        initializer: [weights('L', [32, 32], 5), makeTensor('trips', DataType.INT64, [], BigInt64Array.of(3n)), makeTensor('go', DataType.BOOL, [], Uint8Array.of(1))],
        input: [vi('X', DataType.FLOAT, ['n', 32])], output: [vi('Y', DataType.FLOAT, ['n', 32])],
      },
    }), looped);
    await assert.rejects(analyzeSensitivity(looped, { mode: 'static', calibration: 'random:2', output: null }), /has no layer that static-mode quantization applies to in its main graph \(1 inside Loop\/Scan bodies or the If branch fewer calibration samples take, where static mode has no calibrated ranges; --mode weight or dynamic quantizes them\)$/);
  });
});

// Static INT8 calibrates the If branch every calibration sample takes: inlined for calibration, written
// back into its If with its Q/DQ; the branch no sample took stays float, as it was.
describe('static INT8 inside the If branch the calibration data takes', function () {
  this.timeout(120_000);
  const dir = tmpDir();
  const input = path.join(dir, 'branched.onnx');
  saveModel(branchedModel(), input);
  const X = (k: number) => Float32Array.from({ length: 4 * 32 }, (_, i) => Math.cos(i * 0.91 + k));
  const feeds = (c: boolean, k = 0) => ({ cond: new ort.Tensor('bool', [c], []), X: new ort.Tensor('float32', X(k), [4, 32]) });
  /** A calibration folder of six samples, `conds[k]` the k-th one's condition. */
  const data = (name: string, conds: boolean[]) => writeSampleFolders(path.join(dir, name), conds.map((c, k) => feeds(c, k + 1)));
  const qdqIn = (g: GraphProto | undefined) => [...walkGraphs(g!)].reduce((a, { graph }) => a + (graph.node ?? []).filter((n) => n.op_type === 'QuantizeLinear').length, 0);

  it('every sample takes then: its MatMul quantized inside it, the else branch and the main graph as they were', async () => {
    const output = path.join(dir, 'static-then.onnx');
    const r = await quantizeModel(input, output, { mode: 'static', calibration: data('data-true', Array(6).fill(true)), staticOps: 'compute' });
    assert.deepEqual(r.quantized, ['then_mm']);
    assert.ok(r.warnings.some((w) => /If 'if': every calibration sample takes its then branch, so its 1 layer is calibrated and quantized inside it; the layers of the other branch stay float/.test(w)), r.warnings.join('\n'));
    const q = loadModel(output).model.graph!;
    assert.deepEqual(q.node!.map((n) => n.op_type), ['If']);
    const ifNode = q.node![0];
    assert.ok(qdqIn(attrGraph(ifNode, 'then_branch')) >= 1);
    assert.equal(qdqIn(attrGraph(ifNode, 'else_branch')), 0);
    // The branch holds its own int8 weight and scales (onnxruntime fuses Q/DQ only around a body's own constants).
    assert.ok((attrGraph(ifNode, 'then_branch')!.initializer ?? []).some((t) => t.data_type === DataType.INT8 && (t.dims ?? []).length === 2));
    // Then: int8 and close to float; else: the float branch, exactly.
    for (let k = 0; k < 3; k++) {
      const sqnr = errorStats((await runOrt(input, feeds(true, k))).Y, (await runOrt(output, feeds(true, k))).Y).sqnr;
      assert.ok(sqnr > 25, `then, sample ${k}: ${sqnr.toFixed(1)} dB`);
      assert.deepEqual((await runOrt(output, feeds(false, k))).Y, (await runOrt(input, feeds(false, k))).Y);
    }
  });

  it('every sample takes else: its layers (one If deeper too) quantized there, the then branch as it was', async () => {
    const output = path.join(dir, 'static-else.onnx');
    const r = await quantizeModel(input, output, { mode: 'static', calibration: data('data-false', Array(6).fill(false)), staticOps: 'compute' });
    assert.deepEqual([...r.quantized].sort(), ['else_mm', 'gemm']);
    const ifNode = loadModel(output).model.graph!.node![0];
    assert.equal(qdqIn(attrGraph(ifNode, 'then_branch')), 0);
    const inner = attrGraph(attrGraph(ifNode, 'else_branch')!.node!.find((n) => n.op_type === 'If')!, 'else_branch');
    assert.ok(qdqIn(inner) >= 1, 'the nested If got its Q/DQ back in its own branch');
    for (let k = 0; k < 3; k++) {
      const sqnr = errorStats((await runOrt(input, feeds(false, k))).Y, (await runOrt(output, feeds(false, k))).Y).sqnr;
      assert.ok(sqnr > 25, `else, sample ${k}: ${sqnr.toFixed(1)} dB`);
      assert.deepEqual((await runOrt(output, feeds(true, k))).Y, (await runOrt(input, feeds(true, k))).Y);
    }
  });

  it('an activation the main graph and the branch both read: the branch gets its own DequantizeLinear, and onnxruntime fuses both convs', async () => {
    // X → Relu → r, read by a main-graph conv and by a conv in the then branch (each followed by a second
    // conv, whose int8 input lets the first run as QLinearConv).
    const branch = (name: string, w: string): GraphProto => ({
      name, node: [{ name: `${name}_op`, op_type: 'Conv', input: ['r', w], output: [`${name}_c`] }, { name: `${name}_op2`, op_type: 'Conv', input: [`${name}_c`, 'W2'], output: [`${name}_y`] }],
      output: [vi(`${name}_y`, DataType.FLOAT, [1, 8, 4, 4])],
    });
    const model = onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'g',
        node: [
          { name: 'relu', op_type: 'Relu', input: ['X'], output: ['r'] },
          { name: 'main_conv', op_type: 'Conv', input: ['r', 'Wm'], output: ['m1'] },
          { name: 'main_conv2', op_type: 'Conv', input: ['m1', 'W2'], output: ['m'] },
          { name: 'if', op_type: 'If', input: ['cond'], output: ['b'], attribute: [graphAttr('then_branch', branch('then', 'Wb')), graphAttr('else_branch', branch('else', 'Wm'))] },
          { name: 'sum', op_type: 'Add', input: ['m', 'b'], output: ['Y'] },
        ],
        initializer: [weights('Wm', [8, 4, 3, 3], 6), weights('Wb', [8, 4, 3, 3], 7), weights('W2', [8, 8, 3, 3], 8)],
        input: [vi('cond', DataType.BOOL, []), vi('X', DataType.FLOAT, [1, 4, 8, 8])], output: [vi('Y', DataType.FLOAT, [1, 8, 4, 4])],
      },
    });
    const file = path.join(dir, 'shared-input.onnx');
    saveModel(model, file);
    const d = writeSampleFolders(path.join(dir, 'data-shared'), Array.from({ length: 4 }, (_, k) => ({
      cond: new ort.Tensor('bool', [true], []), X: new ort.Tensor('float32', Float32Array.from({ length: 256 }, (_, i) => Math.sin(i * 0.37 + k)), [1, 4, 8, 8]),
    })));
    const output = path.join(dir, 'shared-input-static.onnx');
    const r = await quantizeModel(file, output, { mode: 'static', calibration: d, staticOps: 'compute' });
    assert.deepEqual([...r.quantized].sort(), ['main_conv', 'main_conv2', 'then_op', 'then_op2']);
    const then = attrGraph(loadModel(output).model.graph!.node!.find((n) => n.op_type === 'If')!, 'then_branch')!;
    assert.ok(then.node!.some((n) => n.op_type === 'DequantizeLinear' && n.output![0] === then.node!.find((c) => c.op_type === 'Conv')!.input![0]));
    const feeds = { cond: new ort.Tensor('bool', [true], []), X: new ort.Tensor('float32', Float32Array.from({ length: 256 }, (_, i) => Math.cos(i * 0.21)), [1, 4, 8, 8]) };
    const prof = await profileOpTypes(output, feeds, 2);
    // The second convs' outputs go to float ops (the Add, the branch's output): those two run float.
    assert.equal(prof.byOpType.find((o) => o.op === 'QLinearConv')?.nodes, 2, JSON.stringify(prof.byOpType));
  });

  it('a weight both branches share (a merged decoder\'s): stored once, as int8; the other branch reads it expanded at load', async () => {
    const file = path.join(dir, 'shared-weight.onnx');
    saveModel(sharedWeightModel(), file);
    const output = path.join(dir, 'shared-weight-static.onnx');
    const r = await quantizeModel(file, output, { mode: 'static', calibration: data('data-true', Array(6).fill(true)), staticOps: 'compute', objective: 'size' });
    assert.deepEqual(r.quantized, ['then_mm']);
    assert.ok(r.warnings.some((w) => /its else branch reads the 1 weight it shares with the quantized one from their int8 copies/.test(w)), r.warnings.join('\n'));
    // No float copy of W anywhere: 32×48 int8 once.
    const q = loadModel(output).model;
    const stored = [...walkGraphs(q.graph!)].flatMap(({ graph }) => graph.initializer ?? []).filter((t) => (t.dims ?? []).reduce((a, d) => a * Number(d), 1) === 32 * 48);
    assert.deepEqual(stored.map((t) => t.data_type), [DataType.INT8]);
    assert.ok(r.sizeAfter < r.sizeBefore / 2, `${r.sizeBefore} -> ${r.sizeAfter}`);
    for (const c of [true, false]) {
      for (let k = 0; k < 2; k++) {
        const sqnr = errorStats((await runOrt(file, feeds(c, k))).Y, (await runOrt(output, feeds(c, k))).Y).sqnr;
        assert.ok(sqnr > 25, `cond ${c}, sample ${k}: ${sqnr.toFixed(1)} dB`);
      }
    }
  });

  it('samples that take both branches: the one most take is calibrated on those samples alone and quantized, the other stays float', async () => {
    // 4 samples take then, 2 else.
    const d = data('data-mixed', [0, 1, 2, 3, 4, 5].map((k) => k % 3 !== 2));
    const output = path.join(dir, 'static-mixed.onnx');
    const r = await quantizeModel(input, output, { mode: 'static', calibration: d, staticOps: 'compute' });
    assert.deepEqual(r.quantized, ['then_mm']);
    assert.ok(r.warnings.some((w) => /If 'if': 4 of its 6 calibration samples take its then branch \(the rest are left out of calibration\), so its 1 layer is calibrated/.test(w)), r.warnings.join('\n'));
    const report = JSON.parse(fs.readFileSync(r.report, 'utf8')) as { calibration: { samples: number } };
    assert.equal(report.calibration.samples, 4);
    const ifNode = loadModel(output).model.graph!.node![0];
    assert.ok(qdqIn(attrGraph(ifNode, 'then_branch')) >= 1);
    assert.equal(qdqIn(attrGraph(ifNode, 'else_branch')), 0);
    for (const c of [true, false]) {
      const sqnr = errorStats((await runOrt(input, feeds(c))).Y, (await runOrt(output, feeds(c))).Y).sqnr;
      assert.ok(sqnr > 25, `cond ${c}: ${sqnr.toFixed(1)} dB`);
    }
  });

  it('a Transpose of an int8 activation that a branch reads: written so onnxruntime loads it (its QDQ propagation aborts the process otherwise)', async () => {
    // X → Conv → Relu → Transpose, which both branches read from outside: onnxruntime 1.30 asserts on
    // DequantizeLinear → Transpose → (a body's read) when it moves the DequantizeLinear past the Transpose.
    const sub = (name: string, op: string): GraphProto => ({ name, node: [{ name: `${name}_op`, op_type: op, input: ['t'], output: [`${name}_y`] }], output: [vi(`${name}_y`, DataType.FLOAT, [1, 8, 6, 6])] });
    const model = onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'g',
        node: [
          { name: 'conv', op_type: 'Conv', input: ['X', 'W'], output: ['c'] },
          { name: 'relu', op_type: 'Relu', input: ['c'], output: ['r'] },
          { name: 'tr', op_type: 'Transpose', input: ['r'], output: ['t'], attribute: [{ name: 'perm', type: AttributeType.INTS, ints: [0, 1, 3, 2] }] },
          { name: 'if', op_type: 'If', input: ['cond'], output: ['Y'], attribute: [graphAttr('then_branch', sub('then', 'Neg')), graphAttr('else_branch', sub('else', 'Abs'))] },
        ],
        initializer: [weights('W', [8, 4, 3, 3], 5)],
        input: [vi('cond', DataType.BOOL, []), vi('X', DataType.FLOAT, [1, 4, 8, 8])], output: [vi('Y', DataType.FLOAT, [1, 8, 6, 6])],
      },
    });
    const file = path.join(dir, 'captured.onnx');
    saveModel(model, file);
    const output = path.join(dir, 'captured-static.onnx');
    const r = await quantizeModel(file, output, { mode: 'static', calibration: 'random:4', staticOps: 'compute' });
    assert.ok(r.quantized.includes('conv') && r.quantized.includes('tr'), r.quantized.join());
    // The Transpose moves int8 values and the DequantizeLinear comes after it.
    const g = loadModel(output).model.graph!;
    const producer = new Map(g.node!.flatMap((n) => (n.output ?? []).map((o) => [o, n] as const)));
    const tr = g.node!.find((n) => n.name === 'tr')!;
    assert.equal(producer.get(tr.input![0])?.op_type, 'QuantizeLinear');
    assert.equal(producer.get('t')?.op_type, 'DequantizeLinear');
    const x = new ort.Tensor('float32', Float32Array.from({ length: 4 * 64 }, (_, i) => Math.sin(i * 0.3)), [1, 4, 8, 8]);
    for (const c of [true, false]) {
      const f = { cond: new ort.Tensor('bool', [c], []), X: x };
      const sqnr = errorStats((await runOrt(file, f)).Y, (await runOrt(output, f)).Y).sqnr;
      assert.ok(sqnr > 25, `cond ${c}: ${sqnr.toFixed(1)} dB`);
    }
  });
});
