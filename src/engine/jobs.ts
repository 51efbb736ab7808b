import { CancelledError } from '../core/base/errors';
import { summarizeModel } from '../core/inspect';
import type { JobContext } from '../core/base/jobs';
import { loadModel } from '../core/onnx/model-io';
import { writeFixture } from '../core/jobs/fixture';
import { runModel } from '../core/runtime/run-model';
import { compareModels } from '../core/compare';
import { quantizeModel } from '../core/jobs/quantize-model';
import { analyzeSensitivity } from '../core/sensitivity/analyze';
import { pruneModel } from '../core/prune/prune-model';
import { sweepModel } from '../core/prune/sweep';
import type { JobKind, JobRequests, JobResults } from '../protocol/engine';

type Handler<K extends JobKind> = (req: JobRequests[K], ctx: JobContext) => Promise<JobResults[K]>;

/** The engine's job registry: one handler per job kind. */
export const JOB_HANDLERS: { [K in JobKind]: Handler<K> } = {
  async inspect(req, ctx) {
    ctx.onProgress?.({ stage: 'load', fraction: 0 });
    return summarizeModel(loadModel(req.model));
  },
  run: (req, ctx) => runModel(req.model, { device: req.device, runs: req.runs }, ctx),
  async fixture(req) {
    const r = writeFixture(req.name, req.output);
    return { output: r.output, sizeBytes: r.sizeBytes };
  },
  quantize: (req, ctx) => quantizeModel(req.model, req.output, req.options, ctx),
  compare: (req, ctx) => compareModels(req.reference, req.candidate, req.options, ctx),
  sensitivity: (req, ctx) => analyzeSensitivity(req.model, req.options, ctx),
  prune: (req, ctx) => pruneModel(req.model, req.output, req.options, ctx, { masks: req.masks }),
  sweep: (req, ctx) => sweepModel(req.model, req.sweep, req.options, ctx),
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
