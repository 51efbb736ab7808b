import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { errorLine, QuantLensError } from '../base/errors';
import { legacySource } from './legacy-source';

export type DevicePreference = 'auto' | 'cpu' | 'cuda';
export type Provider = 'cuda' | 'cpu';

/** A session and the record of which execution provider actually runs it, and why not the preferred one. */
export interface ModelSession {
  session: ort.InferenceSession;
  provider: Provider;
  /** Why CUDA was not used, when it was asked for (auto) but unavailable. */
  fallbackReason?: string;
}

export interface SessionOptions {
  device?: DevicePreference;
  /** Threads for the CPU provider (0: onnxruntime's default). */
  intraOpThreads?: number;
  /** Name for error messages (the model's path when loading from a buffer). */
  label?: string;
  /** Graph optimisation level (default 'all'); large throwaway analysis graphs load faster with 'basic'. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Leave the weights memory-mapped from the external data file (onnxruntime maps page-aligned external
   * initializers on CPU) instead of prepacking copies of them: a large model then runs in reclaimable page
   * cache rather than in the process's own memory, at some cost in MatMul speed.
   */
  mappedWeights?: boolean;
  /**
   * Idle intra-op threads sleep instead of spinning: several sessions timed side by side in one process
   * would otherwise spin against each other's runs on a small machine.
   */
  noSpin?: boolean;
  /**
   * No CPU memory arena (or planned memory pattern): each activation is allocated and freed on its own, so
   * the process holds what is live, not the arena's high-water mark. For large throwaway analysis graphs.
   */
  noArena?: boolean;
  /**
   * The arena without a planned memory pattern: onnxruntime otherwise plans one block for every
   * activation after the first run and allocates it afresh, so the second run pays the page faults again.
   * A variant graph that holds copies beside the model's own tensors (reductions, NCHW copies of blocked
   * layouts) plans a far larger block than it needs at any moment (PaddleOCR det's MinMax variant: 342 MiB
   * peak planned, 225 MiB unplanned, 154 MiB for the model alone) and runs no slower without one.
   */
  noMemPattern?: boolean;
  /**
   * No Q/DQ fusion (onnxruntime's session.disable_quant_qdq): QuantizeLinear/DequantizeLinear run as
   * written, around float kernels, while the rest of the optimisation level applies. For graphs that
   * emulate quantization to measure it: fused, a weight-only copy (DequantizeLinear before a MatMul) ran as
   * an integer kernel that also rounds its activations, which doubled the weights' share of the noise.
   */
  noQdqFusion?: boolean;
  /** onnxruntime's profiler on, writing its JSON under this prefix (endProfiling). */
  profileFilePrefix?: string;
}

/** How an analysis variant's session treats threads, memory and Q/DQ pairs (see SessionOptions). */
export type VariantSessionOptions = Pick<SessionOptions, 'noSpin' | 'noArena' | 'noMemPattern' | 'noQdqFusion'>;

let cudaUnavailable: string | undefined;

/**
 * onnxruntime-node loads the CUDA provider from a library its install step downloads; when that step was
 * skipped the library is absent, and trying would only print a native error. Say so instead.
 */
function cudaLibraryMissing(): string | undefined {
  try {
    const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
    const bin = path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
    const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
    if (!fs.existsSync(path.join(bin, lib))) return `the CUDA provider library (${lib}) is not installed; see the README's "Enabling CUDA"`;
  } catch {
    return undefined;
  }
  return undefined;
}

/** onnxruntime's session options for `opts`, less the execution providers. */
export function ortSessionOptions(opts: SessionOptions): ort.InferenceSession.SessionOptions {
  // onnxruntime's own log lines (warnings, and errors we already turn into one line) stay quiet unless
  // QUANTLENS_DEBUG is set.
  return {
    graphOptimizationLevel: opts.optimization ?? 'all', logSeverityLevel: process.env.QUANTLENS_DEBUG ? 2 : 4,
    ...(opts.intraOpThreads ? { intraOpNumThreads: opts.intraOpThreads } : {}),
    ...(opts.profileFilePrefix ? { enableProfiling: true, profileFilePrefix: opts.profileFilePrefix } : {}),
    ...(opts.noArena ? { enableCpuMemArena: false, enableMemPattern: false } : opts.noMemPattern ? { enableMemPattern: false } : {}),
    ...(opts.mappedWeights || opts.noSpin || opts.noQdqFusion ? { extra: { session: { ...(opts.mappedWeights ? { disable_prepacking: '1' } : {}), ...(opts.noSpin ? { 'intra_op.allow_spinning': '0', 'inter_op.allow_spinning': '0' } : {}), ...(opts.noQdqFusion ? { disable_quant_qdq: '1' } : {}) } } } : {}),
  };
}

/**
 * Whether `device` can only mean the CPU here (asked for, or auto where the CUDA provider's library is not
 * installed), with auto's fallback reason; undefined where CUDA may run.
 */
export function cpuOnly(device: DevicePreference): { fallbackReason?: string } | undefined {
  if (device === 'cpu') return {};
  if (device === 'cuda') return undefined;
  cudaUnavailable ??= cudaLibraryMissing();
  return cudaUnavailable ? { fallbackReason: cudaUnavailable } : undefined;
}

/**
 * Creates an onnxruntime-node session from a path or in-memory bytes. `auto` tries CUDA first and falls
 * back to CPU with the reason recorded; `cuda` fails when CUDA cannot run; `cpu` never tries CUDA.
 */
export async function createSession(model: string | Uint8Array, opts: SessionOptions = {}): Promise<ModelSession> {
  const device = opts.device ?? 'auto';
  const label = opts.label ?? (typeof model === 'string' ? model : 'model');
  const base = ortSessionOptions(opts);
  const open = (providers: string[]) =>
    typeof model === 'string' ? ort.InferenceSession.create(model, { ...base, executionProviders: providers }) : ort.InferenceSession.create(model, { ...base, executionProviders: providers });
  // A file at opset 1-6, which onnxruntime has no kernels for (on any provider): the same model read at
  // opset 7, on the provider asked for.
  const asLegacy = async (): Promise<ModelSession | undefined> => {
    const legacy = typeof model === 'string' ? legacySource(model) : undefined;
    if (!legacy) return undefined;
    try {
      return await createSession(legacy.source, { ...opts, label });
    } finally {
      legacy.cleanup();
    }
  };
  let fallbackReason: string | undefined;
  if (device !== 'cpu' && !cudaUnavailable) cudaUnavailable = cudaLibraryMissing();
  if (device === 'cuda' && cudaUnavailable) throw new QuantLensError(label, `cannot use CUDA: ${cudaUnavailable}`, 'device');
  if (device !== 'cpu' && !cudaUnavailable) {
    let cuda: ort.InferenceSession | undefined;
    try {
      cuda = await open(['cuda']);
    } catch (e) {
      const why = errorLine(e).trim();
      // Not CUDA's fault: an op version below 7 has no kernel anywhere.
      const legacy = /Could not find an implementation for \w+\([1-6]\)/.test(why) ? await asLegacy() : undefined;
      if (legacy) return legacy;
      if (device === 'cuda') throw new QuantLensError(label, `the CUDA execution provider could not run this model: ${why}`, 'device');
      cudaUnavailable = why;
    }
    if (cuda) return { session: tensorOutputsOnly(cuda, label), provider: 'cuda' };
  }
  if (device === 'auto') fallbackReason = cudaUnavailable;
  let session: ort.InferenceSession;
  try {
    session = await open(['cpu']);
  } catch (e) {
    const legacy = await asLegacy();
    if (!legacy) throw new QuantLensError(label, `onnxruntime cannot load the model: ${errorLine(e).trim()}`, 'runtime');
    return legacy;
  }
  return { session: tensorOutputsOnly(session, label), provider: 'cpu', ...(fallbackReason ? { fallbackReason } : {}) };
}

/** The names of a session's tensor outputs (onnxruntime-node returns nothing else). */
export const tensorOutputNames = (session: ort.InferenceSession) => session.outputMetadata.filter((m) => m.isTensor).map((m) => m.name);

/**
 * onnxruntime-node returns tensors only: a model with a sequence or map output (scikit-learn's ZipMap
 * probabilities) fails every run that fetches it ("Non tensor type is temporarily not supported"). Such a
 * session fetches its tensor outputs unless told otherwise, and lists only those.
 */
function tensorOutputsOnly(session: ort.InferenceSession, label: string): ort.InferenceSession {
  const names = tensorOutputNames(session);
  if (names.length === session.outputNames.length) return session;
  if (!names.length) {
    void session.release();
    throw new QuantLensError(label, `has no tensor output (${session.outputNames.join(', ')}: sequences, maps or optionals, which onnxruntime-node cannot return)`, 'runtime');
  }
  const run = session.run.bind(session) as (feeds: ort.InferenceSession.FeedsType, fetches?: readonly string[]) => Promise<ort.InferenceSession.ReturnType>;
  Object.defineProperty(session, 'outputNames', { value: names });
  session.run = ((feeds: ort.InferenceSession.FeedsType, fetches?: readonly string[]) => run(feeds, fetches ?? names)) as typeof session.run;
  return session;
}

export { ort };
