import * as vscode from 'vscode';
import { isFromResultsView, type FromResultsView, type ResultsKind, type ResultsState, type ToResultsView } from '../protocol/results-view';
import type { SweepPoint } from '../core/prune/sweep';
import { webviewHtml } from './webview-html';

const TITLES: Record<ResultsKind, string> = { quantize: 'Quantization', sensitivity: 'Sensitivity', sweep: 'Pruning sweep', prune: 'Pruning' };

/**
 * One results panel per kind (quantize, sensitivity, sweep, prune), opened in the column beside the
 * training code; its state survives reloads through the serializer. Messages from the page are checked
 * (isFromResultsView) and handed to `onMessage`; anything else is dropped and logged.
 */
export class ResultsPanel {
  static readonly viewType = 'quantlens.results';
  private static readonly open = new Map<ResultsKind, ResultsPanel>();
  /** Set by the extension: what the panels' buttons do. */
  static onMessage: (panel: ResultsPanel, msg: FromResultsView) => void = () => undefined;

  static show(extensionUri: vscode.Uri, log: vscode.OutputChannel, state: ResultsState, column: vscode.ViewColumn): ResultsPanel {
    const kind = state.data.kind;
    let p = ResultsPanel.open.get(kind);
    if (p) p.panel.reveal(column, true);
    else {
      const panel = vscode.window.createWebviewPanel(ResultsPanel.viewType, `QuantLens: ${TITLES[kind]}`, { viewColumn: column, preserveFocus: true }, ResultsPanel.options(extensionUri));
      p = new ResultsPanel(panel, extensionUri, log);
    }
    p.setState(state);
    return p;
  }

  static get(kind: ResultsKind): ResultsPanel | undefined {
    return ResultsPanel.open.get(kind);
  }

  static options(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return { enableScripts: true, retainContextWhenHidden: false, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')] };
  }

  static revive(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, log: vscode.OutputChannel, state: ResultsState | undefined): void {
    const p = new ResultsPanel(panel, extensionUri, log);
    if (state?.data) p.setState(state);
  }

  state?: ResultsState;

  private constructor(readonly panel: vscode.WebviewPanel, extensionUri: vscode.Uri, private readonly log: vscode.OutputChannel) {
    panel.webview.options = ResultsPanel.options(extensionUri);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, { title: 'QuantLens', script: 'dist/webview/results.js', styles: ['media/panel.css', 'dist/webview/uPlot.min.css'] });
    panel.onDidDispose(() => {
      for (const [k, v] of ResultsPanel.open) if (v === this) ResultsPanel.open.delete(k);
    });
    panel.webview.onDidReceiveMessage((msg: unknown) => {
      if (!isFromResultsView(msg)) {
        this.log.appendLine(`dropped a malformed message from a results view: ${JSON.stringify(msg)?.slice(0, 160)}`);
        return;
      }
      if (msg.type === 'ready') {
        if (this.state) this.post({ type: 'show', state: this.state });
        return;
      }
      ResultsPanel.onMessage(this, msg);
    });
  }

  setState(state: ResultsState): void {
    this.state = state;
    ResultsPanel.open.set(state.data.kind, this);
    this.panel.title = `QuantLens: ${TITLES[state.data.kind]}`;
    this.post({ type: 'show', state });
  }

  addPoint(point: SweepPoint): void {
    if (this.state?.data.kind === 'sweep') this.state.data.view.points = [...this.state.data.view.points.filter((p) => p.sparsity !== point.sparsity), point].sort((a, b) => a.sparsity - b.sparsity);
    this.post({ type: 'point', point });
  }

  sweepDone(): void {
    if (this.state?.data.kind === 'sweep') this.state.data.view.done = true;
    this.post({ type: 'sweepDone' });
  }

  focus(layer: string): void {
    if (this.state) this.state.focus = layer;
    this.post({ type: 'focus', layer });
  }

  post(m: ToResultsView): void {
    void this.panel.webview.postMessage(m);
  }
}
