import * as vscode from 'vscode';
import { CancelledError, errorLine } from '../core/base/errors';
import { EngineClient } from '../engine/client';
import type { JobKind, JobRequests, JobResults, PartialOf } from '../protocol/engine';

/** Runs engine jobs behind a cancellable progress notification; errors become one-line messages. */
export class EngineRunner implements vscode.Disposable {
  readonly client: EngineClient;

  constructor(context: vscode.ExtensionContext, private readonly log: vscode.OutputChannel) {
    const mb = vscode.workspace.getConfiguration('quantlens').get<number>('engineMemoryMB', 0);
    this.client = new EngineClient({
      enginePath: vscode.Uri.joinPath(context.extensionUri, 'dist', 'engine.js').fsPath,
      execArgv: mb > 0 ? [`--max-old-space-size=${mb}`] : [],
      onLog: (line) => log.append(line.endsWith('\n') ? line : line + '\n'),
    });
  }

  /** Returns the result, or undefined when the user cancelled or the job failed (already reported). */
  async run<K extends JobKind>(title: string, kind: K, req: JobRequests[K], onPartial?: (partial: PartialOf<K>) => void): Promise<JobResults[K] | undefined> {
    return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
      const ac = new AbortController();
      token.onCancellationRequested(() => ac.abort());
      let last = 0;
      try {
        return await this.client.run(kind, req, {
          signal: ac.signal,
          onProgress: (p) => {
            if (p.partial !== undefined) onPartial?.(p.partial);
            const pct = p.fraction !== undefined ? Math.round(p.fraction * 100) : last;
            progress.report({ message: p.message ?? p.stage, increment: Math.max(0, pct - last) });
            last = pct;
          },
        });
      } catch (e) {
        if (e instanceof CancelledError) {
          this.log.appendLine(`${title}: cancelled`);
          return undefined;
        }
        const line = errorLine(e);
        this.log.appendLine(`${title}: ${line}`);
        // An engine crash or any failure: one line, and the log one click away.
        void vscode.window.showErrorMessage(`QuantLens: ${line}`, 'Show log').then((a) => { if (a) this.log.show(true); });
        return undefined;
      }
    });
  }

  dispose(): void {
    this.client.dispose();
  }
}
