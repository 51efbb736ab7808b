// The sweep feature: palette → Run pruning sweep (method, sparsities, data), the chart filling as points
// arrive, and "keep this model" from the chart.
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { PruneOptions } from '../../../core/prune/options';
import { pickModel } from '../../commands';
import type { EngineRunner } from '../../engine';
import { sweepPicks } from '../../presets';
import { ResultsPanel } from '../../results-panel';
import type { SlurmRunner } from '../../slurm-runner';
import { columnBesideCode } from '../../training-code';
import { evaluatorOptions, pickCalibration, settings, type FeatureContext } from '../shared';

export class SweepController implements vscode.Disposable {
  private readonly routing: vscode.Disposable;

  constructor(private readonly f: FeatureContext, private readonly engine: EngineRunner, private readonly slurm: SlurmRunner) {
    this.routing = ResultsPanel.route((panel, msg) => {
      if (msg.type !== 'keepPoint') return false;
      void this.keepPoint(panel, msg.sparsity);
      return true;
    });
  }

  dispose(): void {
    this.routing.dispose();
  }

  /** Palette → Run pruning sweep: model, method and sparsities; the chart grows as points arrive. */
  async sweep(uri: unknown, preset?: { method?: PruneOptions['method']; sparsities?: number[]; calibration?: string }): Promise<{ report: string; points: number } | undefined> {
    const model = await pickModel(uri);
    if (!model) return undefined;
    let method = preset?.method, sparsities = preset?.sparsities, calibration = preset?.calibration;
    if (!preset) {
      const m = await vscode.window.showQuickPick(sweepPicks(), { placeHolder: 'Pruning method', ignoreFocusOut: true });
      if (!m) return undefined;
      method = m.label as PruneOptions['method'];
      const ws = this.f.ctx.workspaceState;
      const s = await vscode.window.showInputBox({ prompt: 'Sparsities, comma separated', value: ws.get(`sparsities:${model.fsPath}`, '0.1,0.3,0.5,0.7,0.9'), ignoreFocusOut: true, validateInput: (v) => (v.split(',').every((x) => x.trim() !== '' && Number(x) >= 0 && Number(x) < 1) ? undefined : 'numbers in [0, 1), comma separated') });
      if (s === undefined) return undefined;
      await ws.update(`sparsities:${model.fsPath}`, s);
      sparsities = s.split(',').map(Number);
      const c = await pickCalibration(this.f.ctx, model, false);
      if (c === null) return undefined;
      calibration = c;
    }
    const report = path.join(path.dirname(model.fsPath), `${path.basename(model.fsPath, '.onnx')}.sweep.json`);
    const panel = ResultsPanel.show(this.f.ctx.extensionUri, this.f.log, model.fsPath, { sweep: { model: model.fsPath, method: method ?? 'magnitude', points: [], done: false, fidelityData: calibration ?? 'random:4' } }, { tab: 'sweep', column: await columnBesideCode([]) });
    const ev = evaluatorOptions(true);
    const title = `QuantLens: pruning sweep of ${path.basename(model.fsPath)}`;
    const req = {
      model: model.fsPath,
      sweep: { sparsities: sparsities ?? [0.1, 0.3, 0.5], output: report, ...(ev.evaluator ? { evaluator: { command: ev.evaluator, lowerIsBetter: ev.evaluatorLowerIsBetter } } : {}) },
      options: { method: method ?? 'magnitude', calibration, device: settings().get<'auto'>('device') },
    };
    const r = settings().get<string>('runner') === 'slurm'
      ? await this.slurm.run(title, 'sweep', req, (partial) => partial.points.forEach((p) => panel.addPoint(p)))
      : await this.engine.run(title, 'sweep', req, (p) => panel.addPoint(p));
    panel.sweepDone(r?.baseline);
    if (!r) return undefined;
    return { report: r.report, points: r.points.length };
  }

  /** A sweep point chosen in the chart: its model is copied beside the input under a plain name. */
  private async keepPoint(panel: ResultsPanel, sparsity: number): Promise<void> {
    const v = panel.state?.sections.sweep;
    const p = v?.points.find((q) => q.sparsity === sparsity);
    if (!v || !p || !fs.existsSync(p.model)) return;
    const dest = path.join(path.dirname(v.model), `${path.basename(v.model, '.onnx')}.${v.method}-${p.sparsity}.onnx`);
    fs.copyFileSync(p.model, `${dest}.tmp`);
    fs.renameSync(`${dest}.tmp`, dest);
    v.kept = sparsity;
    panel.post({ type: 'kept', sparsity });
    this.f.log.appendLine(`kept ${dest} (sparsity ${p.sparsity}, cosine ${p.cosine.toFixed(5)})`);
    void vscode.window.showInformationMessage(`QuantLens: kept ${path.basename(dest)} (cosine ${p.cosine.toFixed(4)}, ${p.parameters.toLocaleString('en-US')} parameters)`);
  }
}
