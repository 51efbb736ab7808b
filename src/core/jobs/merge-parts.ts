// `quantlens merge`: the parts of a sharded job into the report a single run writes.
import fs from 'node:fs';
import { writeJsonAtomic } from '../fs/json';
import { checkReportPath } from '../fs/output-path';
import type { LayerSensitivity, SensitivityReport } from '../sensitivity/analyze';
import { rankLayers } from '../sensitivity/tree';
import type { SweepPoint, SweepReport } from '../prune/sweep';
import { readJobParts, readPart, type PartFile } from '../cluster/parts';

export interface MergeResult {
  job: PartFile['job'];
  output: string;
  shards: number;
  pieces: number;
  report: SensitivityReport | SweepReport;
}

/** Sensitivity parts → one report: layers back in graph order, ranked over all of them, one tree. */
export function mergeSensitivity(parts: PartFile[]): SensitivityReport {
  const slots = new Array<LayerSensitivity | undefined>(parts[0].total);
  for (const p of parts) (p.result as SensitivityReport).layers.forEach((l, k) => { slots[p.pieces[k]] = l; });
  const ranked = rankLayers(slots.filter((l): l is LayerSensitivity => !!l));
  const results = parts.map((p) => p.result as SensitivityReport);
  const first = results[0];
  const all = results.find((r) => r.allQuantized !== undefined)?.allQuantized;
  const devices = [...new Set(results.map((r) => r.device))];
  const { shard: _s, ...head } = first;
  return {
    ...head, ...(all !== undefined ? { allQuantized: all } : {}),
    // Compute time of all shards together (they may have run side by side).
    seconds: results.reduce((a, r) => a + r.seconds, 0),
    ...(devices.length > 1 ? { warning: [first.warning, `shards ran on different devices (${devices.join(', ')})`].filter(Boolean).join('; ') } : {}),
    layers: ranked.layers, tree: ranked.tree, shards: parts[0].shard.count,
  };
}

/** Sweep parts → one report: points by sparsity, the baseline as shard 1 measured it. */
export function mergeSweep(parts: PartFile[]): SweepReport {
  const results = parts.map((p) => p.result as SweepReport);
  const first = results[0];
  const points: SweepPoint[] = results.flatMap((r) => r.points).sort((a, b) => a.sparsity - b.sparsity);
  return { ...first, points, report: parts[0].report, seconds: results.reduce((a, r) => a + r.seconds, 0), reused: results.reduce((a, r) => a + r.reused, 0), shards: parts[0].shard.count };
}

/** The merged report of whatever parts exist so far (the editor fills its panel as they arrive). */
export function mergeAvailable(files: string[]): { report: SensitivityReport | SweepReport; shardsDone: number; shards: number } | undefined {
  const parts = files.filter((f) => fs.existsSync(f)).map(readPart);
  if (!parts.length) return undefined;
  const sorted = parts.sort((a, b) => a.shard.index - b.shard.index).filter((p) => p.key === parts[0].key);
  const report = sorted[0].job === 'sensitivity' ? mergeSensitivity(sorted) : mergeSweep(sorted);
  return { report, shardsDone: sorted.length, shards: sorted[0].shard.count };
}

/** Merges a complete set of parts and writes the report atomically (to `output`, or where a single run would). */
export function mergeParts(files: string[], output?: string): MergeResult {
  const parts = readJobParts(files);
  const target = output ?? parts[0].report;
  checkReportPath(target);
  const report = parts[0].job === 'sensitivity' ? mergeSensitivity(parts) : { ...mergeSweep(parts), report: target };
  writeJsonAtomic(target, report);
  return { job: parts[0].job, output: target, shards: parts.length, pieces: parts[0].total, report };
}
