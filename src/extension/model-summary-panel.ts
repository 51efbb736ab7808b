import * as vscode from 'vscode';
import type { ModelSummary } from '../core/inspect';
import { isFromModelSummaryView, type ModelSummaryState, type ToModelSummaryView } from '../protocol/model-summary-view';
import { webviewHtml } from './webview-html';

/** The model summary panel (operators, parameters, inputs/outputs) of `QuantLens: Inspect model`. */
export class ModelSummaryPanel {
  static readonly viewType = 'quantlens.modelSummary';
  private static current: ModelSummaryPanel | undefined;

  static createOrShow(extensionUri: vscode.Uri, summary: ModelSummary, log: vscode.OutputChannel): ModelSummaryPanel {
    const column = vscode.window.activeTextEditor ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active;
    if (ModelSummaryPanel.current) {
      ModelSummaryPanel.current.panel.reveal(column);
    } else {
      const panel = vscode.window.createWebviewPanel(ModelSummaryPanel.viewType, 'QuantLens: Model', column, ModelSummaryPanel.options(extensionUri));
      ModelSummaryPanel.current = new ModelSummaryPanel(panel, extensionUri, log);
    }
    ModelSummaryPanel.current.show(summary);
    return ModelSummaryPanel.current;
  }

  static options(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')] };
  }

  /** Restores a panel after a reload; the webview brings its own state back through getState. */
  static revive(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, log: vscode.OutputChannel, state: ModelSummaryState | undefined): void {
    ModelSummaryPanel.current = new ModelSummaryPanel(panel, extensionUri, log);
    if (state?.summary) ModelSummaryPanel.current.show(state.summary);
  }

  private summary: ModelSummary | undefined;

  private constructor(readonly panel: vscode.WebviewPanel, extensionUri: vscode.Uri, private readonly log: vscode.OutputChannel) {
    panel.webview.options = ModelSummaryPanel.options(extensionUri);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, { title: 'QuantLens: Model', script: 'dist/webview/model-summary.js' });
    panel.onDidDispose(() => {
      if (ModelSummaryPanel.current === this) ModelSummaryPanel.current = undefined;
    });
    panel.webview.onDidReceiveMessage((msg: unknown) => {
      if (!isFromModelSummaryView(msg)) {
        this.log.appendLine(`dropped a malformed message from the model summary view: ${JSON.stringify(msg)?.slice(0, 120)}`);
        return;
      }
      if (msg.type === 'ready' && this.summary) this.post({ type: 'show', summary: this.summary });
    });
  }

  private post(m: ToModelSummaryView): void {
    void this.panel.webview.postMessage(m);
  }

  show(summary: ModelSummary): void {
    this.summary = summary;
    this.panel.title = `QuantLens: ${summary.file.split(/[\\/]/).pop()}`;
    this.post({ type: 'show', summary });
  }
}
