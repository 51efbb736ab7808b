// The quantize feature: explorer → Quantize model (mode, data, recipe), the run, then the summary,
// calibration and where-time-goes tabs and the sensitivity tree of the same model.
import path from 'node:path';
import * as vscode from 'vscode';
import type { QuantizeReport } from '../../../core/jobs/quantize-model';
import type { QuantizeOptions } from '../../../core/quant/options';
import type { SensitivityReport } from '../../../core/sensitivity/analyze';
import { pickModel } from '../../commands';
import type { EngineRunner } from '../../engine';
import { pipelineTarget, quantizePipelineFlow } from '../../pipeline-flow';
import { MODES, quantizeOptions, type QuantizePreset } from '../../presets';
import { ResultsPanel } from '../../results-panel';
import { columnBesideCode } from '../../training-code';
import type { SensitivityController } from '../sensitivity/controller';
import { evaluatorOptions, pickCalibration, pickRecipe, RANDOM, readJson, settings, type FeatureContext } from '../shared';
import { quantizeView } from './view-model';

export class QuantizeController implements vscode.Disposable {
  private readonly routing: vscode.Disposable;

  constructor(private readonly f: FeatureContext, private readonly engine: EngineRunner, private readonly sensitivity: SensitivityController) {
    this.routing = ResultsPanel.route((panel, msg) => {
      if (msg.type !== 'openLayer') return false;
      const report = panel.state?.sections.quantize?.sensitivityReport ?? panel.state?.sections.sensitivity?.report;
      if (report) void this.sensitivity.openTree(report, msg.layer || undefined);
      return true;
    });
    sensitivity.requantize = (model, recipe, calibration) => this.quantize(vscode.Uri.file(model), { mode: 'static', bits: 8, calibration, recipe, label: 'recipe', sensitivity: false });
  }

  dispose(): void {
    this.routing.dispose();
  }

  /** Explorer → Quantize model: mode, data and recipe (last choices first), then the run and its results. */
  async quantize(uri: unknown, preset?: QuantizePreset): Promise<{ output: string; report: string; sensitivity?: string } | undefined> {
    // A pipeline folder (or its config.json / genai_config.json): every component, by generation.
    const pipeline = pipelineTarget(uri);
    if (pipeline) return quantizePipelineFlow(this.f.ctx, this.engine, this.f.log, pipeline, (r) => this.sensitivity.openTree(r), preset && { calibration: preset.calibration, evalData: preset.evalData });
    const model = await pickModel(uri);
    if (!model) return undefined;
    const chosen = preset ? { choice: preset, suffix: presetSuffix(preset) } : await this.ask(model);
    if (!chosen) return undefined;
    const { choice, suffix } = chosen;
    const output = path.join(path.dirname(model.fsPath), `${path.basename(model.fsPath, '.onnx')}.${suffix}.onnx`);
    const device = settings().get<'auto' | 'cpu' | 'cuda'>('device', 'auto');
    const ev = evaluatorOptions(choice.budget !== undefined || !!choice.progressive);
    const options = quantizeOptions(choice, {
      device, calibrationMethod: settings().get('calibrationMethod') as QuantizeOptions['calibrationMethod'],
      evaluator: ev.evaluator ? { command: ev.evaluator, lowerIsBetter: !!ev.evaluatorLowerIsBetter } : undefined,
    });
    const result = await this.engine.run(`QuantLens: quantizing ${path.basename(model.fsPath)}`, 'quantize', { model: model.fsPath, output, options });
    if (!result) return undefined;
    if ('kind' in result) {
      void vscode.window.showInformationMessage(`QuantLens: wrote ${result.output}: ${(result.judged.tokens.agreement * 100).toFixed(1)}% of the float pipeline's tokens reproduced`);
      return { output: result.output, report: path.join(result.output, 'quantlens.report.json') };
    }
    let sensitivityFile: string | undefined;
    let sens: SensitivityReport | undefined;
    if (preset?.sensitivity !== false) {
      sens = await this.engine.run(`QuantLens: per-layer sensitivity of ${path.basename(model.fsPath)}`, 'sensitivity', {
        model: model.fsPath, options: { mode: choice.mode, bits: choice.bits, calibration: choice.calibration ?? RANDOM, device, exclude: [] },
      });
      if (sens) sensitivityFile = `${model.fsPath}.sensitivity.json`;
    }
    const report = readJson<QuantizeReport>(result.report);
    const column = await columnBesideCode(sens?.layers.map((l) => l.name) ?? report.nodes.map((n) => n.modulePath));
    // One panel for the model: the summary, and the tree (shown first when there is one).
    ResultsPanel.show(this.f.ctx.extensionUri, this.f.log, model.fsPath, { quantize: quantizeView(report, sensitivityFile) }, { tab: 'summary', column });
    if (sens && sensitivityFile) this.sensitivity.show(sens, sensitivityFile, column);
    return { output: result.output, report: result.report, ...(sensitivityFile ? { sensitivity: sensitivityFile } : {}) };
  }

  /** The pickers: mode (last used first), a budget when the mode takes one, data, recipe. */
  private async ask(model: vscode.Uri): Promise<{ choice: QuantizePreset; suffix: string } | undefined> {
    const memoryKey = `quantize:${model.fsPath}`;
    const ws = this.f.ctx.workspaceState;
    const last = ws.get<string>(memoryKey);
    const items = [...MODES].sort((a, b) => Number(b.label === last) - Number(a.label === last)).map((m) => ({ ...m, description: m.label === last ? 'last used' : undefined }));
    const picked = await vscode.window.showQuickPick(items, { placeHolder: `Quantize ${path.basename(model.fsPath)}`, ignoreFocusOut: true });
    // Match by label: a remote extension host may hand back a copy of the item without its extra fields.
    const mode = picked && MODES.find((m) => m.label === picked.label);
    if (!mode) return undefined;
    await ws.update(memoryKey, mode.label);
    const choice: QuantizePreset = { ...mode.preset };
    if (choice.budget !== undefined) {
      const b = await vscode.window.showInputBox({ prompt: 'Largest allowed drop from the float model (1 − cosine)', value: String(ws.get(`budget:${model.fsPath}`) ?? 0.01), ignoreFocusOut: true, validateInput: (v) => (Number(v) >= 0 && Number(v) < 1 ? undefined : 'a number in [0, 1)') });
      if (b === undefined) return undefined;
      choice.budget = Number(b);
      await ws.update(`budget:${model.fsPath}`, choice.budget);
    }
    const data = await pickCalibration(this.f.ctx, model, mode.needsData);
    if (data === null) return undefined;
    choice.calibration = data;
    const recipe = await pickRecipe();
    if (recipe === null) return undefined;
    choice.recipe = recipe;
    return { choice, suffix: mode.suffix };
  }
}

/** The output's suffix for a preset: its label, else the menu entry it matches, else its mode. */
function presetSuffix(preset: QuantizePreset): string {
  return preset.label ?? MODES.find((m) => m.preset.mode === preset.mode && (m.preset.bits ?? 8) === (preset.bits ?? 8) && !!m.preset.budget === (preset.budget !== undefined) && !!m.preset.progressive === !!preset.progressive)?.suffix ?? preset.mode;
}
