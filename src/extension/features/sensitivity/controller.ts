// The sensitivity feature: the analysis command, the tree tab (opened from the hover, CodeLens or a
// quantize run) and the recipe the tree's policy edits make.
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { QuantizeOptions } from '../../../core/quant/options';
import type { SensitivityReport } from '../../../core/sensitivity/analyze';
import { pickModel } from '../../commands';
import type { EngineRunner } from '../../engine';
import { ResultsPanel } from '../../results-panel';
import type { SlurmRunner } from '../../slurm-runner';
import { columnBesideCode } from '../../training-code';
import { writeTextAtomic } from '../../../core/fs/json';
import { pickCalibration, RANDOM, readJson, settings, type FeatureContext } from '../shared';
import type { LayerPolicy } from './protocol';
import { sensitivityView } from './view-model';

/** The report's model as a full path (a CLI report may name it relative to where it ran: look beside the report). */
function modelOf(r: SensitivityReport, file: string): string {
  if (path.isAbsolute(r.model)) return r.model;
  const beside = path.join(path.dirname(file), path.basename(r.model));
  return fs.existsSync(beside) ? beside : path.resolve(r.model);
}

/** Re-runs quantization with a recipe the tree wrote (the quantize feature does it). */
export type Requantize = (model: string, recipe: string, calibration: string) => Promise<unknown>;

export class SensitivityController implements vscode.Disposable {
  private readonly routing: vscode.Disposable;
  /** Set by the extension once the quantize feature exists (each needs the other). */
  requantize?: Requantize;

  constructor(private readonly f: FeatureContext, private readonly engine: EngineRunner, private readonly slurm: SlurmRunner) {
    this.routing = ResultsPanel.route((panel, msg) => {
      if (msg.type !== 'saveRecipe') return false;
      void this.saveRecipe(panel, msg.rules, msg.rerun);
      return true;
    });
  }

  dispose(): void {
    this.routing.dispose();
  }

  /** Palette → Analyze sensitivity: data, then the run (locally or on Slurm, the tree filling as shards end). */
  async analyze(uri: unknown, preset?: { calibration?: string; mode?: QuantizeOptions['mode']; bits?: 8 | 4 }): Promise<string | undefined> {
    const model = await pickModel(uri);
    if (!model) return undefined;
    let calibration = preset?.calibration;
    if (!preset) {
      const c = await pickCalibration(this.f.ctx, model, true);
      if (c === null || c === undefined) return undefined;
      calibration = c;
    }
    const title = `QuantLens: per-layer sensitivity of ${path.basename(model.fsPath)}`;
    const req = { model: model.fsPath, options: { mode: preset?.mode ?? 'static', bits: preset?.bits, calibration: calibration ?? RANDOM, device: settings().get<'auto'>('device') } };
    const file = `${model.fsPath}.sensitivity.json`;
    let column: vscode.ViewColumn | undefined;
    const show = async (r: SensitivityReport) => this.show(r, file, column ??= await columnBesideCode(r.layers.map((l) => l.name)));
    const r = settings().get<string>('runner') === 'slurm'
      ? await this.slurm.run(title, 'sensitivity', req, (partial) => void show(partial))
      : await this.engine.run(title, 'sensitivity', req);
    if (!r) return undefined;
    await show(r);
    return file;
  }

  /** The tree tab of the report's model. */
  show(r: SensitivityReport, file: string, column: vscode.ViewColumn, focus?: string): ResultsPanel {
    return ResultsPanel.show(this.f.ctx.extensionUri, this.f.log, modelOf(r, file), { sensitivity: sensitivityView(r, file) }, { tab: 'sensitivity', column, ...(focus ? { focus } : {}) });
  }

  /** Opens a sensitivity report in the tree, at `layer` (the hover's link). */
  async openTree(report?: string, layer?: string): Promise<boolean> {
    if (!report || !fs.existsSync(report)) {
      void vscode.window.showWarningMessage(`QuantLens: no sensitivity report${report ? ` at ${report}` : ''}; run "QuantLens: Analyze sensitivity" first.`);
      return false;
    }
    const r = readJson<SensitivityReport>(report);
    const existing = ResultsPanel.of(modelOf(r, report));
    if (existing?.state?.sections.sensitivity?.report === report) {
      existing.panel.reveal(undefined, false);
      existing.focus(layer ?? '');
      return true;
    }
    this.show(r, report, await columnBesideCode(r.layers.map((l) => l.name)), layer);
    return true;
  }

  /** The tree's policy edits as a recipe beside the model; optionally quantize again with it. */
  async saveRecipe(panel: ResultsPanel, rules: Array<{ module: string; policy: LayerPolicy }>, rerun: boolean): Promise<string | undefined> {
    if (!panel.state?.sections.sensitivity) return undefined;
    const model = panel.state.model;
    const file = path.join(path.dirname(model), `${path.basename(model, '.onnx')}.recipe.yaml`);
    const rule = (p: LayerPolicy) => (p === 'float' ? '{keep: float}' : p === 'int4' ? '{mode: weight, bits: 4}' : '{bits: 8}');
    writeTextAtomic(file, ['# Written by QuantLens from the sensitivity tree; the last matching rule wins.', 'rules:', ...rules.map((r) => `  ${r.module}: ${rule(r.policy)}`)].join('\n') + '\n');
    this.f.log.appendLine(`wrote ${file} (${rules.length} rules)`);
    if (!rerun || !this.requantize) {
      void vscode.window.showInformationMessage(`QuantLens: saved ${path.basename(file)}`, 'Open').then((a) => { if (a) void vscode.window.showTextDocument(vscode.Uri.file(file)); });
      return file;
    }
    await this.requantize(model, file, this.f.ctx.workspaceState.get<string>(`calibration:${model}`) ?? RANDOM);
    return file;
  }
}
