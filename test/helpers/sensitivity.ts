import assert from 'node:assert/strict';
import type { SensitivityReport } from '../../src/core/sensitivity/analyze';

/** The layer facts a sharded run must reproduce: names in order, ranks, scores. */
export function assertSameSensitivity(merged: SensitivityReport, single: SensitivityReport, dbTolerance = 0.05): void {
  assert.deepEqual(merged.layers.map((l) => l.name), single.layers.map((l) => l.name));
  assert.deepEqual(merged.layers.map((l) => l.rank), single.layers.map((l) => l.rank));
  merged.layers.forEach((l, i) => assert.ok(Math.abs(l.sensitivityDb - single.layers[i].sensitivityDb) <= dbTolerance, `${l.name}: ${l.sensitivityDb} dB merged, ${single.layers[i].sensitivityDb} dB in one run`));
  assert.deepEqual(merged.tree.children.map((c) => c.name), single.tree.children.map((c) => c.name));
  assert.equal(merged.allQuantized === undefined, single.allQuantized === undefined);
  if (single.allQuantized !== undefined) assert.ok(Math.abs(merged.allQuantized! - single.allQuantized) <= 1e-6 + 1e-3 * single.allQuantized);
}
