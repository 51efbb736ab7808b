import assert from 'node:assert/strict';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { DataType, dataTypeName } from '../../src/core/onnx/dtypes';
import { bfloat16ToFloat, floatToBfloat16, floatToHalf, halfToFloat } from '../../src/core/onnx/half';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { onnx } from '../../src/core/onnx/proto';
import { makeTensor, readTensor, toFloat32 } from '../../src/core/onnx/tensor';
import { vi } from '../helpers/models';
import { runOrt, tmpDir } from '../helpers/util';


describe('tensor data types', () => {
  it('packs int4 two per byte, low nibble first, as ONNX specifies', () => {
    const t = makeTensor('q', DataType.INT4, [3], Int8Array.from([1, -2, 3]));
    assert.deepEqual([...t.raw_data!], [0xe1, 0x03]);
    assert.deepEqual([...readTensor(t).data as Int8Array], [1, -2, 3]);
    const u = makeTensor('u', DataType.UINT4, [4], Uint8Array.from([15, 0, 7, 8]));
    assert.deepEqual([...u.raw_data!], [0x0f, 0x87]);
    assert.deepEqual([...readTensor(u).data as Uint8Array], [15, 0, 7, 8]);
  });

  it('converts float16 and bfloat16 exactly where representable and rounds to nearest even', () => {
    for (const v of [0, 1, -2, 0.5, 65504, 6.103515625e-5, 5.960464477539063e-8]) assert.equal(halfToFloat(floatToHalf(v)), v);
    assert.equal(floatToHalf(1 + 2 ** -11), floatToHalf(1), 'tie rounds to even');
    assert.equal(halfToFloat(floatToHalf(1e6)), Infinity);
    for (const v of [0, 1, -3, 0.15625, 2 ** 100]) assert.equal(bfloat16ToFloat(floatToBfloat16(v)), v);
    assert.equal(bfloat16ToFloat(floatToBfloat16(1 + 2 ** -8)), 1, 'tie rounds to even');
    assert.equal(bfloat16ToFloat(floatToBfloat16(1 + 3 * 2 ** -9)), 1 + 2 ** -7);
  });

  it('round-trips float32/float16/bfloat16/int8/uint8/int4/uint4 through save and load bit-identically', () => {
    const tensors = [
      makeTensor('f32', DataType.FLOAT, [2, 2], Float32Array.from([1.5, -2, 3.25, 0])),
      makeTensor('f16', DataType.FLOAT16, [3], Uint16Array.from([1, 2.5, -7].map(floatToHalf))),
      makeTensor('bf16', DataType.BFLOAT16, [2], Uint16Array.from([0.75, -100].map(floatToBfloat16))),
      makeTensor('i8', DataType.INT8, [3], Int8Array.from([-128, 0, 127])),
      makeTensor('u8', DataType.UINT8, [2], Uint8Array.from([0, 255])),
      makeTensor('i4', DataType.INT4, [5], Int8Array.from([-8, -1, 0, 1, 7])),
      makeTensor('u4', DataType.UINT4, [3], Uint8Array.from([0, 9, 15])),
    ];
    const model = onnx.ModelProto.create({ ir_version: 10, opset_import: [{ domain: '', version: 21 }], graph: { name: 'g', initializer: tensors, output: [vi('f32', 1, [2, 2])], node: [] } });
    const file = path.join(tmpDir(), 'dtypes.onnx');
    saveModel(model, file);
    const back = loadModel(file).model.graph!.initializer!;
    for (let i = 0; i < tensors.length; i++) {
      assert.equal(dataTypeName(back[i].data_type!), dataTypeName(tensors[i].data_type!));
      assert.deepEqual(Buffer.from(back[i].raw_data!), Buffer.from(tensors[i].raw_data!), tensors[i].name!);
      assert.deepEqual([...toFloat32(readTensor(back[i]))], [...toFloat32(readTensor(tensors[i]))]);
    }
  });

  it('decodes the typed fields (float_data, int32_data for float16, int64_data) as well as raw_data', () => {
    const f = readTensor({ name: 'a', data_type: DataType.FLOAT, dims: [2], float_data: [1.5, -2] });
    assert.deepEqual([...f.data as Float32Array], [1.5, -2]);
    const h = readTensor({ name: 'b', data_type: DataType.FLOAT16, dims: [2], int32_data: [floatToHalf(0.5), floatToHalf(-4)] });
    assert.deepEqual([...toFloat32(h)], [0.5, -4]);
    const l = readTensor({ name: 'c', data_type: DataType.INT64, dims: [2], int64_data: [3, -1] });
    assert.deepEqual([...l.data as BigInt64Array], [3n, -1n]);
    const q = readTensor({ name: 'd', data_type: DataType.INT4, dims: [3], int32_data: [0xe1, 0x03] });
    assert.deepEqual([...q.data as Int8Array], [1, -2, 3]);
  });

  it('onnxruntime agrees with our int4 packing and float16 bits (DequantizeLinear int4, Cast float16)', async () => {
    const q = makeTensor('q', DataType.INT4, [4], Int8Array.from([-8, -3, 2, 7]));
    const h = makeTensor('h', DataType.FLOAT16, [3], Uint16Array.from([0.5, -1.25, 1000].map(floatToHalf)));
    const model = onnx.ModelProto.create({
      ir_version: 10, opset_import: [{ domain: '', version: 21 }],
      graph: {
        name: 'g',
        node: [
          { op_type: 'DequantizeLinear', input: ['q', 's'], output: ['dq'], name: 'dq' },
          { op_type: 'Cast', input: ['h'], output: ['hf'], name: 'cast', attribute: [{ name: 'to', type: 2, i: 1 }] },
          { op_type: 'Add', input: ['x', 'x'], output: ['y'], name: 'add' },
        ],
        initializer: [q, h, makeTensor('s', DataType.FLOAT, [], Float32Array.from([0.5]))],
        input: [vi('x', 1, [1])],
        output: [vi('dq', 1, [4]), vi('hf', 1, [3]), vi('y', 1, [1])],
      },
    });
    const file = path.join(tmpDir(), 'dq.onnx');
    saveModel(model, file);
    const out = await runOrt(file, { x: new ort.Tensor('float32', new Float32Array([1]), [1]) });
    assert.deepEqual([...out.dq], [-4, -1.5, 1, 3.5]);
    assert.deepEqual([...out.hf], [0.5, -1.25, 1000]);
  });
});
