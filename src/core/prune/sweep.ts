import fs from 'node:fs';
import path from 'node:path';
import { compareModels } from '../compare';
import { randomDataWarning, type FidelityMetrics } from '../eval/metrics';
import { CancelledError, QuantLensError } from '../base/errors';
import { summarizeModel } from '../inspect';
import { loadModel } from '../onnx/model-io';
import { runUserEvaluator, type UserEvaluator } from '../eval/user-evaluator';
import { writeJsonAtomic } from '../fs/json';
import { checkWritable } from '../fs/output-path';
import type { JobContext } from '../base/jobs';
import { DEFAULT_PRUNE_OPTIONS, validatePruneOptions, type PruneOptions } from './options';
import { pruneModel } from './prune-model';
import { jobKey, shareOf, type Shard } from '../cluster/shard';
import { partPath, writePart } from '../cluster/parts';

/** One point of a sweep: the contract's fields, then extras. */
export interface SweepPoint {
  sparsity: number;
  sizeBytes: number;
  latencyMs: number;
  /** First and third quartiles of the timed runs, ms: the chart draws them as the spread. */
  latencyIqr?: [number, number];
  cosine: number;
  sqnr: number;
  top1Agreement: number | null;
  /** The worst of the metrics that judge this output (sequence/CTC agreement for [N, T, C], top-1, cosine). */
  headline?: FidelityMetrics['headline'];
  parameters: number;
  /** The pruned model of this point (kept, so the editor can keep the one the user picks). */
  model: string;
  /** The user's metric on this point's model, when an evaluator was given. */
  metric?: number;
  /** Achieved: magnitude, the share of prunable weights that are zero; structured, the share of all parameters removed. */
  achieved: number;
}

export interface SweepReport {
  model: string;
  method: PruneOptions['method'];
  iterative: boolean;
  options: PruneOptions;
  baseline: { sizeBytes: number; latencyMs: number; latencyIqr?: [number, number]; parameters: number; metric?: number };
  points: SweepPoint[];
  /** Where the point models are. */
  folder: string;
  report: string;
  evaluator?: string;
  /** The samples fidelity was measured on, and the note when they are random (not the user's data). */
  data: string;
  warning?: string;
  seconds: number;
  /** Identifies the model (path, size, mtime) and options: a rerun with the same key reuses the points. */
  key: string;
  /** Points taken from an earlier run of the same sweep instead of measured again. */
  reused: number;
  /** A sharded run: this report holds shard `index` of `count` only, written to `part`; merged: the shard count. */
  shard?: { index: number; count: number; part: string };
  shards?: number;
}

export interface SweepOptions {
  sparsities: number[];
  /** Each step prunes the previous step's model further (seed 8.2.3), instead of the original each time. */
  iterative?: boolean;
  /** Report path (default `<model>.sweep.json`); the point models go to `<report without .json>/`. */
  output?: string;
  evaluator?: UserEvaluator;
  /** Measure only this share of the points, into a part file that `quantlens merge` combines. */
  shard?: Shard;
  /** The part file (default `<report>.part-I-of-N.json`). */
  part?: string;
}

const tag = (s: number) => s.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');

/**
 * Prunes at each sparsity (ascending) and measures every point against the original model: size,
 * parameters, onnxruntime latency, fidelity, and the user's metric. Each point is reported through
 * onProgress as soon as it is measured, and checkpointed: a rerun after a cancel or a crash skips the
 * points already done. Cancellable between and within points.
 */
export async function sweepModel(input: string, so: SweepOptions, partial: Partial<PruneOptions>, ctx: JobContext<SweepPoint> = {}): Promise<SweepReport> {
  const t0 = performance.now();
  const o: PruneOptions = { ...DEFAULT_PRUNE_OPTIONS, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) };
  if (!so.sparsities.length) throw new QuantLensError(undefined, '--sparsities needs at least one value, e.g. 0.1,0.3,0.5', 'usage');
  for (const s of so.sparsities) validatePruneOptions({ ...o, sparsity: s });
  if (o.method === 'nm') throw new QuantLensError(undefined, 'a sweep varies the sparsity; N:M has a fixed one (1 − N/M): use prune --method nm', 'usage');
  if (!fs.existsSync(input)) throw new QuantLensError(input, 'does not exist');
  const every = [...new Set(so.sparsities)].sort((a, b) => a - b);
  if (so.shard && so.iterative) throw new QuantLensError(undefined, 'an iterative sweep prunes each point from the one before: its points cannot be split between shards (drop --iterative or --shard)', 'usage');
  // Points cost about the same (one prune and one comparison each): an even split.
  const pieces = so.shard ? shareOf(every.map(() => 1), so.shard) : [...every.keys()];
  const sparsities = pieces.map((i) => every[i]);
  const report = so.output ?? `${input}.sweep.json`;
  const part = so.shard ? so.part ?? partPath(report, so.shard) : undefined;
  const folder = report.replace(/\.json$/i, '') + (report.toLowerCase().endsWith('.json') ? '' : '.d');
  if (!fs.existsSync(path.dirname(path.resolve(report)))) throw new QuantLensError(report, `folder '${path.dirname(path.resolve(report))}' does not exist`);
  checkWritable(report, path.dirname(path.resolve(report)));
  if (part) checkWritable(part, path.dirname(path.resolve(part)));
  fs.mkdirSync(folder, { recursive: true });
  const checkpoint = `${part ?? report}.partial.json`;
  const stat = fs.statSync(input);
  const key = JSON.stringify({ input: path.resolve(input), size: stat.size, mtime: stat.mtimeMs, o: { ...o, device: undefined }, iterative: !!so.iterative, evaluator: so.evaluator?.command });
  const done = new Map<number, SweepPoint>();
  // Points of an interrupted run (the checkpoint) or of a finished one (the report, which keeps the same
  // key): a rerun with the same model and options measures only the sparsities it lacks.
  for (const file of [part ?? report, checkpoint]) {
    try {
      const j = JSON.parse(fs.readFileSync(file, 'utf8'));
      const c = j.quantlens === 'part' ? j.result : j; // a part file holds the shard's report
      if (c.key === key) for (const p of c.points as SweepPoint[]) if (fs.existsSync(p.model)) done.set(p.sparsity, p);
    } catch { /* none yet, or another sweep's: measure */ }
  }
  const reused = done.size;

  const baseName = path.basename(input).replace(/\.onnx$/i, '');
  const original = loadModel(input);
  const originalParameters = summarizeModel(original).parameters;
  const originalSize = original.fileBytes + original.externalBytes;
  const points: SweepPoint[] = [];
  const measured = new Set<number>();
  let baseline: SweepReport['baseline'] | undefined;
  let previous = input;
  let previousSparsity = 0;
  for (let i = 0; i < sparsities.length; i++) {
    if (ctx.signal?.aborted) throw new CancelledError();
    const s = sparsities[i];
    const out = path.join(folder, `${baseName}.${o.method}-${tag(s)}.onnx`);
    let point = done.get(s);
    if (!point) {
      // Iterative structured steps remove a share of what is left; magnitude thresholds are absolute.
      const stepSparsity = so.iterative && o.method === 'structured' ? 1 - (1 - s) / (1 - previousSparsity) : s;
      // The user's options, not `o`: defaults that depend on the data are pruneModel's to choose.
      const r = await pruneModel(so.iterative ? previous : input, out, { ...partial, sparsity: Math.max(0, stepSparsity) }, {
        signal: ctx.signal, onProgress: (p) => ctx.onProgress?.({ ...p, fraction: (i + (p.fraction ?? 0)) / sparsities.length }),
      }, { reference: input, latencyRuns: 10 });
      const [f] = Object.values(r.fidelity);
      const st = r.latencyStats;
      baseline ??= { sizeBytes: originalSize, latencyMs: r.latencyMs.reference, ...(st ? { latencyIqr: [st.reference.q1, st.reference.q3] as [number, number] } : {}), parameters: originalParameters };
      point = {
        sparsity: s, sizeBytes: r.sizeAfter, latencyMs: r.latencyMs.candidate, ...(st ? { latencyIqr: [st.candidate.q1, st.candidate.q3] as [number, number] } : {}), cosine: f.cosine, sqnr: f.sqnr, top1Agreement: f.top1Agreement, headline: f.headline,
        parameters: r.parametersAfter, model: out, achieved: o.method === 'structured' ? 1 - r.parametersAfter / Math.max(1, originalParameters) : r.sparsity,
      };
      if (so.evaluator) point.metric = await runUserEvaluator(so.evaluator, out, ctx.signal);
      done.set(s, point);
      measured.add(s);
      writeJsonAtomic(checkpoint, { key, points: [...done.values()] });
    }
    points.push(point);
    previous = point.model;
    previousSparsity = s;
    ctx.onProgress?.({ stage: 'sweep', fraction: (i + 1) / sparsities.length, message: `sparsity ${tag(s)}: cosine ${point.cosine.toFixed(4)}`, partial: point });
  }
  if (!baseline) {
    // Every point came from the checkpoint: measure the original once for the chart's reference line.
    const c = await compareModels(input, input, { data: o.calibration ?? 'random:4', samples: 4, device: o.device, latencyRuns: 10, inputShapes: o.inputShapes });
    baseline = { sizeBytes: c.sizeBytes.reference, latencyMs: c.latencyMs.reference, parameters: originalParameters };
  }
  if (so.evaluator) baseline.metric = await runUserEvaluator(so.evaluator, input, ctx.signal);
  const result: SweepReport = {
    model: input, method: o.method, iterative: !!so.iterative, options: o, baseline, points, folder, report,
    ...(so.evaluator ? { evaluator: so.evaluator.command } : {}), data: o.calibration ?? 'random:4',
    ...(randomDataWarning(o.calibration) ? { warning: randomDataWarning(o.calibration) } : {}), seconds: (performance.now() - t0) / 1000,
    key, reused: reused ? points.filter((p) => !measured.has(p.sparsity)).length : 0,
    ...(so.shard && part ? { shard: { ...so.shard, part } } : {}),
  };
  if (so.shard && part) {
    writePart(part, { job: 'sweep', key: jobKey(input, { o: { ...o, device: undefined }, sparsities: every, evaluator: so.evaluator?.command }), shard: so.shard, report, total: every.length, pieces, result });
  } else writeJsonAtomic(report, result);
  fs.rmSync(checkpoint, { force: true });
  return result;
}
