import assert from 'node:assert/strict';
import { DataType } from '../../src/core/onnx/dtypes';
import { onnx, type ModelProto } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { mergeSideBySide, reduceToNsr } from '../../src/core/sensitivity/merge';
import { weightErrorPart } from '../../src/core/sensitivity/weight-error';
import { feedsFor, runOrt } from '../helpers/util';

const vi = (name: string, dims: number[]) => ({ name, type: { tensor_type: { elem_type: 1, shape: { dim: dims.map((d) => ({ dim_value: d })) } } } });
const W = Float32Array.from({ length: 8 * 4 * 9 }, (_, i) => Math.sin(i * 0.7) / 4);
const B = Float32Array.from({ length: 8 }, (_, i) => i / 8 - 0.5);

/** A 3×3 conv with a bias, float. */
function base(): ModelProto {
  return onnx.ModelProto.create({
    ir_version: 8, opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'conv', input: [vi('x', [1, 4, 6, 6])], output: [vi('y', [1, 8, 6, 6])],
      initializer: [makeTensor('W', DataType.FLOAT, [8, 4, 3, 3], W), makeTensor('B', DataType.FLOAT, [8], B)],
      node: [{ name: 'conv', op_type: 'Conv', input: ['x', 'W', 'B'], output: ['y'], attribute: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }] }],
    },
  });
}

/** The conv with its weight rounded to int8 per tensor behind a DequantizeLinear, as a weight-only copy is. */
function weightOnly(): ModelProto {
  const scale = Math.max(...W.map(Math.abs)) / 127;
  const m = base();
  const g = m.graph!;
  g.initializer = [makeTensor('Wq', DataType.INT8, [8, 4, 3, 3], Int8Array.from(W, (v) => Math.round(v / scale))), makeTensor('s', DataType.FLOAT, [], Float32Array.of(scale)), g.initializer![1]];
  g.node = [{ name: 'dq', op_type: 'DequantizeLinear', input: ['Wq', 's'], output: ['Wdq'] }, { ...g.node![0], input: ['x', 'Wdq', 'B'] }];
  return m;
}

describe('local sensitivity: a weight-only copy that computes its own error', () => {
  it('gives the error a compared copy gives (DequantizeLinear(weight) − weight, no bias), and declines other shapes', async () => {
    const direct = weightErrorPart(weightOnly(), 'W');
    assert.ok(direct, 'a one-node conv behind DequantizeLinear is rewritten');
    const merged = mergeSideBySide(base(), [{ prefix: '0w', model: direct! }, { prefix: '0c', model: weightOnly() }]);
    const [sums] = reduceToNsr(merged, [{ reference: 'y', copies: ['0w/y', '0c/y'], errors: new Set(['0w/y']) }]);
    const out = await runOrt(onnx.ModelProto.encode(merged).finish(), feedsFor(merged.graph!));
    const [viaError, viaCompare] = sums.err.map((n) => out[n][0]);
    assert.ok(viaCompare > 0, 'rounding left an error');
    assert.ok(Math.abs(viaError - viaCompare) <= 1e-4 * viaCompare, `Σ(error)² ${viaError} vs Σ(copy − float)² ${viaCompare}`);
    // Not linear in one weight behind DequantizeLinear: left to the comparison.
    const two = weightOnly();
    two.graph!.node!.push({ name: 'relu', op_type: 'Relu', input: ['y'], output: ['r'] });
    assert.equal(weightErrorPart(two, 'W'), undefined, 'a layer of two nodes');
    assert.equal(weightErrorPart(base(), 'W'), undefined, 'a float weight (no DequantizeLinear)');
  });
});
