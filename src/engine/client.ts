import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { CancelledError, QuantLensError } from '../core/base/errors';
import type { Progress } from '../core/base/jobs';
import { isEngineEvent, type EngineEvent, type EngineRequest, type JobKind, type JobRequests, type JobResults, type PartialOf } from '../protocol/engine';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onProgress?: (p: Progress) => void;
}

export interface EngineClientOptions {
  /** Path of the bundled engine (dist/engine.js). */
  enginePath: string;
  /** Node binary; inside VS Code this is Electron run as Node. */
  execPath?: string;
  /** Extra arguments for Node (e.g. --max-old-space-size). */
  execArgv?: string[];
  /** Seconds a cancelled job may take to stop before the engine is killed. */
  cancelGraceMs?: number;
  onLog?: (line: string) => void;
}

/**
 * Talks to one engine child process; starts it on first use and again after it dies. A crash or kill
 * rejects every job in flight with a clear error; the next job gets a fresh engine.
 */
export class EngineClient {
  private child: ChildProcess | undefined;
  private pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly opts: EngineClientOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private ensure(): ChildProcess {
    if (this.child && this.child.exitCode === null && !this.child.killed) return this.child;
    const child = spawn(this.opts.execPath ?? process.execPath, [...(this.opts.execArgv ?? []), this.opts.enginePath], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    });
    this.child = child;
    readline.createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(line));
    let stderrTail = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderrTail = (stderrTail + d.toString()).slice(-2000);
      this.opts.onLog?.(d.toString());
    });
    child.on('error', (e) => this.failAll(`the QuantLens engine could not start: ${e.message}`));
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      const last = stderrTail.trim().split('\n').pop();
      this.failAll(`the QuantLens engine stopped unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`})${last ? `: ${last}` : ''}`);
    });
    return child;
  }

  private failAll(message: string): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(new QuantLensError(undefined, message, 'engine-crash'));
  }

  private onLine(line: string): void {
    let ev: EngineEvent;
    try {
      const v = JSON.parse(line);
      if (!isEngineEvent(v)) return;
      ev = v;
    } catch {
      this.opts.onLog?.(line);
      return;
    }
    if (ev.type === 'log') return this.opts.onLog?.(ev.message);
    if (ev.type === 'ready' || ev.type === 'started') return;
    const p = this.pending.get(ev.id);
    if (!p) return;
    if (ev.type === 'progress') return p.onProgress?.(ev.progress);
    this.pending.delete(ev.id);
    if (ev.type === 'result') p.resolve(ev.result);
    else if (ev.type === 'cancelled') p.reject(new CancelledError());
    else p.reject(new QuantLensError(undefined, ev.message, ev.errorKind));
  }

  private send(req: EngineRequest): void {
    this.ensure().stdin!.write(JSON.stringify(req) + '\n');
  }

  /** Runs a job in the engine: `(input, options, { onProgress, signal })` like every long job. */
  run<K extends JobKind>(kind: K, req: JobRequests[K], ctx: { onProgress?: (p: Progress<PartialOf<K>>) => void; signal?: AbortSignal } = {}): Promise<JobResults[K]> {
    if (ctx.signal?.aborted) return Promise.reject(new CancelledError());
    const id = this.nextId++;
    return new Promise<JobResults[K]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onProgress: ctx.onProgress as ((p: Progress) => void) | undefined });
      ctx.signal?.addEventListener('abort', () => {
        if (!this.pending.has(id)) return;
        this.send({ type: 'cancel', id });
        const child = this.child;
        // A job stuck in native code cannot see the signal: past the grace period the engine is killed.
        setTimeout(() => {
          if (this.pending.has(id) && child && this.child === child) {
            this.pending.delete(id);
            reject(new CancelledError());
            child.kill('SIGKILL');
          }
        }, this.opts.cancelGraceMs ?? 2000).unref();
      }, { once: true });
      this.send({ type: 'start', id, job: { kind, ...req } as EngineRequest & { type: 'start' } extends { job: infer J } ? J : never });
    });
  }

  dispose(): void {
    const child = this.child;
    this.child = undefined;
    this.pending.clear();
    if (child) {
      child.stdin?.end();
      child.kill();
    }
  }
}
