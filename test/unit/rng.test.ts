import assert from 'node:assert/strict';
import { Rng } from '../../src/core/calib/rng';

describe('seeded random values', () => {
  // Random samples (and the fixtures' weights) must be the same on every machine and in every release:
  // the bulk fill is only faster, never other values.
  it('fillNormal gives the values normal() gives one by one, whatever the length and a pending spare', () => {
    for (const length of [0, 1, 2, 7, 8, 1001]) {
      for (const before of [0, 1, 2]) {
        const one = new Rng(11), bulk = new Rng(11);
        for (let k = 0; k < before; k++) assert.equal(bulk.normal(), one.normal());
        const a = Float32Array.from({ length }, () => one.normal());
        const b = new Float32Array(length);
        bulk.fillNormal(b);
        assert.deepEqual(Array.from(b), Array.from(a), `length ${length}, ${before} drawn before`);
        assert.equal(bulk.normal(), one.normal(), `the draw after: length ${length}, ${before} before`);
      }
    }
    const d = new Float64Array(5);
    new Rng(3).fillNormal(d);
    const r = new Rng(3);
    assert.deepEqual(Array.from(d), Array.from({ length: 5 }, () => r.normal()));
  });
});
