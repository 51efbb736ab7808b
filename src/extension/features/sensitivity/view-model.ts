// What the tree tab shows, from a sensitivity report (no `vscode`: tested in plain Node).
import type { SensitivityReport } from '../../../core/sensitivity/analyze';
import type { SensitivityView } from './protocol';

export function sensitivityView(r: SensitivityReport, file: string): SensitivityView {
  return {
    report: file, model: r.model, method: r.method, scheme: `${r.scheme.mode} ${r.scheme.bits}-bit, ${r.method}`,
    layers: r.layers.map((l) => ({ name: l.name, opType: l.opType, parameters: l.parameters, sensitivity: l.sensitivity, sensitivityDb: l.sensitivityDb, rank: l.rank, split: l.split, reverse: l.reverse, ranges: l.ranges, ...(l.window ? { window: l.window } : {}) })),
  };
}
