import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { LoadedModel } from '../onnx/model-io';
import type { ModelProto } from '../onnx/proto';
import { QuantLensError } from '../base/errors';
import { pinInputs, pinnedVariantSession, type VariantRunner } from './pinned-session';
import { stageVariant } from './staged-copy';
import { feedsForWorker, recordFromWire, type WireTensor } from './wire-tensor';
import { cpuOnly, ortSessionOptions, type DevicePreference, type SessionOptions, type VariantSessionOptions } from './session';


// Kept as source text so the bundles need no extra entry file (as session-pool's worker). One message at a
// time: a run waits for the open before it, and close waits for the run in hand (ending a worker while
// onnxruntime runs in it aborts the whole process).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
const sessions = new Map();
let busy = Promise.resolve();
parentPort.on('message', (m) => { busy = busy.then(() => handle(m)); });
const first = (e) => String(e && e.message || e).split('\\n')[0];
async function handle(m) {
  if (m.close) {
    for (const s of sessions.values()) await s.release().catch(() => {});
    parentPort.close();
    return;
  }
  try {
    if (m.open) {
      sessions.set(m.key, await ort.InferenceSession.create(m.open, m.options));
      parentPort.postMessage({ id: m.id });
      return;
    }
    const feeds = Object.fromEntries(Object.entries(m.feeds).map(([k, w]) => [k, new ort.Tensor(w.type, w.data, w.dims)]));
    const out = await sessions.get(m.key).run(feeds, m.fetch);
    const wire = Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { type: t.type, dims: t.dims, data: t.data }]));
    const moved = Object.values(wire).map((w) => w.data.buffer).filter((b) => b instanceof ArrayBuffer);
    parentPort.postMessage({ id: m.id, outputs: wire }, [...new Set(moved)]);
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: first(e) });
  }
}
`;

/**
 * Elements in a sample from which a pass runs its session in a worker (a 256x256 RGB image). Making such
 * a sample (decoding, resizing, drawing random values) is what a run can hide; below it a worker's start
 * and its sleeping threads cost more than they hide (a BERT-like encoder's histogram pass, 6 samples,
 * alternated: 0.23-0.43 s here against 0.29-0.48 s in a worker; the fixtures' whole passes take 50-100 ms).
 */
export const THREADED_SAMPLE_ELEMENTS = 3 * 256 * 256;

/**
 * Samples from which a pass runs its session in a worker: over fewer, what the overlap hides hardly pays
 * for the worker's start, and its thread's own memory raised peak RSS (local sensitivity on PaddleOCR det
 * 320x640, whose MinMax pass takes 4 samples: 275 -> 316 MiB, the bench's median of three).
 */
export const THREADED_MIN_SAMPLES = 8;

/** Whether a pass over `count` samples like `first` runs its session in a worker (see THREADED_SAMPLE_ELEMENTS, THREADED_MIN_SAMPLES). */
export function wantsWorker(first: Record<string, ort.Tensor>, count: number): boolean {
  return count >= THREADED_MIN_SAMPLES && Object.values(first).reduce((a, t) => a + t.size, 0) >= THREADED_SAMPLE_ELEMENTS;
}

/**
 * A worker thread for one variant's sessions (see threadedVariantSession), started ahead of them: a
 * worker and onnxruntime's module in it take 36-51 ms to come up here, which then overlaps the caller's
 * own set-up (the variant's construction, its encoding). Undefined where CUDA may run, where no thread can
 * be started, or with QUANTLENS_NO_SESSION_WORKER set: the caller uses pinnedVariantSession.
 */
export function startSessionWorker(device: DevicePreference, label: string): SessionWorker | undefined {
  const cpu = cpuOnly(device);
  if (!cpu || process.env.QUANTLENS_NO_SESSION_WORKER) return undefined;
  try {
    return new SessionWorker(label, cpu.fallbackReason);
  } catch {
    return undefined; // no thread to be had (a resource limit): the main thread runs it, as before
  }
}

export class SessionWorker {
  private readonly worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath: require.resolve('onnxruntime-node') } });
  private readonly pending = new Map<number, { resolve: (o: Record<string, WireTensor>) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failed?: Error;
  private exited = false;
  private closed?: Promise<void>;
  // Staged files stay until close, as sessionForVariant's (onnxruntime may map external data from them).
  private readonly cleanups: Array<() => void> = [];

  constructor(private readonly label: string, readonly fallbackReason?: string) {
    this.worker.on('message', (m: { id: number; outputs?: Record<string, WireTensor>; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error !== undefined) p?.reject(new QuantLensError(label, `onnxruntime cannot run a variant: ${m.error}`, 'runtime'));
      else p?.resolve(m.outputs ?? {});
    });
    this.worker.on('error', (e) => this.failAll(new QuantLensError(label, `a session worker failed: ${e.message}`, 'runtime')));
    this.worker.on('exit', () => { this.exited = true; this.failAll(new QuantLensError(label, 'the session worker ended', 'runtime')); });
  }

  private failAll(e: Error): void {
    this.failed ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private send(message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Record<string, WireTensor>> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  /** Loads `variant` (staged as sessionForVariant stages it) as the session named `key`. */
  async open(key: string, variant: ModelProto, loaded: LoadedModel, options: ort.InferenceSession.SessionOptions): Promise<void> {
    const staged = stageVariant(variant, loaded);
    this.cleanups.push(staged.cleanup);
    // Moved, not copied (a large model's bytes would be twice in memory), unless they share a buffer
    // (a small encoding can sit in Node's pool).
    const src = staged.source;
    const own = typeof src !== 'string' && src.byteOffset === 0 && src.byteLength === src.buffer.byteLength;
    await this.send({ open: src, key, options }, own ? [src.buffer as ArrayBuffer] : []).catch((e: unknown) => {
      throw e instanceof QuantLensError ? new QuantLensError(this.label, e.message.replace('cannot run a variant', 'cannot load the model'), 'runtime') : e;
    });
  }

  /** Runs the session named `key`; the feeds are copied to the worker (see feedsForWorker), the outputs moved back. */
  async run(key: string, feeds: Record<string, ort.Tensor>, fetch?: string[]): Promise<Record<string, ort.Tensor>> {
    const wire = feedsForWorker(feeds);
    return recordFromWire(await this.send({ key, feeds: wire.feeds, fetch }, wire.transfer));
  }

  /** Lets the run in hand finish, releases the sessions and ends the worker. */
  close(): Promise<void> {
    return (this.closed ??= new Promise<void>((r) => {
      const done = () => { for (const c of this.cleanups) c(); r(); };
      if (this.exited) return done();
      this.worker.once('exit', done);
      this.worker.postMessage({ close: true });
    }));
  }
}

/**
 * pinnedVariantSession's session in a worker thread, for a loop with work of its own between runs (binning
 * one sample's values, making the next sample): onnxruntime-node runs a session on the thread that calls
 * it, so on the main thread nothing overlaps a run. Idle intra-op threads sleep rather than spin, so the
 * main thread's work gets the cores the run leaves (PaddleOCR det 320x640, 16 samples with 25 ms of
 * other work each, scratch: 1.47-1.64 s on the main thread, 1.13-1.22 s overlapped). Closes the worker
 * when the session cannot load, and on release.
 */
export async function threadedVariantSession(
  worker: SessionWorker, model: ModelProto, loaded: LoadedModel, first: Record<string, ort.Tensor>,
  optimization?: SessionOptions['optimization'], opts: VariantSessionOptions = {},
): Promise<VariantRunner> {
  const options = { ...ortSessionOptions({ optimization, ...opts, noSpin: true, ...(loaded.externalFiles.length ? { mappedWeights: true } : {}) }), executionProviders: ['cpu'] };
  try {
    await worker.open('pinned', pinInputs(model, first), loaded, options);
  } catch (e) {
    await worker.close();
    throw e;
  }
  // As pinnedVariantSession: samples of another shape run on a session with the model's own dimensions.
  const pinnedDims = Object.entries(first).map(([k, t]) => [k, t.dims.join('x')] as const);
  const same = (feeds: Record<string, ort.Tensor>) => pinnedDims.every(([k, d]) => feeds[k]?.dims.join('x') === d);
  let other: Promise<void> | undefined;
  return {
    provider: 'cpu', ...(worker.fallbackReason ? { fallbackReason: worker.fallbackReason } : {}),
    run: async (feeds, fetch) => {
      if (same(feeds)) return worker.run('pinned', feeds, fetch);
      await (other ??= worker.open('other', model, loaded, options));
      return worker.run('other', feeds, fetch);
    },
    release: () => worker.close(),
  };
}

/** A variant's runner: in `worker` where there is one (see startSessionWorker), else pinnedVariantSession's on this thread. */
export function variantRunner(
  worker: SessionWorker | undefined, model: ModelProto, loaded: LoadedModel, device: DevicePreference, first: Record<string, ort.Tensor>,
  optimization?: SessionOptions['optimization'], opts: VariantSessionOptions = {},
): Promise<VariantRunner> {
  return worker ? threadedVariantSession(worker, model, loaded, first, optimization, opts) : pinnedVariantSession(model, loaded, device, first, optimization, opts);
}
