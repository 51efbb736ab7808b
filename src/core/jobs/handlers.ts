import { CancelledError, QuantLensError, errorLine } from '../base/errors';
import type { JobContext } from '../base/jobs';
import { summarizeModel } from '../inspect';
import { loadModel } from '../onnx/model-io';
import { writeFixture } from './fixture';
import { runModel } from '../runtime/run-model';
import { compareModels } from '../compare';
import { comparePipelines } from '../pipeline/compare';
import { quantizePipeline } from './quantize-pipeline';
import { summarizePipeline } from '../pipeline/summary';
import { analyzePipelineSensitivity } from './pipeline-sensitivity';
import fs from 'node:fs';
import { randomShapeHint } from '../calib/shape-hint';
import { fitRandomShapes } from './fit-random-shapes';
import { createSession, type DevicePreference } from '../runtime/session';

const isFolder = (p: string) => fs.existsSync(p) && fs.statSync(p).isDirectory();

/** A pipeline's sensitivity: its components on what generation feeds them, in one tree. */
function pipelineSensitivity(req: JobRequests['sensitivity'], ctx: JobContext<never>) {
  const o = req.options ?? {};
  if (!o.calibration || o.calibration.startsWith('random:')) throw new QuantLensError(req.model, 'a pipeline is measured on what it generates from: --calibration DIR of images (pixel_values_N.npy) and prompts (input_ids.npy or prompts.json)', 'usage');
  return analyzePipelineSensitivity(req.model, { calibration: o.calibration, samples: o.maxSamples, device: o.device, recipe: o.recipe, output: o.output }, ctx);
}

/** A folder is a pipeline: each component by the default recipe, calibrated and judged by generation. */
function quantizeFolder(req: JobRequests['quantize'], ctx: JobContext<never>) {
  const o = req.options ?? {};
  const scheme = (['mode', 'bits', 'algorithm', 'exclude'] as const).find((k) => o[k] !== undefined && !(Array.isArray(o[k]) && !(o[k] as unknown[]).length));
  if (scheme) throw new QuantLensError(req.model, `a pipeline's schemes come from its recipe, not --${scheme}: --recipe FILE with vision.**, embedding.**, decoder.** rules (default: vision static INT8 with the projector float, embeddings INT8, decoder INT4 GPTQ)`, 'usage');
  if (!o.calibration || o.calibration.startsWith('random:')) throw new QuantLensError(req.model, 'a pipeline is calibrated by generation: --calibration DIR of images (pixel_values_N.npy) and prompts (input_ids.npy or prompts.json)', 'usage');
  return quantizePipeline(req.model, req.output, { calibration: o.calibration, evaluation: o.evalData, samples: o.maxSamples, device: o.device, recipe: o.recipe }, ctx);
}
import { quantizeModel } from './quantize-model';
import { analyzeSensitivity } from '../sensitivity/analyze';
import { buildQatPlan } from '../qat/plan';
import { pruneModel } from '../prune/prune-model';
import { sweepModel } from '../prune/sweep';
import { mergeParts } from './merge-parts';
import type { JobKind, JobRequest, JobRequests, JobResults, PartialOf } from './requests';

type Handler<K extends JobKind> = (req: JobRequests[K], ctx: JobContext<PartialOf<K>>) => Promise<JobResults[K]>;

/** One handler per job kind: the CLI and the engine both dispatch here. */
export const JOB_HANDLERS: { [K in JobKind]: Handler<K> } = {
  inspect: async (req) => (isFolder(req.model) ? summarizePipeline(req.model) : summarizeModel(loadModel(req.model))),
  run: (req, ctx) => runModel(req.model, { device: req.device, runs: req.runs, inputShapes: req.inputShapes, data: req.data }, ctx),
  fixture: async (req) => writeFixture(req.name, req.output),
  quantize: (req, ctx) => (isFolder(req.model) ? quantizeFolder(req, ctx) : quantizeModel(req.model, req.output, req.options ?? {}, ctx)),
  // Two folders are two pipelines: judged by what they generate.
  compare: (req, ctx) => (isFolder(req.reference) && isFolder(req.candidate) ? comparePipelines(req.reference, req.candidate, req.options ?? {}) : compareModels(req.reference, req.candidate, req.options ?? {}, ctx)),
  sensitivity: (req, ctx) => (isFolder(req.model) ? pipelineSensitivity(req, ctx) : analyzeSensitivity(req.model, req.options ?? {}, ctx)),
  'qat-plan': (req, ctx) => buildQatPlan(req.model, req.output, req.options ?? {}, ctx),
  prune: (req, ctx) => pruneModel(req.model, req.output, req.options ?? {}, ctx, { masks: req.masks }),
  sweep: (req, ctx) => sweepModel(req.model, req.sweep, req.options ?? {}, ctx),
  merge: async (req) => mergeParts(req.parts, req.output),
  async sleep(req, ctx) {
    const steps = Math.max(1, Math.ceil(req.ms / 50));
    for (let i = 0; i < steps; i++) {
      if (ctx.signal?.aborted) throw new CancelledError();
      await new Promise((r) => setTimeout(r, req.ms / steps));
      ctx.onProgress?.({ stage: 'sleep', fraction: (i + 1) / steps });
    }
    return { sleptMs: req.ms };
  },
};

/** The job kinds, from the handler table. */
export const JOB_KINDS = Object.keys(JOB_HANDLERS) as JobKind[];

/** Runs one job by its kind. */
export function runJob<K extends JobKind>(kind: K, req: JobRequests[K], ctx: JobContext<PartialOf<K>> = {}): Promise<JobResults[K]> {
  return (JOB_HANDLERS[kind] as Handler<K>)(req, ctx);
}

/**
 * Runs a request as the engine receives it ({kind, ...fields}). A job that failed in onnxruntime on random
 * inputs too short for the model runs once more at lengths it takes (see fitRandomShapes), and says so. An
 * error that does not name a file (onnxruntime's own, a bug, or ours raised where the file is not known)
 * names the model it happened on; the original stays as its cause.
 */
export async function runRequest(job: JobRequest, ctx: JobContext = {}): Promise<unknown> {
  const dispatch = (j: JobRequest) => (JOB_HANDLERS[j.kind] as (r: JobRequest, c: JobContext) => Promise<unknown>)(j, ctx);
  try {
    return await dispatch(job);
  } catch (e) {
    const sizes = fromOnnxruntime(e) && (await mayBeTheSizes(job, e));
    const refit = sizes ? await refitted(job) : undefined;
    if (!refit) throw oneLine(job, e, sizes);
    ctx.onProgress?.({ stage: 'inputs', message: refit.note });
    const result = await dispatch(refit.job).catch((again: unknown) => { throw oneLine(refit.job, again, fromOnnxruntime(again)); });
    const warnings = (result as { warnings?: unknown }).warnings;
    if (Array.isArray(warnings)) warnings.unshift(refit.note);
    return result;
  }
}

/** onnxruntime's failures: ours of kind 'runtime', and foreign errors (not a cancellation). */
const fromOnnxruntime = (e: unknown) => !(e instanceof CancelledError) && (!(e instanceof QuantLensError) || e.kind === 'runtime');

/**
 * Whether an onnxruntime failure may come from the sizes random inputs chose: not when the model itself
 * does not load, unpinned (a broken export: Emformer's, whose error read as a size problem with the hint).
 * A copy pinned to sizes too small can fail while loading too (a shape inference error), so a load
 * failure counts against the model only if the model alone fails to load as well.
 */
async function mayBeTheSizes(job: JobRequest, e: unknown): Promise<boolean> {
  if (!/onnxruntime cannot load the model/.test(e instanceof Error ? e.message : String(e))) return true;
  const random = randomData(job);
  if (!random) return false;
  const s = await createSession(random.model, { device: 'cpu', optimization: 'disabled' }).catch(() => undefined);
  await s?.session.release();
  return s !== undefined;
}

/** The error as one line naming the model; on random inputs (`sizes`: where they may be the cause), with the sizes they had. */
function oneLine(job: JobRequest, e: unknown, sizes: boolean): unknown {
  const file = 'model' in job ? job.model : job.kind === 'compare' ? job.candidate : undefined;
  if (e instanceof CancelledError || !file) return e;
  const hint = sizes ? randomDataHint(job) : undefined;
  const detail = (d: string) => (hint ? `${d} (${hint})` : d);
  if (e instanceof QuantLensError && (e.file || e.kind === 'usage')) return hint ? Object.assign(new QuantLensError(e.file, detail(e.detail), e.kind), { cause: e }) : e;
  if (e instanceof QuantLensError) return Object.assign(new QuantLensError(file, detail(e.detail), e.kind), { cause: e });
  const line = errorLine(e);
  return Object.assign(new QuantLensError(line.includes(file) ? undefined : file, detail(line), 'runtime'), { cause: e });
}

/** The job at random-input lengths the model takes, where they differ from those it failed at (see fitRandomShapes). */
async function refitted(job: JobRequest): Promise<{ job: JobRequest; note: string } | undefined> {
  const random = randomData(job);
  if (!random) return undefined;
  const fit = await fitRandomShapes(random.model, random.given, ('device' in job ? job.device : (job as { options?: { device?: DevicePreference } }).options?.device) ?? 'auto').catch(() => undefined);
  if (!fit) return undefined;
  const inputShapes = { ...random.given, ...fit.shapes };
  const refit = job.kind === 'run' ? { ...job, inputShapes } : { ...job, options: { ...(job as { options?: object }).options, inputShapes } };
  return { job: refit as JobRequest, note: fit.note };
}

/** The model file a job ran on random inputs, and the shapes it was given (undefined: real data, or a folder). */
function randomData(job: JobRequest): { model: string; given: Record<string, number[]> } | undefined {
  const model = job.kind === 'compare' ? job.reference : 'model' in job ? job.model : undefined;
  if (!model || isFolder(model) || !fs.existsSync(model)) return undefined;
  const o = ('options' in job ? job.options : undefined) as { calibration?: string; data?: string; inputShapes?: Record<string, number[]> } | undefined;
  const data = job.kind === 'compare' ? o?.data : job.kind === 'run' ? job.data : o?.calibration;
  if (data && !data.startsWith('random:')) return undefined;
  return { model, given: (job.kind === 'run' ? job.inputShapes : o?.inputShapes) ?? {} };
}

/** When a job that failed in onnxruntime ran a model file on random inputs: what sizes they had (see randomShapeHint). */
function randomDataHint(job: JobRequest): string | undefined {
  const random = randomData(job);
  return random && randomShapeHint(random.model, random.given);
}
