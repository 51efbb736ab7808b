import assert from 'node:assert/strict';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { DataType } from '../../src/core/onnx/dtypes';
import { saveModel } from '../../src/core/onnx/model-io';
import { onnx } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { computeQParams } from '../../src/core/quant/qparams';
import { roundHalfEven } from '../../src/core/quant/rounding';
import { dequantizeTensor, errorStats, quantizeTensor } from '../../src/core/quant/tensor-quant';
import { dequantizeBlocks, emitMatMulNBits, quantizeBlocksRtn } from '../../src/core/quant/weight/matmul-nbits';
import { vi } from '../helpers/models';
import { assertClose, runOrt, tmpDir } from '../helpers/util';

async function ortQdq(x: Float32Array, dims: number[], scale: Float32Array, zp: Int8Array | Uint8Array, zpType: DataType, scaleDims: number[], attrs: Array<{ name: string; type: number; i: number }>, opset: number) {
  const model = onnx.ModelProto.create({
    ir_version: opset >= 21 ? 10 : 8, opset_import: [{ domain: '', version: opset }],
    graph: {
      name: 'qdq',
      node: [
        { name: 'q', op_type: 'QuantizeLinear', input: ['x', 's', 'z'], output: ['xq'], attribute: attrs },
        { name: 'dq', op_type: 'DequantizeLinear', input: ['xq', 's', 'z'], output: ['y'], attribute: attrs },
      ],
      initializer: [makeTensor('s', DataType.FLOAT, scaleDims, scale), makeTensor('z', zpType, scaleDims, zp)],
      input: [vi('x', DataType.FLOAT, dims)],
      output: [vi('y', DataType.FLOAT, dims)],
    },
  });
  const file = path.join(tmpDir(), 'qdq.onnx');
  saveModel(model, file);
  return (await runOrt(file, { x: new ort.Tensor('float32', x, dims) })).y;
}

describe('tensor quantization', () => {
  it('rounds half to even', () => {
    assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, -0, -2, 2, 3]);
  });

  it('computes scale and zero point as onnxruntime does (hand-computed)', () => {
    // uint8 affine over [-1, 3]: scale 4/255, zero point round(0 - (-1)/scale) = round(63.75) = 64
    const a = computeQParams(-1, 3, 'uint8', false);
    assert.equal(a.scale, Math.fround(4 / 255));
    assert.equal(a.zeroPoint, 64);
    // int8 symmetric uses -127..127: scale = absmax / 127, zero point 0
    const s = computeQParams(-0.5, 2.54, 'int8', true);
    assert.equal(s.scale, Math.fround(2.54 / 127));
    assert.equal(s.zeroPoint, 0);
    // the range always includes 0, so 0 is exact
    const p = computeQParams(2, 6, 'uint8', false);
    assert.equal(p.zeroPoint, 0);
    assert.equal(p.scale, Math.fround(6 / 255));
    // degenerate range
    assert.deepEqual(computeQParams(0, 0, 'uint8', false), { scale: 1, zeroPoint: 0 });
  });

  it('quantizes per tensor: hand-computed integers and exact dequantization of representable values', () => {
    const q = quantizeTensor(Float32Array.from([-1, 0, 1, 2, 3]), [5], { qtype: 'uint8', symmetric: false, granularity: { kind: 'tensor' } });
    const s = 4 / 255;
    assert.deepEqual([...q.values], [-1, 0, 1, 2, 3].map((v) => Math.min(255, Math.max(0, roundHalfEven(Math.fround(v / Math.fround(s))) + 64))));
    assert.deepEqual([...q.values], [0, 64, 128, 191, 255]);
    const back = dequantizeTensor(q);
    assert.equal(back[1], 0);
    assert.ok(errorStats(Float32Array.from([-1, 0, 1, 2, 3]), back).maxAbsError <= s / 2 + 1e-7);
  });

  it('matches onnxruntime QuantizeLinear/DequantizeLinear bit for bit: per-tensor uint8', async () => {
    const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 0.7) * 3 + 0.5);
    const q = quantizeTensor(x, [64], { qtype: 'uint8', symmetric: false, granularity: { kind: 'tensor' } });
    const y = await ortQdq(x, [64], q.scales, Uint8Array.from(q.zeroPoints), DataType.UINT8, [], [], 13);
    assert.deepEqual([...y], [...dequantizeTensor(q)]);
  });

  it('matches onnxruntime bit for bit: per-channel int8 on axis 1', async () => {
    const x = Float32Array.from({ length: 6 * 5 }, (_, i) => Math.cos(i * 1.3) * (1 + (i % 5)));
    const q = quantizeTensor(x, [6, 5], { qtype: 'int8', symmetric: true, granularity: { kind: 'channel', axis: 1 } });
    assert.equal(q.scales.length, 5);
    const y = await ortQdq(x, [6, 5], q.scales, Int8Array.from(q.zeroPoints), DataType.INT8, [5], [{ name: 'axis', type: 2, i: 1 }], 13);
    assert.deepEqual([...y], [...dequantizeTensor(q)]);
  });

  it('matches onnxruntime bit for bit: blocked int4 (block 16 along axis 1, opset 21)', async () => {
    const x = Float32Array.from({ length: 4 * 48 }, (_, i) => Math.sin(i * 0.31) * (1 + (i % 7)));
    const q = quantizeTensor(x, [4, 48], { qtype: 'int4', symmetric: true, granularity: { kind: 'block', axis: 1, blockSize: 16 } });
    assert.deepEqual(q.scaleDims, [4, 3]);
    const y = await ortQdq(x, [4, 48], q.scales, Int8Array.from(q.zeroPoints), DataType.INT4, [4, 3], [{ name: 'axis', type: 2, i: 1 }, { name: 'block_size', type: 2, i: 16 }], 21);
    assert.deepEqual([...y], [...dequantizeTensor(q)]);
  });

  it('reports error statistics: MSE, SQNR, max error and % clipped', () => {
    const x = Float32Array.from([0, 1, 2, 3, 100]);
    const q = quantizeTensor(x, [5], { qtype: 'uint8', symmetric: false, granularity: { kind: 'tensor' }, ranges: [{ min: 0, max: 3 }] });
    const st = errorStats(x, dequantizeTensor(q), q);
    assert.equal(st.clippedPercent, 20);
    assert.ok(Math.abs(st.maxAbsError - 97) < 1e-4);
    assert.ok(st.sqnr > 0 && st.sqnr < 10);
  });

  it('MatMulNBits: our packing of B, scales and zero points is what onnxruntime computes with', async () => {
    const K = 80, N = 6; // K not a multiple of the block: the last block is padded
    const w = Float32Array.from({ length: K * N }, (_, i) => Math.sin(i * 0.37) * 0.2 + (i % 11 === 0 ? 0.5 : 0));
    const bq = quantizeBlocksRtn(w, K, N, 32, false);
    const dq = dequantizeBlocks(bq);
    const model = onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: 17 }],
      graph: { name: 'g', node: [{ name: 'mm', op_type: 'MatMul', input: ['a', 'W'], output: ['y'] }], initializer: [makeTensor('W', DataType.FLOAT, [K, N], w)], input: [vi('a', 1, [3, K])], output: [vi('y', 1, [3, N])] },
    });
    const { ModelEditor } = await import('../../src/core/onnx/editor');
    const editor = new ModelEditor(model);
    emitMatMulNBits({ editor, modulePath: () => 'mm', decide: () => undefined } as never, model.graph!.node![0], bq, 'rtn');
    const file = path.join(tmpDir(), 'nbits.onnx');
    saveModel(model, file);
    const a = Float32Array.from({ length: 3 * K }, (_, i) => Math.cos(i * 0.11));
    const y = (await runOrt(file, { a: new ort.Tensor('float32', a, [3, K]) })).y;
    const expect = new Float32Array(3 * N);
    for (let r = 0; r < 3; r++) for (let n = 0; n < N; n++) { let s = 0; for (let k = 0; k < K; k++) s += a[r * K + k] * dq[k * N + n]; expect[r * N + n] = s; }
    assertClose(y, expect, 1e-4, 1e-4, 'MatMulNBits output');
  });
});
