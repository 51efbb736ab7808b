import * as vscode from 'vscode';
import type { ModelSummaryState } from '../protocol/model-summary-view';
import type { ResultsState } from '../protocol/results-view';
import { inspectModel } from './commands';
import { EngineRunner } from './engine';
import { Flows } from './flows';
import { SensitivityHover } from './hover';
import { ModelSummaryPanel } from './model-summary-panel';
import { ResultsPanel } from './results-panel';

export function activate(context: vscode.ExtensionContext) {
  const log = vscode.window.createOutputChannel('QuantLens');
  const engine = new EngineRunner(context, log);
  const flows = new Flows(context, engine, log);
  const hover = new SensitivityHover();
  const python = { language: 'python' };
  context.subscriptions.push(
    log,
    engine,
    hover,
    vscode.languages.registerHoverProvider(python, hover),
    vscode.languages.registerCodeLensProvider(python, hover),
    vscode.commands.registerCommand('quantlens.inspectModel', (uri?: unknown) => inspectModel(context, engine, log, uri)),
    vscode.commands.registerCommand('quantlens.quantizeModel', (uri?: unknown, preset?: Parameters<Flows['quantize']>[1]) => flows.quantize(uri, preset)),
    vscode.commands.registerCommand('quantlens.runPruningSweep', (uri?: unknown, preset?: Parameters<Flows['sweep']>[1]) => flows.sweep(uri, preset)),
    vscode.commands.registerCommand('quantlens.pruneModel', (uri?: unknown, preset?: Parameters<Flows['prune']>[1]) => flows.prune(uri, preset)),
    vscode.commands.registerCommand('quantlens.analyzeSensitivity', (uri?: unknown, preset?: Parameters<Flows['sensitivity']>[1]) => flows.sensitivity(uri, preset)),
    vscode.commands.registerCommand('quantlens.openSensitivityTree', (report?: string, layer?: string) => flows.openTree(report ?? hover.index.report, layer)),
    vscode.commands.registerCommand('quantlens.showOutput', () => log.show()),
    vscode.window.registerWebviewPanelSerializer(ModelSummaryPanel.viewType, {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: ModelSummaryState | undefined) {
        ModelSummaryPanel.revive(panel, context.extensionUri, log, state);
      },
    }),
    vscode.window.registerWebviewPanelSerializer(ResultsPanel.viewType, {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: ResultsState | undefined) {
        ResultsPanel.revive(panel, context.extensionUri, log, state);
      },
    }),
  );
  return { engine: engine.client, hover, flows };
}

export function deactivate() {}
