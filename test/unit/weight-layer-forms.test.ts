import assert from 'node:assert/strict';
import { DataType } from '../../src/core/onnx/dtypes';
import { AttributeType, onnx, type NodeProto } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { einsumOutputAxis } from '../../src/core/quant/weight/einsum';
import { activationEinsumsAsMatMul, activationMatmulEinsum, einsumAsMatMul, matmulEinsum } from '../../src/core/onnx/einsum-matmul';
import { ModelEditor } from '../../src/core/onnx/editor';
import * as ort from 'onnxruntime-node';
import path from 'node:path';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { pruneModel } from '../../src/core/prune/prune-model';
import { tmpDir } from '../helpers/util';
import { quantizeAndMeasure } from '../helpers/quant';
import { vi } from '../helpers/models';

const einsum = (equation: string): NodeProto => ({ op_type: 'Einsum', input: ['a', 'b'], output: ['y'], attribute: [{ name: 'equation', type: AttributeType.STRING, s: new TextEncoder().encode(equation) }] });

/** Both models' output y on one [2, 12, 64] input agree within 1e-5 of its scale, in onnxruntime (MatMul computes what Einsum did). */
async function assertSameOutputs(model: onnx.ModelProto, edited: onnx.ModelProto): Promise<void> {
  const x = new ort.Tensor('float32', Float32Array.from({ length: 2 * 12 * 64 }, (_, i) => Math.cos(i * 0.37)), [2, 12, 64]);
  const [a, b] = await Promise.all([model, edited].map(async (m) => {
    const s = await ort.InferenceSession.create(onnx.ModelProto.encode(m).finish());
    const y = (await s.run({ x })).y.data as Float32Array;
    await s.release();
    return y;
  }));
  const scale = Math.max(...Array.from(a, Math.abs));
  assert.ok(a.every((v, i) => Math.abs(v - b[i]) <= 1e-5 * scale), 'MatMul computes what Einsum did');
}

/** x [b, 12, 64] → `projection` (reads W [64, 48], makes p) → attention over p as Einsums: scores `ble,bme->blm`, Softmax, mix `blm,bme->ble` → y. */
function attentionModel(projection: NodeProto): onnx.ModelProto {
  const w = Float32Array.from({ length: 64 * 48 }, (_, i) => Math.sin(i * 0.7) * (1 + (i % 48) / 8) * 0.1);
  const node = (name: string, eq: string, input: string[], output: string): NodeProto => ({ ...einsum(eq), name, input, output: [output] });
  return onnx.ModelProto.create({
    ir_version: 8, opset_import: [{ domain: '', version: 17 }], producer_name: 'test',
    graph: {
      name: 'g',
      node: [projection, node('scores', 'ble,bme->blm', ['p', 'p'], 's'), { name: 'softmax', op_type: 'Softmax', input: ['s'], output: ['a'], attribute: [{ name: 'axis', type: AttributeType.INT, i: -1 }] }, node('mix', 'blm,bme->ble', ['a', 'p'], 'y')],
      initializer: [makeTensor('W', DataType.FLOAT, [64, 48], w)], input: [vi('x', DataType.FLOAT, ['b', 12, 64])], output: [vi('y', DataType.FLOAT, ['b', 12, 48])],
    },
  });
}

// Linear layers written other ways than x · W: as Einsum (Keras' EinsumDense, JAX and tf2onnx exports),
// and as W · x. Weight mode stores the weight int8, with a scale per output channel.
describe('weight INT8 of layers written as Einsum or W · x', function () {
  this.timeout(60_000);

  it('the weight\'s output channel is a subscript of its own that the result keeps', () => {
    assert.equal(einsumOutputAxis(einsum('bld,de->ble'), 1), 1);
    assert.equal(einsumOutputAxis(einsum('ij,bj->bi'), 0), 0);
    assert.equal(einsumOutputAxis(einsum('bld,dhk->blhk'), 1), 2);
    assert.equal(einsumOutputAxis(einsum('...d,de->...e'), 1), 1);
    assert.equal(einsumOutputAxis(einsum('bld,de'), 1), 1); // implicit output: b, e, l
    assert.equal(einsumOutputAxis(einsum('bld,d...->bl...'), 1), undefined); // an ellipsis in the weight: one scale
    assert.equal(einsumOutputAxis(einsum('bd,d->b'), 1), undefined); // a weight vector reduced away
  });

  it('W · x (the weight as MatMul\'s first input): int8 with a scale per row of W, at --bits 4 too', async () => {
    const w = Float32Array.from({ length: 32 * 64 }, (_, i) => Math.cos(i * 0.3) * (1 + Math.floor(i / 64) / 4) * 0.1);
    const model = onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: 17 }], producer_name: 'test',
      graph: {
        name: 'g', node: [{ name: 'mix', op_type: 'MatMul', input: ['W', 'x'], output: ['h'] }, { name: 'act', op_type: 'Relu', input: ['h'], output: ['y'] }],
        initializer: [makeTensor('W', DataType.FLOAT, [32, 64], w)], input: [vi('x', DataType.FLOAT, ['b', 64, 16])], output: [vi('y', DataType.FLOAT, ['b', 32, 16])],
      },
    });
    for (const bits of [8, 4] as const) {
      const { result, fidelity, report } = await quantizeAndMeasure(model, { mode: 'weight', bits, calibration: 'random:4' });
      assert.deepEqual(result.quantized, ['mix']);
      assert.match(report.nodes[0].how, bits === 8 ? /^int8 per-channel \(axis 0\) weight/ : /^int8 per-channel \(axis 0\) weight.*\(4-bit applies to a MatMul's second input only\)$/);
      assert.ok(fidelity.sqnr > 35, JSON.stringify(fidelity));
    }
  });

  it('a projection Einsum is quantized, attention Einsums (two activations) are not layers', async () => {
    const model = attentionModel({ ...einsum('bld,de->ble'), name: 'proj', input: ['x', 'W'], output: ['p'] });
    // (One weight format on both sides: `auto` picks by measured latency.)
    const { result, fidelity, report } = await quantizeAndMeasure(model, { mode: 'weight', calibration: 'random:4', weightFormat: 'dequantize' });
    assert.deepEqual(result.quantized, ['proj']);
    const proj = report.nodes.find((n: { node: string }) => n.node === 'proj');
    assert.match(proj.how, /^int8 per-channel \(axis 1\) weight/);
    assert.ok(report.nodes.filter((n: { skipped?: string }) => /not a layer/.test(n.skipped ?? '')).length === 2);
    assert.ok(result.sizeAfter < result.sizeBefore / 2, `${result.sizeBefore} -> ${result.sizeAfter}`);
    // The projection is quantized as the MatMul it is (see the Einsum-as-MatMul tests below): as faithful
    // as the same model written with a MatMul (random inputs: a check of the mechanics).
    const written = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
    written.graph!.node![0] = { name: 'proj', op_type: 'MatMul', input: ['x', 'W'], output: ['p'] };
    const same = await quantizeAndMeasure(written, { mode: 'weight', calibration: 'random:4', weightFormat: 'dequantize' });
    assert.ok(Math.abs(fidelity.sqnr - same.fidelity.sqnr) < 0.05 && fidelity.sqnr > 20, `${JSON.stringify(fidelity)} against ${JSON.stringify(same.fidelity)}`);
  });

  it('an Einsum that is x · W (W on either side, either way round) is written as MatMul; others are left as they are', () => {
    const plain = { contracted: 1, kept: 1, weightFirst: false, xRank: 3 };
    assert.deepEqual(matmulEinsum('bld,de->ble', 1), plain);
    assert.deepEqual(matmulEinsum('bld,ed->ble', 1), { ...plain, weightFirst: true });
    assert.deepEqual(matmulEinsum('de,bld->ble', 0), plain);
    assert.deepEqual(matmulEinsum(' ...d , de -> ...e ', 1), { contracted: 1, kept: 1, weightFirst: false });
    assert.deepEqual(matmulEinsum('bd,de->be', 1), { ...plain, xRank: 2 });
    // Keras' EinsumDense in attention: the output split into heads, and the heads merged back.
    assert.deepEqual(matmulEinsum('abc,cde->abde', 1), { contracted: 1, kept: 2, weightFirst: false, xRank: 3 });
    assert.deepEqual(matmulEinsum('abcd,cde->abe', 1), { contracted: 2, kept: 1, weightFirst: false, xRank: 4 });
    assert.deepEqual(matmulEinsum('abcd,ecd->abe', 1), { contracted: 2, kept: 1, weightFirst: true, xRank: 4 });
    for (const [eq, k] of [['bdl,de->ble', 1], ['bld,de', 1], ['bld,dd->bl', 1], ['bld,de->bel', 1], ['bld,db->bl', 1], ['bld,d...->bl...', 1], ['bld,de,ef->blf', 1], ['...cd,cde->...e', 1], ['abcd,dce->abe', 1], ['abc,ced->abde', 1]] as const) {
      assert.equal(matmulEinsum(eq, k), undefined, eq);
    }
  });

  it('static INT8: attention\'s Einsums of two activations become MatMul (the second read transposed where it is), computing the same values, and run as integer kernels', async () => {
    assert.deepEqual(activationMatmulEinsum('bhqd,bhkd->bhqk'), { transposeB: true, rank: 4 });
    assert.deepEqual(activationMatmulEinsum('bhqk,bhkd->bhqd'), { transposeB: false, rank: 4 });
    assert.deepEqual(activationMatmulEinsum(' ij , jk -> ik '), { transposeB: false, rank: 2 });
    // Output swapped, an ellipsis, a summed-away axis, `a` read transposed, batch axes reordered, a repeated subscript, three operands.
    for (const eq of ['bhqd,bhkd->bhkq', '...qd,...kd->...qk', 'bqd,bkd->bq', 'bkq,bkd->bqd', 'bhqd,hbkd->bhqk', 'bii,bij->bij', 'bqd,bkd,bkd->bqk']) assert.equal(activationMatmulEinsum(eq), undefined, eq);
    const model = attentionModel({ name: 'proj', op_type: 'MatMul', input: ['x', 'W'], output: ['p'] });
    // The rewrite alone: the same values as the Einsums, in onnxruntime.
    const edited = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
    assert.equal(activationEinsumsAsMatMul(new ModelEditor(edited)), 2);
    assert.deepEqual(edited.graph!.node!.map((n) => `${n.name}:${n.op_type}`), ['proj:MatMul', 'scores_Transpose:Transpose', 'scores:MatMul', 'softmax:Softmax', 'mix:MatMul']);
    await assertSameOutputs(model, edited);
    // Static INT8: no Einsum left, all three products quantized; weight mode leaves the two as they are.
    const { result, ops, fidelity, report } = await quantizeAndMeasure(model, { mode: 'static', calibration: 'random:8', staticOps: 'compute' });
    assert.equal(ops.Einsum ?? 0, 0, JSON.stringify(ops));
    for (const layer of ['proj', 'scores', 'mix']) assert.ok(result.quantized.includes(layer), `${layer} in ${result.quantized}`);
    assert.ok(report.warnings.some((m: string) => /wrote 2 Einsum products of two activations as MatMul/.test(m)), report.warnings.join('\n'));
    assert.ok(fidelity.cosine > 0.99, JSON.stringify(fidelity));
    // onnxruntime ran all three as integer kernels (QLinearMatMul, MatMulIntegerToFloat), none as a float product.
    const kernels = report.profile.candidate.byOpType as Array<{ op: string; nodes: number }>;
    const count = (re: RegExp) => kernels.filter((o) => re.test(o.op)).reduce((n, o) => n + o.nodes, 0);
    assert.deepEqual([count(/^(QLinearMatMul|MatMulIntegerToFloat|MatMulInteger)$/), count(/^(Einsum|MatMul)$/)], [3, 0], JSON.stringify(kernels));
    const weightMode = await quantizeAndMeasure(model, { mode: 'weight', weightFormat: 'dequantize' });
    assert.equal(weightMode.ops.Einsum, 2, JSON.stringify(weightMode.ops));
  });

  it('Einsum projections: written as MatMul the model computes the same values, structured pruning thins them, and static, dynamic and 4-bit weight modes quantize them with integer kernels', async () => {
    const weight = (name: string, dims: number[], f: number) => makeTensor(name, DataType.FLOAT, dims, Float32Array.from({ length: dims[0] * dims[1] }, (_, i) => Math.sin(i * f) * 0.15));
    const weight3 = (name: string, dims: number[], f: number) => makeTensor(name, DataType.FLOAT, dims, Float32Array.from({ length: dims[0] * dims[1] * dims[2] }, (_, i) => Math.sin(i * f) * 0.15));
    const node = (name: string, eq: string, input: string[], output: string): NodeProto => ({ ...einsum(eq), name, input, output: [output] });
    const model = onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: 17 }], producer_name: 'test',
      graph: {
        name: 'g',
        node: [
          node('proj', 'bld,de->ble', ['x', 'W1'], 'a'), { name: 'act1', op_type: 'Relu', input: ['a'], output: ['a1'] },
          node('proj_t', 'ble,fe->blf', ['a1', 'W2'], 'b'), { name: 'act2', op_type: 'Tanh', input: ['b'], output: ['b1'] },
          node('proj_first', 'fg,blf->blg', ['W3', 'b1'], 'c'),
          // Keras' EinsumDense in attention: into heads, and back.
          node('heads', 'blg,ghk->blhk', ['c', 'W5'], 'h'), { name: 'act3', op_type: 'Relu', input: ['h'], output: ['h1'] },
          node('merge', 'blhk,hke->ble', ['h1', 'W6'], 'm'),
          // Contracts the activation's middle axis: MatMul would need it transposed, so it stays an Einsum.
          node('mix', 'blg,lm->bmg', ['m', 'W4'], 'y'),
        ],
        initializer: [weight('W1', [64, 48], 0.7), weight('W2', [32, 48], 1.3), weight('W3', [32, 40], 0.9), weight('W4', [12, 12], 0.4), weight3('W5', [40, 4, 8], 0.3), weight3('W6', [4, 8, 24], 1.1)],
        input: [vi('x', DataType.FLOAT, ['b', 12, 64])], output: [vi('y', DataType.FLOAT, ['b', 12, 24])],
      },
    });
    // The rewrite alone: same outputs as the Einsums, in onnxruntime.
    const edited = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
    assert.equal(einsumAsMatMul(new ModelEditor(edited)), 5);
    assert.deepEqual(edited.graph!.node!.map((n) => `${n.name}:${n.op_type}`), [
      'proj:MatMul', 'act1:Relu', 'proj_t_weight_Transpose:Transpose', 'proj_t:MatMul', 'act2:Tanh', 'proj_first:MatMul',
      'heads_weight_Reshape:Reshape', 'heads:MatMul', 'heads_output_Reshape:Reshape', 'act3:Relu',
      'merge_weight_Reshape:Reshape', 'merge_input_Reshape:Reshape', 'merge:MatMul', 'mix:Einsum',
    ]);
    // Pruning takes them as MatMuls too: structured pruning removes channels through the transposed weight.
    const dir = tmpDir(), file = path.join(dir, 'einsum.onnx');
    saveModel(model, file);
    const pruned = await pruneModel(file, path.join(dir, 'pruned.onnx'), { method: 'structured', sparsity: 0.5 });
    const shapes = pruned.layers.map((l) => `${l.node}:${l.opType}:${l.shapeBefore.join('x')}->${l.shapeAfter.join('x')}`);
    for (const want of ['proj:MatMul:64x48->64x24', 'proj_t:MatMul:48x32->24x16']) assert.ok(shapes.includes(want), `${want} in ${shapes}`);
    assert.deepEqual(loadModel(pruned.output).model.graph!.node!.filter((n) => n.op_type === 'Einsum').map((n) => n.name), ['mix']);
    await assertSameOutputs(model, edited);
    // Quantized, the three products take the integer kernels, and the model comes out as the MatMul-written
    // one does (same layers, same fidelity; random inputs: a check of the mechanics, not of accuracy).
    for (const mode of ['static', 'dynamic', 'weight'] as const) {
      const options = { mode, calibration: 'random:8', ...(mode === 'weight' ? { bits: 4 as const, weightFormat: 'nbits' as const } : {}), ...(mode === 'static' ? { staticOps: 'compute' as const } : {}) };
      const { result, ops, fidelity, report } = await quantizeAndMeasure(model, options);
      const same = await quantizeAndMeasure(edited, options);
      for (const layer of ['proj', 'proj_t', 'proj_first', 'heads', 'merge']) assert.ok(result.quantized.includes(layer), `${mode}: ${layer} in ${result.quantized}`);
      assert.ok(report.warnings.some((w: string) => /wrote 5 Einsum layers as MatMul/.test(w)), mode);
      const kernels = mode === 'static' ? ops.QuantizeLinear : mode === 'dynamic' ? (ops.MatMulInteger ?? 0) + (ops['com.microsoft.DynamicQuantizeMatMul'] ?? 0) : ops['com.microsoft.MatMulNBits'];
      assert.ok((kernels ?? 0) >= (mode === 'static' ? 1 : 5), `${mode}: ${JSON.stringify(ops)}`);
      assert.deepEqual(ops, same.ops, mode);
      assert.ok(Math.abs(fidelity.sqnr - same.fidelity.sqnr) < 0.05, `${mode}: ${JSON.stringify(fidelity)} against ${JSON.stringify(same.fidelity)}`);
    }
  });
});
