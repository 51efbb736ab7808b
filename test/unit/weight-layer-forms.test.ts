import assert from 'node:assert/strict';
import { DataType } from '../../src/core/onnx/dtypes';
import { AttributeType, onnx, type NodeProto } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { einsumOutputAxis } from '../../src/core/quant/weight/einsum';
import { quantizeAndMeasure } from '../helpers/quant';
import { vi } from '../helpers/models';

const einsum = (equation: string): NodeProto => ({ op_type: 'Einsum', input: ['a', 'b'], output: ['y'], attribute: [{ name: 'equation', type: AttributeType.STRING, s: new TextEncoder().encode(equation) }] });

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
    const w = Float32Array.from({ length: 64 * 48 }, (_, i) => Math.sin(i * 0.7) * (1 + (i % 48) / 8) * 0.1);
    const node = (name: string, eq: string, input: string[], output: string): NodeProto => ({ ...einsum(eq), name, input, output: [output] });
    const model = onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: 17 }], producer_name: 'test',
      graph: {
        name: 'g',
        node: [node('proj', 'bld,de->ble', ['x', 'W'], 'p'), node('scores', 'ble,bme->blm', ['p', 'p'], 's'), { name: 'softmax', op_type: 'Softmax', input: ['s'], output: ['a'], attribute: [{ name: 'axis', type: AttributeType.INT, i: -1 }] }, node('mix', 'blm,bme->ble', ['a', 'p'], 'y')],
        initializer: [makeTensor('W', DataType.FLOAT, [64, 48], w)], input: [vi('x', DataType.FLOAT, ['b', 12, 64])], output: [vi('y', DataType.FLOAT, ['b', 12, 48])],
      },
    });
    const { result, fidelity, report } = await quantizeAndMeasure(model, { mode: 'weight', calibration: 'random:4' });
    assert.deepEqual(result.quantized, ['proj']);
    const proj = report.nodes.find((n: { node: string }) => n.node === 'proj');
    assert.match(proj.how, /^int8 per-channel \(axis 1\) weight/);
    assert.ok(report.nodes.filter((n: { skipped?: string }) => /not a layer/.test(n.skipped ?? '')).length === 2);
    assert.ok(result.sizeAfter < result.sizeBefore / 2, `${result.sizeBefore} -> ${result.sizeAfter}`);
    assert.ok(fidelity.sqnr > 35, JSON.stringify(fidelity));
  });
});
