import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { PNG } from 'pngjs';
import { openCalibration } from '../../src/core/calib/data';
import { forgetKeptSamples, keptSample, withoutKeptSamples } from '../../src/core/calib/kept-samples';
import { FIXTURES } from '../../src/core/fixtures';
import { tmpDir } from '../helpers/util';

/** A 32x32 PNG of one colour. */
function writePng(file: string, rgb: [number, number, number]): void {
  const png = new PNG({ width: 32, height: 32 });
  for (let i = 0; i < png.data.length; i += 4) png.data.set([...rgb, 255], i);
  fs.writeFileSync(file, PNG.sync.write(png));
}

// A job opens its calibration folder in several passes; decoding an image is the dear part of reading it.
describe('decoded images kept between passes', () => {
  const cnn = FIXTURES.cnn.build().graph!; // input float32 [batch, 3, 32, 32]
  beforeEach(forgetKeptSamples);

  it('a second opening of the folder hands out the decoded samples again, until the file changes', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'a.png');
    writePng(file, [255, 0, 0]);
    const [first] = openCalibration(dir, cnn).samples();
    const [again] = openCalibration(dir, cnn).samples();
    assert.equal(again, first, 'the same decoded sample');
    // Rewritten at once (within the file system's clock tick, as a test or a script may): read anew.
    writePng(file, [0, 0, 255]);
    const [changed] = openCalibration(dir, cnn).samples();
    assert.notEqual(changed, first);
    const px = (s: Record<string, ort.Tensor>, c: number) => (s.input.data as Float32Array)[c * 32 * 32];
    assert.ok(px(first, 0) > px(first, 2), 'the first was red');
    assert.ok(px(changed, 2) > px(changed, 0), 'the rewritten one is blue');
  });

  it('prepared another way (another input size, another mean), it is decoded again', () => {
    const dir = tmpDir();
    writePng(path.join(dir, 'a.png'), [10, 200, 30]);
    const [plain] = openCalibration(dir, cnn).samples();
    const [wide] = openCalibration(dir, { ...cnn, input: [{ ...cnn.input![0], type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 1 }, { dim_value: 3 }, { dim_param: 'h' }, { dim_param: 'w' }] } } } }] }, { inputShapes: { input: [1, 3, 16, 48] } }).samples();
    assert.deepEqual(wide.input.dims, [1, 3, 16, 48]);
    fs.writeFileSync(path.join(dir, 'preprocess.json'), JSON.stringify({ mean: 0.5, std: 0.5 }));
    const [other] = openCalibration(dir, cnn).samples();
    assert.notEqual(other, plain);
    assert.notEqual((other.input.data as Float32Array)[0], (plain.input.data as Float32Array)[0]);
  });

  it('keeps samples only within its budget, and lets them all go when told', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'a.png');
    writePng(file, [1, 2, 3]);
    let reads = 0;
    const read = () => { reads++; return { x: new ort.Tensor('float32', new Float32Array(100), [100]) }; };
    keptSample(file, 'small budget', read, 399);
    keptSample(file, 'small budget', read, 399);
    assert.equal(reads, 2, '400 bytes do not fit in 399');
    const a = keptSample(file, 'room', read, 400);
    assert.equal(keptSample(file, 'room', read, 400), a);
    assert.equal(reads, 3);
    forgetKeptSamples();
    assert.notEqual(keptSample(file, 'room', read, 400), a);
    assert.equal(reads, 4);
  });

  it('a job run without kept samples (local sensitivity, whose peak memory has a bound) decodes every time and keeps nothing', async () => {
    const dir = tmpDir();
    writePng(path.join(dir, 'a.png'), [5, 6, 7]);
    const read = () => [...openCalibration(dir, cnn).samples()][0];
    const [a, b] = await withoutKeptSamples(async () => {
      const first = read();
      await new Promise((r) => setImmediate(r)); // (still inside the job after an await)
      return [first, read()];
    });
    assert.notEqual(a, b);
    assert.deepEqual([...(a.input.data as Float32Array)], [...(b.input.data as Float32Array)]);
    assert.notEqual(read(), a, 'nothing was kept for later jobs either');
    assert.equal(read(), read(), 'outside it, kept as before');
  });

  it('a file that cannot be read is reported by the reader, as before', () => {
    const missing = path.join(tmpDir(), 'gone.png');
    assert.throws(() => keptSample(missing, 'x', () => { throw new Error(`${missing}: no such image`); }), /gone\.png: no such image/);
  });
});
