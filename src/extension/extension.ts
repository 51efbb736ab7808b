import * as vscode from 'vscode';
import type { ModelSummaryState } from '../protocol/model-summary-view';
import type { ResultsState } from '../protocol/results-view';
import { inspectModel } from './commands';
import { EngineRunner } from './engine';
import { Flows } from './flows';
import { updatePipelineFolders } from './pipeline-flow';
import { SensitivityHover } from './hover';
import { ModelSummaryPanel } from './model-summary-panel';
import { ResultsPanel } from './results-panel';

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
    vscode.commands.registerCommand('quantlens.quantizeModel', (uri?: unknown, options?: unknown) => flows.quantize(uri, preset<Parameters<Flows['quantize']>[1]>(options))),
    vscode.commands.registerCommand('quantlens.runPruningSweep', (uri?: unknown, options?: unknown) => flows.sweep(uri, preset<Parameters<Flows['sweep']>[1]>(options))),
    vscode.commands.registerCommand('quantlens.pruneModel', (uri?: unknown, options?: unknown) => flows.prune(uri, preset<Parameters<Flows['prune']>[1]>(options))),
    vscode.commands.registerCommand('quantlens.analyzeSensitivity', (uri?: unknown, options?: unknown) => flows.sensitivity(uri, preset<Parameters<Flows['sensitivity']>[1]>(options))),
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
  // Pipeline folders get "Quantize model" in the explorer too (a context key the menu reads).
  void updatePipelineFolders();
  // What activate() itself took (the bench reports it beside VS Code's whole activation).
  return { engine: engine.client, hover, flows, activateMs: performance.now() - t0 };
}

export function deactivate() {}
