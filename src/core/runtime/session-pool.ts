import os from 'node:os';
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { Feeds } from '../calib/data';
import { CancelledError, QuantLensError } from '../base/errors';
import type { Provider } from './session';
import { recordFromWire, recordToWire, type WireTensor } from './wire-tensor';


// The worker only loads a model and runs the samples it was given at start: metrics stay on the main
// thread with the code that defines them. Kept as source text so the bundles need no extra entry file.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
const toT = (w) => new ort.Tensor(w.type, w.data, w.dims);
const samples = workerData.samples.map((s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, toT(v)])));
// Ending a worker while onnxruntime runs in it aborts the whole process, so the pool never terminates
// one: it asks it to close, and the worker leaves once its current run is over.
let busy = Promise.resolve();
parentPort.on('message', (m) => {
  if (m.close) { busy.then(() => parentPort.close()); return; }
  busy = busy.then(() => runOne(m));
});
async function runOne({ id, source }) {
  let session;
  try {
    session = await ort.InferenceSession.create(source, workerData.options);
    // Tensor outputs only: onnxruntime-node cannot return a sequence or a map (see session.ts).
    const fetch = session.outputMetadata.filter((m) => m.isTensor).map((m) => m.name);
    const outputs = [];
    for (const feeds of samples) {
      const out = await session.run(feeds, fetch);
      outputs.push(Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { type: t.type, dims: t.dims, data: t.data }])));
    }
    parentPort.postMessage({ id, outputs });
  } catch (e) {
    parentPort.postMessage({ id, error: String(e && e.message || e).split('\\n')[0] });
  } finally {
    if (session) await session.release().catch(() => {});
  }
}
`;

/** Default worker count: one per core, at most 4 (each variant's session holds a copy of the model). */
export function defaultWorkers(): number {
  // Under Slurm, the task's own CPUs (a shard shares its node with other tasks), not the node's.
  const slurm = Number(process.env.SLURM_CPUS_PER_TASK);
  return Math.max(1, Math.min(4, Number.isInteger(slurm) && slurm > 0 ? slurm : os.availableParallelism?.() ?? os.cpus().length));
}

/**
 * Worker threads that each load a model variant and run the same samples on it, so variants of an
 * end-to-end analysis are measured side by side. Each worker's onnxruntime uses its share of the cores.
 */
export class SessionPool {
  private readonly idle: Worker[] = [];
  private readonly waiting: Array<(w: Worker) => void> = [];
  private readonly pending = new Map<number, { resolve: (o: Array<Record<string, ort.Tensor>>) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private closed = false;
  private closing?: Promise<void>;

  private constructor(private readonly workers: Worker[], private readonly label: string) {
    for (const w of workers) {
      w.on('message', (m: { id: number; outputs?: Array<Record<string, WireTensor>>; error?: string }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        this.release(w);
        if (!p) return;
        if (m.error !== undefined) p.reject(new QuantLensError(this.label, `onnxruntime cannot run a variant: ${m.error}`, 'runtime'));
        else p.resolve(m.outputs!.map(recordFromWire));
      });
      w.on('error', (e) => this.failAll(e));
      this.idle.push(w);
    }
  }

  static create(samples: Feeds[], provider: Provider, size = defaultWorkers(), optimization: 'disabled' | 'basic' | 'extended' | 'all' = 'all', label = 'model'): SessionPool {
    const threads = Math.max(1, Math.floor((os.availableParallelism?.() ?? os.cpus().length) / size));
    const wire = samples.map(recordToWire);
    const options = { executionProviders: [provider], graphOptimizationLevel: optimization, intraOpNumThreads: threads, interOpNumThreads: 1 };
    const ortPath = require.resolve('onnxruntime-node');
    const workers = Array.from({ length: size }, () => new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath, samples: wire, options } }));
    return new SessionPool(workers, label);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Runs every sample on the model at `source` (a path, or encoded bytes) in the next free worker. */
  async run(source: string | Uint8Array, signal?: AbortSignal): Promise<Array<Record<string, ort.Tensor>>> {
    if (signal?.aborted || this.closed) throw new CancelledError();
    const w = await this.acquire();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = () => { this.pending.delete(id); reject(new CancelledError()); };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: (o) => { signal?.removeEventListener('abort', onAbort); resolve(o); },
        reject: (e) => { signal?.removeEventListener('abort', onAbort); reject(e); },
      });
      const copy = typeof source === 'string' ? source : source.slice(); // its own buffer, moved to the worker
      w.postMessage({ id, source: copy }, typeof copy === 'string' ? [] : [copy.buffer as ArrayBuffer]);
    });
  }

  private acquire(): Promise<Worker> {
    const w = this.idle.pop();
    return w ? Promise.resolve(w) : new Promise((r) => this.waiting.push(r));
  }

  private release(w: Worker): void {
    const next = this.waiting.shift();
    if (next) next(w);
    else this.idle.push(w);
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(new QuantLensError(this.label, `a variant worker failed: ${e.message}`, 'runtime'));
    this.pending.clear();
  }

  /** Lets each worker finish the run in hand, then ends it (see WORKER_SOURCE on why not terminate()). */
  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      for (const p of this.pending.values()) p.reject(new CancelledError());
      this.pending.clear();
      this.closing = Promise.all(this.workers.map((w) => new Promise<void>((r) => { w.once('exit', () => r()); w.postMessage({ close: true }); }))).then(() => {});
    }
    return this.closing;
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight, returning results in order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(lanes);
  return out;
}
