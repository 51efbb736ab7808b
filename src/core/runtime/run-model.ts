import { CancelledError, errorLine, QuantLensError } from '../base/errors';
import type { JobContext } from '../base/jobs';
import { loadModel } from '../onnx/model-io';
import { isTensorValue } from '../onnx/value-type';
import { tensorValues } from '../eval/metrics';
import { randomFeeds } from '../calib/random-feeds';
import { openCalibration } from '../calib/data';
import { checkExpected, expectedOutputsFolder, type ExpectedCheck } from '../calib/onnx-test-data';
import type { GraphProto } from '../onnx/proto';
import { checkInputShapes, chosenDims, type InputShapes } from '../calib/input-shapes';
import { createSession, ort, type DevicePreference, type Provider } from './session';

export interface OutputStats {
  type: string;
  shape: number[];
  mean: number;
  std: number;
  min: number;
  max: number;
  finite: boolean;
  /** A string output's first values (its mean and range, as numbers, say nothing: 0). */
  strings?: string[];
}

/** `quantlens run`: one inference in onnxruntime, with which provider ran it and what came out. */
export interface RunReport {
  model: string;
  device: Provider;
  fallbackReason?: string;
  /** Seeded random inputs, or the first sample of `--data`. */
  inputs: 'random' | 'data';
  /** The shape each input ran with, and what was chosen for its dynamic dimensions. */
  inputShapes: Record<string, number[]>;
  chosenDims: string[];
  warning: string;
  runs: number;
  latencyMs: number;
  outputs: Record<string, OutputStats>;
  /** Outputs onnxruntime-node cannot return (sequences, maps, optionals): not fetched. */
  notTensors?: string[];
  /** `--data` an ONNX test case: the outputs against its expected ones. */
  expected?: ExpectedCheck;
}

export interface RunOptions {
  device?: DevicePreference;
  runs?: number;
  seed?: number;
  /** Shapes for inputs with dynamic dimensions (`--input-shape`). */
  inputShapes?: InputShapes;
  /** Run on the first sample of this data (see openCalibration) instead of random inputs. */
  data?: string;
}

function firstSample(data: string, graph: GraphProto, inputShapes?: InputShapes): Record<string, ort.Tensor> {
  const [feeds] = openCalibration(data, graph, { maxSamples: 1, inputShapes }).samples();
  if (!feeds) throw new QuantLensError(data, 'gave no sample to run on');
  return feeds;
}

export function statsOf(t: ort.Tensor): OutputStats {
  if (t.type === 'string') return { type: t.type, shape: [...t.dims], mean: 0, std: 0, min: 0, max: 0, finite: true, strings: (t.data as unknown as string[]).slice(0, 4) };
  const d = tensorValues(t);
  let sum = 0, sq = 0, min = Infinity, max = -Infinity, finite = true;
  for (let i = 0; i < d.length; i++) {
    const v = Number(d[i]);
    if (!Number.isFinite(v)) { finite = false; continue; }
    sum += v; sq += v * v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = d.length ? sum / d.length : 0;
  return { type: t.type, shape: [...t.dims], mean, std: Math.sqrt(Math.max(0, (d.length ? sq / d.length : 0) - mean * mean)), min, max, finite };
}

/** Loads the model (validating it first, for a clean error), runs it on seeded random inputs, reports. */
export async function runModel(file: string, opts: RunOptions = {}, ctx: JobContext = {}): Promise<RunReport> {
  const loaded = loadModel(file);
  checkInputShapes(loaded.model.graph!, opts.inputShapes, file);
  ctx.onProgress?.({ stage: 'session', fraction: 0.1 });
  const { session, provider, fallbackReason } = await createSession(file, { device: opts.device });
  try {
    const feeds = opts.data ? firstSample(opts.data, loaded.model.graph!, opts.inputShapes) : randomFeeds(loaded.model.graph!, { seed: opts.seed, shapes: opts.inputShapes });
    const inputShapes = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.dims.map(Number)]));
    const runs = Math.max(1, opts.runs ?? 3);
    let out: ort.InferenceSession.ReturnType = {};
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      if (ctx.signal?.aborted) throw new CancelledError();
      const t0 = performance.now();
      try {
        out = await session.run(feeds);
      } catch (e) {
        throw new QuantLensError(file, `onnxruntime failed to run the model: ${errorLine(e)}`, 'runtime');
      }
      times.push(performance.now() - t0);
      ctx.onProgress?.({ stage: 'run', fraction: 0.1 + (0.9 * (i + 1)) / runs });
    }
    times.sort((a, b) => a - b);
    const outputs: Record<string, OutputStats> = {};
    for (const [name, v] of Object.entries(out)) if (v instanceof ort.Tensor) outputs[name] = statsOf(v);
    const notTensors = (loaded.model.graph!.output ?? []).filter((v) => !isTensorValue(v)).map((v) => v.name ?? '');
    const expectedIn = opts.data ? expectedOutputsFolder(opts.data) : undefined;
    return {
      model: file, device: provider, ...(fallbackReason ? { fallbackReason } : {}),
      inputs: opts.data ? 'data' : 'random', inputShapes, chosenDims: chosenDims(loaded.model.graph!, inputShapes),
      warning: opts.data ? `inputs: the first sample of ${opts.data}` : 'inputs are seeded random data, not real samples',
      runs, latencyMs: times[Math.floor(times.length / 2)], outputs,
      ...(notTensors.length ? { notTensors } : {}),
      ...(expectedIn ? { expected: checkExpected(expectedIn, (loaded.model.graph!.output ?? []).filter(isTensorValue), out as Record<string, ort.Tensor>) } : {}),
    };
  } finally {
    await session.release();
  }
}
