import * as vscode from 'vscode';
import { formatPipelineSummary } from '../core/pipeline/summary';
import type { ModelSummary } from '../core/inspect';
import type { EngineRunner } from './engine';
import { ModelSummaryPanel } from './model-summary-panel';

/** The model a command acts on: the explorer selection, else the active editor's file, else a picker. */
export async function pickModel(uri: unknown): Promise<vscode.Uri | undefined> {
  if (uri instanceof vscode.Uri) return uri;
  const active = vscode.window.activeTextEditor?.document.uri;
  if (active?.path.endsWith('.onnx')) return active;
  const found = await vscode.workspace.findFiles('**/*.onnx', '**/node_modules/**', 200);
  if (found.length === 0) {
    void vscode.window.showWarningMessage('QuantLens: no .onnx file in this workspace.');
    return undefined;
  }
  // ignoreFocusOut: a results page that repaints as the picker opens must not close it.
  const pick = await vscode.window.showQuickPick(found.map((u) => ({ label: vscode.workspace.asRelativePath(u) })), { placeHolder: 'Model to use', ignoreFocusOut: true });
  // By label: a remote extension host may hand back a copy of the item without extra fields.
  return pick && found.find((u) => vscode.workspace.asRelativePath(u) === pick.label);
}

export async function inspectModel(ctx: vscode.ExtensionContext, engine: EngineRunner, log: vscode.OutputChannel, uri: unknown): Promise<ModelSummary | undefined> {
  const model = await pickModel(uri);
  if (!model) return undefined;
  const summary = await engine.run(`QuantLens: inspecting ${vscode.workspace.asRelativePath(model)}`, 'inspect', { model: model.fsPath });
  // A pipeline folder has no summary panel yet: its components go to the log.
  if (summary && 'kind' in summary) {
    log.appendLine(formatPipelineSummary(summary));
    log.show(true);
    return undefined;
  }
  if (summary) ModelSummaryPanel.createOrShow(ctx.extensionUri, summary, log);
  return summary;
}
