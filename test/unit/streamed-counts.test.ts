import assert from 'node:assert/strict';
import { Rng } from '../../src/core/calib/rng';
import { kthSmallest, lampScores } from '../../src/core/prune/magnitude';
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

describe('LAMP scores', () => {
  it('are w² over the sum of squares at least as large, keep each layer\'s order, and top out at 1', () => {
    const w = Float32Array.from([3, -1, 2, 0, 2]);
    const s = lampScores(Float32Array.from(w, Math.abs));
    // sorted squares 0, 1, 4, 4, 9: suffix sums 18, 18, 17, 17, 9 (ties share the larger sum)
    const want = [9 / 9, 1 / 18, 4 / 17, 0, 4 / 17];
    want.forEach((v, i) => assert.ok(Math.abs(s[i] - v) < 1e-6, `${i}: ${s[i]} vs ${v}`));
    const order = (a: ArrayLike<number>) => Array.from(a, (_, i) => i).sort((x, y) => a[x] - a[y] || x - y);
    assert.deepEqual(order(s), order(Float32Array.from(w, Math.abs)));
  });
  it('give a small layer of large weights a smaller share than one raw threshold does', () => {
    const rng = new Rng(3);
    const big = Float32Array.from({ length: 4000 }, () => Math.abs(rng.normal()) * 0.01);
    const small = Float32Array.from({ length: 40 }, () => Math.abs(rng.normal()) * 0.005);
    const raw = streamedPruneCounts([4000, 40], (i) => [big, small][i], 0.3, 'global', 0);
    const lamp = streamedPruneCounts([4000, 40], (i) => lampScores([big, small][i].slice()), 0.3, 'global', 0);
    assert.ok(lamp[1] < raw[1], `small layer loses ${lamp[1]} (LAMP) vs ${raw[1]} (raw)`);
    assert.equal(lamp[0] + lamp[1], raw[0] + raw[1]);
  });
});
