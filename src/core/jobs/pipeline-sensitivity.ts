// Sensitivity across a pipeline's components in one tree (roots: vision, decoder), each component measured
// on the inputs it sees when the float pipeline generates, under its recipe's scheme.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QuantLensError } from '../base/errors';
import type { JobContext } from '../base/jobs';
import { writeJsonAtomic } from '../fs/json';
import { checkReportPath } from '../fs/output-path';
import { branchesOf, branchModel } from '../onnx/if-branches';
import { loadModel } from '../onnx/model-io';
import { onnx } from '../onnx/proto';
import { loadPipelineSamples } from '../pipeline/data';
import { detectPipeline, pipelineSensitivityPath, type ComponentRole } from '../pipeline/layout';
import { recordCalibration } from '../pipeline/record';
import type { DevicePreference } from '../runtime/session';
import { analyzeSensitivity, type SensitivityReport } from '../sensitivity/analyze';
import { rankLayers } from '../sensitivity/tree';
import { DEFAULT_PIPELINE_RECIPE, pipelineRecipe, type ComponentRecipe } from './quantize-pipeline';

export interface PipelineSensitivityOptions {
  calibration: string;
  samples?: number;
  device?: DevicePreference;
  recipe?: string;
  /** Default `<folder>.sensitivity.json` beside the folder; null writes none. */
  output?: string | null;
}

export type PipelineSensitivityReport = SensitivityReport & {
  pipeline: { layout: string; components: Array<{ role: ComponentRole; file: string; scheme: string; layers: number; skipped?: string }> };
};

const schemeText = (r: Exclude<ComponentRecipe, 'float'>) => `${r.mode}${r.bits ? ` ${r.bits}-bit` : r.mode === 'static' ? ' 8-bit' : ''}${r.algorithm ? ` ${r.algorithm}` : ''}`;

export async function analyzePipelineSensitivity(input: string, o: PipelineSensitivityOptions, ctx: JobContext = {}): Promise<PipelineSensitivityReport> {
  const t0 = performance.now();
  const p = detectPipeline(input);
  const target = o.output === undefined ? pipelineSensitivityPath(p.dir) : o.output;
  if (target) checkReportPath(target);
  const samples = loadPipelineSamples(o.calibration, o.samples, p);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-pipeline-'));
  try {
    const recipe = { ...DEFAULT_PIPELINE_RECIPE, ...(o.recipe ? pipelineRecipe(o.recipe, work) : {}) };
    ctx.onProgress?.({ stage: 'generation', message: `float pipeline on ${samples.length} samples` });
    const rec = await recordCalibration(p, samples, work, o.device ?? 'auto', ctx);
    const parts: Array<{ role: ComponentRole; report: SensitivityReport }> = [];
    const components: PipelineSensitivityReport['pipeline']['components'] = [];
    for (const c of p.components) {
      const r = recipe[c.role];
      const note = (skipped: string) => components.push({ role: c.role, file: c.relative, scheme: r === 'float' ? 'float' : schemeText(r), layers: 0, skipped });
      if (r === 'float') { note('kept float by the recipe'); continue; }
      let model = c.file, data = rec.dirs[c.role];
      if (c.role === 'decoder') {
        // A merged decoder: its with-past branch as a model, on the decode steps (the branch that runs most).
        const merged = loadModel(c.file);
        const then = branchesOf(merged.model.graph!).find((b) => b.when);
        if (then) {
          model = path.join(path.dirname(c.file), `.quantlens-${process.pid}-with-past.onnx`);
          fs.writeFileSync(model, onnx.ModelProto.encode(branchModel(merged.model, then.graph)).finish());
          data = rec.decoderWithPast;
        }
      }
      if (!data) { note(c.role === 'embedding' ? 'a lookup table: its rows are not measured here' : 'generation recorded no inputs for it'); continue; }
      ctx.onProgress?.({ stage: `sensitivity ${c.role}`, message: c.relative });
      try {
        const { exclude: _e, recipe: _r, ...scheme } = r; // the projector is measured too: that is what decides keeping it
        const report = await analyzeSensitivity(model, { ...scheme, calibration: data, method: 'local', output: null, device: o.device }, { signal: ctx.signal });
        parts.push({ role: c.role, report });
        components.push({ role: c.role, file: c.relative, scheme: schemeText(r), layers: report.layers.length });
      } finally {
        if (model !== c.file) fs.rmSync(model, { force: true });
      }
    }
    if (!parts.length) throw new QuantLensError(p.dir, 'no component of the pipeline could be measured');
    const ranked = rankLayers(parts.flatMap(({ role, report }) => report.layers.map((l) => ({ ...l, name: `${role}.${l.name}` }))));
    const first = parts[0].report;
    const report: PipelineSensitivityReport = {
      model: p.dir, method: 'local', scheme: first.scheme, metric: 'nsr', device: first.device, ...(first.fallbackReason ? { fallbackReason: first.fallbackReason } : {}),
      samples: samples.length, data: o.calibration, seconds: (performance.now() - t0) / 1000,
      layers: ranked.layers, tree: ranked.tree, skipped: parts.flatMap(({ role, report: r }) => r.skipped.map((s) => ({ ...s, node: `${role}:${s.node}` }))),
      pipeline: { layout: p.layout, components },
    };
    if (target) writeJsonAtomic(target, report);
    return report;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
