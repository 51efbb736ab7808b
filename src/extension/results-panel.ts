import path from 'node:path';
import * as vscode from 'vscode';
import { isFromResultsView, upgradeResultsState, type FromResultsView, type ResultsSections, type ResultsState, type ResultsTab, type ToResultsView } from '../protocol/results-view';
import type { SweepPoint } from '../core/prune/sweep';
import { webviewHtml } from './webview-html';

/** A feature's handler for the page's messages: true when it took the message. */
export type ResultsMessageHandler = (panel: ResultsPanel, msg: FromResultsView) => boolean;

const keyOf = (model: string) => path.resolve(model);

/**
 * One results panel per model (file or pipeline folder), with a tab per view, opened in the column beside
 * the training code; quantize, sensitivity, sweep and prune each add their section to it. Its state
 * survives reloads through the serializer. Messages from the page are checked (isFromResultsView) and
 * offered to the features' handlers (each feature's controller registers one); anything else is logged.
 */
export class ResultsPanel {
  static readonly viewType = 'quantlens.results';
  private static readonly open = new Map<string, ResultsPanel>();
  private static readonly handlers: ResultsMessageHandler[] = [];

  /** A feature's controller takes the messages it owns. */
  static route(handler: ResultsMessageHandler): vscode.Disposable {
    ResultsPanel.handlers.push(handler);
    return new vscode.Disposable(() => ResultsPanel.handlers.splice(ResultsPanel.handlers.indexOf(handler), 1));
  }

  /** Puts `sections` into the model's panel (opening it beside the code if need be) and shows `tab`. */
  static show(extensionUri: vscode.Uri, log: vscode.OutputChannel, model: string, sections: ResultsSections, opts: { tab: ResultsTab; column: vscode.ViewColumn; focus?: string }): ResultsPanel {
    let p = ResultsPanel.open.get(keyOf(model));
    if (p) p.panel.reveal(opts.column, true);
    else {
      const panel = vscode.window.createWebviewPanel(ResultsPanel.viewType, ResultsPanel.title(model), { viewColumn: opts.column, preserveFocus: true }, ResultsPanel.options(extensionUri));
      p = new ResultsPanel(panel, extensionUri, log);
    }
    const prev = p.state?.model && keyOf(p.state.model) === keyOf(model) ? p.state.sections : {};
    p.setState({ model, sections: { ...prev, ...sections }, tab: opts.tab, ...(opts.focus ? { focus: opts.focus } : {}) });
    return p;
  }

  /** The open panel of `model`, if any. */
  static of(model: string): ResultsPanel | undefined {
    return ResultsPanel.open.get(keyOf(model));
  }

  static title(model: string): string {
    return `QuantLens results: ${path.basename(model)}`;
  }

  static options(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return { enableScripts: true, retainContextWhenHidden: false, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')] };
  }

  static revive(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, log: vscode.OutputChannel, saved: unknown): void {
    const p = new ResultsPanel(panel, extensionUri, log);
    const state = upgradeResultsState(saved);
    if (state) p.setState(state);
  }

  state?: ResultsState;

  private constructor(readonly panel: vscode.WebviewPanel, extensionUri: vscode.Uri, private readonly log: vscode.OutputChannel) {
    panel.webview.options = ResultsPanel.options(extensionUri);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, { title: 'QuantLens', script: 'dist/webview/results.js', styles: ['dist/webview/codicon.css', 'media/panel.css', 'dist/webview/uPlot.min.css'] });
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
      } else if (msg.type === 'tab') {
        if (this.state) this.state.tab = msg.tab;
      } else if (!ResultsPanel.handlers.some((h) => h(this, msg))) this.log.appendLine(`no feature took the results view's '${msg.type}' message`);
    });
  }

  setState(state: ResultsState): void {
    this.state = state;
    ResultsPanel.open.set(keyOf(state.model), this);
    this.panel.title = ResultsPanel.title(state.model);
    this.post({ type: 'show', state });
  }

  addPoint(point: SweepPoint): void {
    const v = this.state?.sections.sweep;
    if (v) v.points = [...v.points.filter((p) => p.sparsity !== point.sparsity), point].sort((a, b) => a.sparsity - b.sparsity);
    this.post({ type: 'point', point });
  }

  sweepDone(baseline?: NonNullable<ResultsSections['sweep']>['baseline']): void {
    const v = this.state?.sections.sweep;
    if (v) {
      v.done = true;
      if (baseline) v.baseline = baseline;
    }
    // The float model's numbers arrive with the end of the sweep: the chart draws them at sparsity 0.
    this.post({ type: 'sweepDone', ...(baseline ? { baseline } : {}) });
  }

  focus(layer: string): void {
    if (this.state) {
      this.state.focus = layer;
      this.state.tab = 'sensitivity';
    }
    this.post({ type: 'focus', layer });
  }

  post(m: ToResultsView): void {
    void this.panel.webview.postMessage(m);
  }
}
