import * as vscode from 'vscode';
import type { ModelSummaryState } from '../protocol/model-summary-view';
import { inspectModel } from './commands';
import { EngineRunner } from './engine';
import { PruneController } from './features/prune/controller';
import { QuantizeController } from './features/quantize/controller';
import { SensitivityController } from './features/sensitivity/controller';
import { SweepController } from './features/sweep/controller';
import { updatePipelineFolders } from './pipeline-flow';
import { SensitivityHover } from './hover';
import { ModelSummaryPanel } from './model-summary-panel';
import { ResultsPanel } from './results-panel';
import { SlurmRunner } from './slurm-runner';

/**
 * A command's second argument: tests and other commands pass an options object; the explorer passes the
 * array of selected URIs, which is not one.
 */
function preset<T>(v: unknown): T | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof vscode.Uri) ? (v as T) : undefined;
}

export function activate(context: vscode.ExtensionContext) {
  const t0 = performance.now();
  const log = vscode.window.createOutputChannel('QuantLens');
  const engine = new EngineRunner(context, log);
  // A controller per feature: its pickers, its view model, the page's messages it owns.
  const f = { ctx: context, log };
  const slurm = new SlurmRunner(context.extensionUri, log);
  const sensitivity = new SensitivityController(f, engine, slurm);
  const quantize = new QuantizeController(f, engine, sensitivity);
  const sweep = new SweepController(f, engine, slurm);
  const prune = new PruneController(f, engine);
  const hover = new SensitivityHover();
  const python = { language: 'python' };
  context.subscriptions.push(
    log,
    engine,
    hover,
    sensitivity,
    quantize,
    sweep,
    vscode.languages.registerHoverProvider(python, hover),
    vscode.languages.registerCodeLensProvider(python, hover),
    vscode.commands.registerCommand('quantlens.inspectModel', (uri?: unknown) => inspectModel(context, engine, log, uri)),
    vscode.commands.registerCommand('quantlens.quantizeModel', (uri?: unknown, options?: unknown) => quantize.quantize(uri, preset<Parameters<QuantizeController['quantize']>[1]>(options))),
    vscode.commands.registerCommand('quantlens.runPruningSweep', (uri?: unknown, options?: unknown) => sweep.sweep(uri, preset<Parameters<SweepController['sweep']>[1]>(options))),
    vscode.commands.registerCommand('quantlens.pruneModel', (uri?: unknown, options?: unknown) => prune.prune(uri, preset<Parameters<PruneController['prune']>[1]>(options))),
    vscode.commands.registerCommand('quantlens.analyzeSensitivity', (uri?: unknown, options?: unknown) => sensitivity.analyze(uri, preset<Parameters<SensitivityController['analyze']>[1]>(options))),
    vscode.commands.registerCommand('quantlens.openSensitivityTree', (report?: string, layer?: string) => sensitivity.openTree(report ?? hover.index.report, layer)),
    vscode.commands.registerCommand('quantlens.showOutput', () => log.show()),
    vscode.window.registerWebviewPanelSerializer(ModelSummaryPanel.viewType, {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: ModelSummaryState | undefined) {
        ModelSummaryPanel.revive(panel, context.extensionUri, log, state);
      },
    }),
    vscode.window.registerWebviewPanelSerializer(ResultsPanel.viewType, {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown) {
        ResultsPanel.revive(panel, context.extensionUri, log, state);
      },
    }),
  );
  // Pipeline folders get "Quantize model" in the explorer too (a context key the menu reads).
  void updatePipelineFolders();
  // What activate() itself took (the bench reports it beside VS Code's whole activation).
  return { engine: engine.client, hover, flows: { slurm, quantize, sensitivity, sweep, prune }, results: (model: string) => ResultsPanel.of(model)?.state, activateMs: performance.now() - t0 };
}

export function deactivate() {}
