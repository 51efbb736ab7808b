import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { zipSync } from 'fflate';
import { PNG } from 'pngjs';
import { openCalibration } from '../../src/core/calib/data';
import { parseNpy } from '../../src/core/calib/npy';
import { FIXTURES } from '../../src/core/fixtures';
import { DataType } from '../../src/core/onnx/dtypes';
import { onnx } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { npy } from '../helpers/npy';
import { tmpDir } from '../helpers/util';

const mlp = FIXTURES.mlp.build().graph!; // input: float32 [batch, 64]
const vlm = FIXTURES['tiny-vlm'].build().graph!; // pixel_values [batch,3,32,32], input_ids int64 [batch,8]
const floats = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i));

describe('calibration data', () => {
  it('parses .npy (float32, int64, big-endian float32) like numpy writes it', () => {
    const f = parseNpy(npy('<f4', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6])));
    assert.deepEqual(f.dims, [2, 3]);
    assert.deepEqual([...(f.data as Float32Array)], [1, 2, 3, 4, 5, 6]);
    const l = parseNpy(npy('<i8', [2], BigInt64Array.from([7n, -1n])));
    assert.deepEqual([...(l.data as BigInt64Array)], [7n, -1n]);
    const be = Buffer.alloc(8);
    be.writeFloatBE(1.5, 0);
    be.writeFloatBE(-2, 4);
    assert.deepEqual([...(parseNpy(npy('>f4', [2], be)).data as Float32Array)], [1.5, -2]);
  });

  it('reads a folder of .npy files for a one-input model, adding the batch dimension', () => {
    const dir = tmpDir();
    for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(dir, `s${i}.npy`), npy('<f4', [64], floats(64)));
    const data = openCalibration(dir, mlp);
    assert.equal(data.count, 3);
    const [first] = data.samples();
    assert.deepEqual(first.input.dims, [1, 64]);
  });

  it('reads .npz files with one array per input name (multi-input model)', () => {
    const dir = tmpDir();
    const ids = BigInt64Array.from({ length: 8 }, (_, i) => BigInt(i));
    fs.writeFileSync(path.join(dir, 'a.npz'), zipSync({ 'pixel_values.npy': npy('<f4', [1, 3, 32, 32], floats(3072)), 'input_ids.npy': npy('<i8', [1, 8], ids) }));
    const [s] = openCalibration(dir, vlm).samples();
    assert.deepEqual(s.pixel_values.dims, [1, 3, 32, 32]);
    assert.deepEqual([...(s.input_ids.data as BigInt64Array)], [...ids]);
  });

  it('reads the ONNX test-data layout (test_data_set_N/input_K.pb), matching by TensorProto name', () => {
    const dir = tmpDir();
    for (let k = 0; k < 2; k++) {
      const d = path.join(dir, `test_data_set_${k}`);
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'input_0.pb'), onnx.TensorProto.encode(makeTensor('input_ids', DataType.INT64, [1, 8], new BigInt64Array(8))).finish());
      fs.writeFileSync(path.join(d, 'input_1.pb'), onnx.TensorProto.encode(makeTensor('pixel_values', DataType.FLOAT, [1, 3, 32, 32], floats(3072))).finish());
    }
    const data = openCalibration(dir, vlm);
    assert.equal(data.count, 2);
    const [s] = data.samples();
    assert.deepEqual(s.pixel_values.dims, [1, 3, 32, 32]);
    assert.equal(s.input_ids.type, 'int64');
  });

  it('reads PNG images for an image input: resized, normalised, NCHW', () => {
    const dir = tmpDir();
    const png = new PNG({ width: 64, height: 48 });
    png.data.fill(255);
    fs.writeFileSync(path.join(dir, 'white.png'), PNG.sync.write(png));
    const cnn = FIXTURES.cnn.build().graph!;
    const [s] = openCalibration(dir, cnn).samples();
    assert.deepEqual(s.input.dims, [1, 3, 32, 32]);
    const v = s.input.data as Float32Array;
    assert.ok(Math.abs(v[0] - (1 - 0.485) / 0.229) < 1e-5); // white, channel 0, ImageNet mean/std
  });

  it('random:N is seeded and marked as not real data', () => {
    const a = openCalibration('random:3', mlp);
    assert.equal(a.kind, 'random');
    assert.match(a.warning!, /random/);
    const x = [...a.samples()][2].input.data as Float32Array;
    const y = [...openCalibration('random:3', mlp).samples()][2].input.data as Float32Array;
    assert.deepEqual([...x], [...y]);
  });

  it('gives one clear error for a folder with nothing usable, a wrong shape, a wrong dtype', () => {
    const empty = tmpDir();
    fs.writeFileSync(path.join(empty, 'notes.txt'), 'hello');
    assert.throws(() => openCalibration(empty, mlp), /no usable calibration files/);
    const wrong = tmpDir();
    fs.writeFileSync(path.join(wrong, 'a.npy'), npy('<f4', [65], floats(65)));
    assert.throws(() => [...openCalibration(wrong, mlp).samples()], /input 'input' has shape \[65\], the model expects \[batch, 64\]/);
    const dtype = tmpDir();
    fs.writeFileSync(path.join(dtype, 'a.npy'), npy('|u1', [64], new Uint8Array(64)));
    assert.throws(() => [...openCalibration(dtype, mlp).samples()], /input 'input' must be float32, the file holds uint8/);
    assert.throws(() => openCalibration('/no/such/dir', mlp), /must be a folder/);
  });
});
