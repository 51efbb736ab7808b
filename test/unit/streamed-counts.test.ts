import assert from 'node:assert/strict';
import { Rng } from '../../src/core/calib/rng';
import { kthSmallest } from '../../src/core/prune/magnitude';
import { sortedPruneCounts as pruneCounts } from '../helpers/sorted-prune-counts';
import { streamedPruneCounts } from '../../src/core/prune/streamed-counts';

// The streamed (histogram) selection must give exactly the counts the in-memory sort gives, ties and
// per-layer minimum density included.
describe('streamed global prune counts', () => {
  const rng = new Rng(7);
  const layer = (n: number, kind: number) => Float32Array.from({ length: n }, (_, i) =>
    kind === 0 ? Math.abs(rng.normal()) : kind === 1 ? Math.round(Math.abs(rng.normal()) * 4) / 4 /* many ties */ : kind === 2 ? 0 : (i % 7) * 1e-30 /* subnormals */);
  for (const [label, layers] of [
    ['random magnitudes', [layer(1000, 0), layer(300, 0), layer(4096, 0)]],
    ['heavy ties and an all-zero layer', [layer(500, 1), layer(200, 2), layer(800, 1)]],
    ['subnormal scores next to normal ones', [layer(400, 3), layer(400, 0)]],
  ] as const) {
    for (const sparsity of [0, 0.1, 0.5, 0.9, 0.99]) {
      for (const minDensity of [0, 0.02, 0.3]) {
        it(`${label}, sparsity ${sparsity}, min density ${minDensity}`, () => {
          const want = pruneCounts([...layers], sparsity, 'global', minDensity);
          let reads = 0;
          const got = streamedPruneCounts(layers.map((l) => l.length), (i) => { reads++; return layers[i]; }, sparsity, 'global', minDensity);
          assert.deepEqual(got, want);
          assert.ok(reads <= 2 * layers.length, `${reads} layer reads`);
        });
      }
    }
  }
  it('per-layer scope needs no reads', () => {
    const got = streamedPruneCounts([10, 100], () => { throw new Error('read'); }, 0.5, 'layer', 0);
    assert.deepEqual(got, pruneCounts([new Float32Array(10), new Float32Array(100)], 0.5, 'layer', 0));
  });
});

describe('k-th smallest score by counting', () => {
  it('equals the sorted order at every rank tried, ties and zeros included', () => {
    const rng = new Rng(11);
    const s = Float32Array.from({ length: 5000 }, (_, i) => (i % 5 === 0 ? 0 : i % 7 === 0 ? 0.25 : Math.abs(rng.normal())));
    s[3] = -0;
    const sorted = Float32Array.from(s).sort();
    for (const k of [0, 1, 999, 1000, 2500, 4998, 4999]) assert.equal(kthSmallest(s, k), sorted[k] === 0 ? 0 : sorted[k], `k=${k}`);
  });
});
