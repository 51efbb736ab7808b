import assert from 'node:assert/strict';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { randomFeeds } from '../../src/core/calib/random-feeds';
import { FidelityAccumulator } from '../../src/core/eval/metrics';
import { quantizeModel } from '../../src/core/jobs/quantize-model';
import { DataType } from '../../src/core/onnx/dtypes';
import { saveModel } from '../../src/core/onnx/model-io';
import { AttributeType, onnx } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { vi } from '../helpers/models';
import { tmpDir } from '../helpers/util';

/**
 * Attention pooling over the first `lengths` frames of x [batch, frames, 64], as an ASR encoder masks its
 * padding: frames past the length get −inf before the Softmax, so a length of 0 masks every frame and the
 * output is NaN (torchaudio's Conformer, fed random lengths).
 */
function maskedPooling() {
  const i64 = (name: string, v: bigint[], dims = [v.length]) => makeTensor(name, DataType.INT64, dims, BigInt64Array.from(v));
  return onnx.ModelProto.create({
    ir_version: 8, opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'g', input: [vi('x', DataType.FLOAT, ['batch', 'frames', 64]), vi('lengths', DataType.INT64, ['batch'])], output: [vi('y', DataType.FLOAT, ['batch', 1, 64])],
      node: [
        { name: 'shape', op_type: 'Shape', input: ['x'], output: ['xs'] }, { name: 'frames', op_type: 'Gather', input: ['xs', 'one'], output: ['T'] },
        { name: 'range', op_type: 'Range', input: ['zero', 'T', 'one'], output: ['t'] }, { name: 'len2', op_type: 'Unsqueeze', input: ['lengths', 'axis1'], output: ['L'] },
        { name: 'valid', op_type: 'Less', input: ['t', 'L'], output: ['valid'] },
        { name: 'proj', op_type: 'MatMul', input: ['x', 'W'], output: ['h'] }, { name: 'score', op_type: 'ReduceSum', input: ['h', 'last'], output: ['s'], attribute: [{ name: 'keepdims', type: AttributeType.INT, i: 0 }] },
        { name: 'mask', op_type: 'Where', input: ['valid', 's', 'neg_inf'], output: ['sm'] }, { name: 'softmax', op_type: 'Softmax', input: ['sm'], output: ['p'], attribute: [{ name: 'axis', type: AttributeType.INT, i: 1 }] },
        { name: 'p3', op_type: 'Unsqueeze', input: ['p', 'axis1'], output: ['p3'] }, { name: 'pool', op_type: 'MatMul', input: ['p3', 'x'], output: ['y'] },
      ],
      initializer: [
        i64('zero', [0n], []), i64('one', [1n], []), i64('axis1', [1n]), i64('last', [-1n]),
        makeTensor('neg_inf', DataType.FLOAT, [], Float32Array.of(-Infinity)),
        makeTensor('W', DataType.FLOAT, [64, 64], Float32Array.from({ length: 64 * 64 }, (_, i) => Math.sin(i * 0.37) * 0.1)),
      ],
    },
  });
}

describe('random inputs for a lengths input', function () {
  this.timeout(120_000);

  it('a lengths input holds the whole sequence: the size the frames took', () => {
    const graph = maskedPooling().graph!;
    assert.deepEqual([...(randomFeeds(graph).lengths.data as BigInt64Array)], [16n]);
    const given = randomFeeds(graph, { shapes: { x: [1, 40, 64] } });
    assert.deepEqual([...(given.lengths.data as BigInt64Array)], [40n]);
    assert.deepEqual(given.x.dims, [1, 40, 64]);
  });

  it('so the float model\'s outputs on random inputs are numbers, and so is its quantized copy\'s fidelity', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'pooling.onnx');
    saveModel(maskedPooling(), file);
    const r = await quantizeModel(file, path.join(dir, 'q.onnx'), { mode: 'weight', bits: 8, calibration: 'random:4' });
    const y = r.fidelity.y;
    assert.equal(y.nonFinite, undefined);
    assert.ok(Number.isFinite(y.cosine) && y.cosine > 0.999, `cosine ${y.cosine}`);
  });
});

describe('NaN and Inf in compared outputs', () => {
  const t = (v: number[]) => new ort.Tensor('float32', Float32Array.from(v), [1, v.length]);

  it('the same on both sides is left out of the sums and counted; on one side only, counted apart', () => {
    const acc = new FidelityAccumulator(true);
    acc.add(t([1, 2, NaN, NaN, -Infinity, 3]), t([1, 2.1, NaN, NaN, -Infinity, NaN]));
    const m = acc.result();
    assert.deepEqual(m.nonFinite, { both: 3, oneSide: 1 });
    // On the finite values 1, 2, (3 dropped with its NaN): 2 vs 2.1.
    assert.ok(Number.isFinite(m.cosine) && m.cosine > 0.99, `cosine ${m.cosine}`);
    assert.ok(Math.abs(m.sqnr - 10 * Math.log10(5 / 0.01)) < 1e-3, `SQNR ${m.sqnr}`);
    assert.ok(Math.abs(m.maxAbsError - 0.1) < 1e-6);
    // Without NaN or Inf, nothing is said.
    const clean = new FidelityAccumulator(true);
    clean.add(t([1, 2]), t([1, 2]));
    assert.equal(clean.result().nonFinite, undefined);
  });
});
