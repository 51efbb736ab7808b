// What the summary and pruning tabs show of a prune run (no `vscode`: tested in plain Node).
import type { PruneReport } from '../../../core/prune/prune-model';
import type { PruneView } from './protocol';

export function pruneView(rep: PruneReport): PruneView {
  return {
    input: rep.input, output: rep.output, method: rep.method, sparsity: rep.sparsity, parametersBefore: rep.parametersBefore, parametersAfter: rep.parametersAfter,
    sizeBefore: rep.sizeBefore, sizeAfter: rep.sizeAfter, latencyMs: rep.latencyMs, ...(rep.latencyStats ? { latencyStats: rep.latencyStats } : {}),
    fidelity: rep.fidelity, fidelityData: rep.fidelityData, maps: rep.maps,
    layers: rep.layers.map((l) => ({ name: l.name, sparsity: l.sparsity, shapeBefore: l.shapeBefore, shapeAfter: l.shapeAfter })), skipped: rep.skipped,
    ...(rep.rounding ? { rounding: rep.rounding } : {}),
    ...(rep.compensation ? { compensation: rep.compensation } : {}),
    warnings: rep.warnings,
  };
}
