import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { feedsForWorker, recordToWire } from '../../src/core/runtime/wire-tensor';
import { sampleRows } from '../../src/core/calib/stacked-samples';

// Samples cross to a worker thread by message; structured cloning copies a typed array's whole buffer,
// and a sample of a stacked data set is a view into every sample's values.
describe('tensors sent to a worker thread', function () {
  const stacked = () => new ort.Tensor('float32', Float32Array.from({ length: 8 * 3 * 4 * 4 }, (_, i) => i), [8, 3, 4, 4]);

  it('a sample of a stacked set is sent as its own values, moved, and the set stays whole', function () {
    const set = stacked();
    const sample = sampleRows({ x: set }, 5, 8);
    const { feeds, transfer } = feedsForWorker(sample);
    const sent = feeds.x.data as Float32Array;
    assert.equal(sent.buffer.byteLength, 3 * 4 * 4 * 4, 'only the sample\'s 48 values');
    assert.deepEqual([...sent], [...(sample.x.data as Float32Array)]);
    assert.deepEqual(transfer, [sent.buffer]);
    assert.deepEqual(feeds.x.dims, [1, 3, 4, 4]);
    // Moving the copy leaves the caller's arrays alone.
    structuredClone(feeds, { transfer });
    assert.equal(sent.length, 0, 'the copy was moved');
    assert.equal((set.data as Float32Array).length, 8 * 48);
    assert.equal((sample.x.data as Float32Array)[0], 5 * 48);
  });

  it('string tensors are sent as they are; int64 and bool values are copied like floats', function () {
    const { feeds, transfer } = feedsForWorker({
      s: new ort.Tensor('string', ['a', 'b'], [2]),
      n: new ort.Tensor('int64', BigInt64Array.of(3n, 4n), [2]),
      b: new ort.Tensor('bool', Uint8Array.of(1, 0), [2]),
    });
    assert.deepEqual(feeds.s.data, ['a', 'b']);
    assert.deepEqual([...(feeds.n.data as BigInt64Array)], [3n, 4n]);
    assert.deepEqual([...(feeds.b.data as Uint8Array)], [1, 0]);
    assert.equal(transfer.length, 2);
  });

  it('cloned records (a worker pool\'s samples) carry a stacked sample\'s values, not the whole set\'s', function () {
    const set = stacked();
    const wire = recordToWire(sampleRows({ x: set }, 2, 8));
    assert.equal((wire.x.data as Float32Array).buffer.byteLength, 48 * 4);
    assert.equal((wire.x.data as Float32Array)[0], 2 * 48);
    const whole = new ort.Tensor('float32', new Float32Array(48), [1, 3, 4, 4]);
    assert.equal(recordToWire({ x: whole }).x.data, whole.data, 'an array that is its whole buffer is sent as it is');
  });
});
