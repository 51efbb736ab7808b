import fs from 'node:fs';
import * as vscode from 'vscode';
import { attributeAt, hoverMarkdown, SensitivityIndex } from './sensitivity-index';

/**
 * Sensitivity on hover in Python training code, from the newest `*.sensitivity.json` in the workspace. The
 * index is built once and kept current by a file watcher: a hover is a map lookup, never a model read.
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
    this.disposables.push(watcher, this.lensChange);
    this.ready = (async () => {
      // Parse only the newest report (a stat each, not a JSON parse each): this runs after activation.
      const files = await vscode.workspace.findFiles('**/*.sensitivity.json', '**/node_modules/**', 100);
      const newest = files.map((f) => ({ f: f.fsPath, t: mtime(f.fsPath) })).sort((a, b) => b.t - a.t);
      for (const { f } of newest) if (this.index.offer(f)) break;
      this.lensChange.fire();
    })();
  }

  async provideHover(doc: vscode.TextDocument, pos: vscode.Position): Promise<vscode.Hover | undefined> {
    if (!vscode.workspace.getConfiguration('quantlens').get<boolean>('hover', true)) return undefined;
    const attr = attributeAt(doc.lineAt(pos.line).text, pos.character);
    if (!attr) return undefined;
    await this.ready;
    const answer = this.index.lookup(attr);
    if (!answer) return undefined;
    const md = new vscode.MarkdownString(hoverMarkdown(answer));
    md.isTrusted = { enabledCommands: ['quantlens.openSensitivityTree'] };
    return new vscode.Hover(md);
  }

  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    if (!vscode.workspace.getConfiguration('quantlens').get<boolean>('codeLens', false)) return [];
    const worst = this.index.worstAttributes(5);
    const lenses: vscode.CodeLens[] = [];
    for (let i = 0; i < doc.lineCount; i++) {
      const m = /self\.([A-Za-z_]\w*)\s*=\s*(?:nn|torch\.nn)\./.exec(doc.lineAt(i).text);
      const w = m ? worst.get(m[1]) : undefined;
      if (!w) continue;
      lenses.push(new vscode.CodeLens(doc.lineAt(i).range, { title: `QuantLens: sensitivity rank ${w.rank} (${w.sensitivityDb.toFixed(1)} dB, ${w.name})`, command: 'quantlens.openSensitivityTree', arguments: [this.index.report, w.name] }));
    }
    return lenses;
  }

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
