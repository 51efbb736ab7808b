// The prune feature: palette → Prune model (method, sparsity), the pruned model beside the input, and the
// pruning tab (heatmaps and per-layer sparsity) in the model's panel.
import path from 'node:path';
import * as vscode from 'vscode';
import type { PruneOptions } from '../../../core/prune/options';
import type { PruneReport } from '../../../core/prune/prune-model';
import { pickModel } from '../../commands';
import type { EngineRunner } from '../../engine';
import { prunePicks, pruneOptions } from '../../presets';
import { ResultsPanel } from '../../results-panel';
import { columnBesideCode } from '../../training-code';
import { readJson, settings, type FeatureContext } from '../shared';
import { pruneView } from './view-model';

export class PruneController {
  constructor(private readonly f: FeatureContext, private readonly engine: EngineRunner) {}

  /** Palette → Prune model: the pruned model beside the input, and its heatmaps. */
  async prune(uri: unknown, preset?: Partial<PruneOptions>): Promise<{ output: string; report: string } | undefined> {
    const model = await pickModel(uri);
    if (!model) return undefined;
    let options: Partial<PruneOptions> = { ...preset };
    if (!preset) {
      const m = await vscode.window.showQuickPick(prunePicks(), { placeHolder: 'Pruning method', ignoreFocusOut: true });
      if (!m) return undefined;
      const s = m.label === 'nm' ? '0.5' : await vscode.window.showInputBox({ prompt: 'Sparsity', value: '0.5', ignoreFocusOut: true, validateInput: (v) => (Number(v) >= 0 && Number(v) < 1 ? undefined : 'a number in [0, 1)') });
      if (s === undefined) return undefined;
      options = pruneOptions(m, Number(s));
    }
    const kind = `${options.method ?? 'magnitude'}${options.pruneNormalized ? '-norm' : ''}${options.roundTo === 'auto' ? '-aligned' : ''}`;
    const output = path.join(path.dirname(model.fsPath), `${path.basename(model.fsPath, '.onnx')}.${kind}-${options.sparsity ?? 0.5}.onnx`);
    const r = await this.engine.run(`QuantLens: pruning ${path.basename(model.fsPath)}`, 'prune', { model: model.fsPath, output, options: { ...options, device: settings().get('device') } });
    if (!r) return undefined;
    const rep = readJson<PruneReport>(r.report);
    ResultsPanel.show(this.f.ctx.extensionUri, this.f.log, model.fsPath, { prune: pruneView(rep) }, { tab: 'pruning', column: await columnBesideCode(rep.layers.map((l) => l.name)) });
    return { output: r.output, report: r.report };
  }
}
