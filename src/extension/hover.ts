import fs from 'node:fs';
import * as vscode from 'vscode';
import { assignedAttributes, attributeAt, hoverMarkdown, SensitivityIndex } from './sensitivity-index';

/**
 * Sensitivity on hover in Python training code, from the workspace's `*.sensitivity.json` (each file meets
 * the report of the model its classes build). The index is built once and kept current by a file watcher:
 * a hover is a map lookup, never a model read.
 * With `quantlens.codeLens` on, the most sensitive layers' definitions carry a CodeLens too.
 */
export class SensitivityHover implements vscode.HoverProvider, vscode.CodeLensProvider, vscode.Disposable {
  readonly index = new SensitivityIndex();
  private readonly ready: Promise<void>;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly lensChange = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.lensChange.event;

  constructor() {
    const watcher = vscode.workspace.createFileSystemWatcher('**/*.sensitivity.json');
    const offer = (u: vscode.Uri) => { if (this.index.offer(u.fsPath)) this.lensChange.fire(); };
    watcher.onDidCreate(offer);
    watcher.onDidChange(offer);
    watcher.onDidDelete((u) => { this.index.forget(u.fsPath); this.lensChange.fire(); });
    // Turning quantlens.codeLens on or off shows or hides the lenses at once.
    const config = vscode.workspace.onDidChangeConfiguration((e) => { if (e.affectsConfiguration('quantlens.codeLens')) this.lensChange.fire(); });
    this.disposables.push(watcher, this.lensChange, config);
    this.ready = (async () => {
      // Every report, newest first (an older report of a model already held is skipped after a stat).
      const files = await vscode.workspace.findFiles('**/*.sensitivity.json', '**/node_modules/**', 100);
      const newest = files.map((f) => ({ f: f.fsPath, t: mtime(f.fsPath) })).sort((a, b) => b.t - a.t);
      // One report per turn of the event loop: parsing many reports must not stall the extension host.
      for (const { f } of newest) {
        this.index.offer(f);
        await new Promise((r) => setImmediate(r));
      }
      this.lensChange.fire();
    })();
  }

  async provideHover(doc: vscode.TextDocument, pos: vscode.Position): Promise<vscode.Hover | undefined> {
    if (!vscode.workspace.getConfiguration('quantlens').get<boolean>('hover', true)) return undefined;
    const attr = attributeAt(doc.lineAt(pos.line).text, pos.character);
    if (!attr) return undefined;
    await this.ready;
    const answer = this.index.lookup(attr, this.attributesOf(doc));
    if (!answer) return undefined;
    const md = new vscode.MarkdownString(hoverMarkdown(answer));
    md.isTrusted = { enabledCommands: ['quantlens.openSensitivityTree'] };
    return new vscode.Hover(md);
  }

  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    if (!vscode.workspace.getConfiguration('quantlens').get<boolean>('codeLens', false)) return [];
    const attrs = this.attributesOf(doc);
    const worst = this.index.worstAttributes(5, attrs);
    const lenses: vscode.CodeLens[] = [];
    for (let i = 0; i < doc.lineCount; i++) {
      const m = /self\.([A-Za-z_]\w*)\s*=\s*(?:nn|torch\.nn)\./.exec(doc.lineAt(i).text);
      const w = m ? worst.get(m[1]) : undefined;
      if (!w) continue;
      lenses.push(new vscode.CodeLens(doc.lineAt(i).range, { title: `QuantLens: sensitivity rank ${w.rank} (${w.sensitivityDb.toFixed(1)} dB, ${w.name})`, command: 'quantlens.openSensitivityTree', arguments: [this.index.reportFor(attrs), w.name] }));
    }
    return lenses;
  }

  /** The attributes the file assigns, once per document version: which report it reads. */
  private attributesOf(doc: vscode.TextDocument): string[] {
    const key = `${doc.uri.toString()}@${doc.version}`;
    if (this.attrs?.key !== key) this.attrs = { key, names: assignedAttributes(doc.getText()) };
    return this.attrs.names;
  }

  private attrs?: { key: string; names: string[] };

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

function mtime(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}
