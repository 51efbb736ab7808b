import * as vscode from 'vscode';
import type { ModelSummaryState } from '../protocol/model-summary-view';
import { inspectModel, notYet } from './commands';
import { EngineRunner } from './engine';
import { ModelSummaryPanel } from './model-summary-panel';

export function activate(context: vscode.ExtensionContext) {
  const log = vscode.window.createOutputChannel('QuantLens');
  const engine = new EngineRunner(context, log);
  context.subscriptions.push(
    log,
    engine,
    vscode.commands.registerCommand('quantlens.inspectModel', (uri?: unknown) => inspectModel(context, engine, log, uri)),
    vscode.commands.registerCommand('quantlens.quantizeModel', notYet('Quantize model')),
    vscode.commands.registerCommand('quantlens.runPruningSweep', notYet('Run pruning sweep')),
    vscode.commands.registerCommand('quantlens.showOutput', () => log.show()),
    vscode.window.registerWebviewPanelSerializer(ModelSummaryPanel.viewType, {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: ModelSummaryState | undefined) {
        ModelSummaryPanel.revive(panel, context.extensionUri, log, state);
      },
    }),
  );
  return { engine: engine.client };
}

export function deactivate() {}
