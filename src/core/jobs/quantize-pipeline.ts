// A pipeline quantized component by component (vision INT8 static with the projector kept float,
// embeddings INT8, decoder INT4 GPTQ by default), calibrated by generation and judged by generation.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QuantLensError } from '../base/errors';
import type { JobContext } from '../base/jobs';
import type { QuantizeOptions } from '../quant/options';
import { quantizeModel, type QuantizeResult } from './quantize-model';
import type { DevicePreference } from '../runtime/session';
import { comparePipelines, type PipelineCompareReport } from '../pipeline/compare';
import { loadPipelineSamples } from '../pipeline/data';
import { recordCalibration } from '../pipeline/record';
import { detectPipeline, ROLES, type ComponentRole } from '../pipeline/layout';
import { loadRecipe } from '../quant/policy';
import YAML from 'yaml';

export type ComponentRecipe = Partial<QuantizeOptions> | 'float';

/** The per-module strategy the product exists for: vision INT8 (projector precise), embeddings INT8, the language model INT4. */
export const DEFAULT_PIPELINE_RECIPE: Record<ComponentRole, ComponentRecipe> = {
  vision: { mode: 'static', exclude: ['multi_modal_projector.**', '*projector*'] },
  embedding: { mode: 'weight', bits: 8 },
  decoder: { mode: 'weight', bits: 4, algorithm: 'gptq' },
};

/**
 * A pipeline recipe: the single-model recipe format with each pattern starting at its component
 * (`vision.**`, `vision.multi_modal_projector.**`, `decoder.model.layers.*.mlp.**`). A rule on the whole
 * component (`decoder.**`) sets its scheme; the others become that component's own recipe.
 */
export function pipelineRecipe(file: string, work: string): Partial<Record<ComponentRole, ComponentRecipe>> {
  const recipe = loadRecipe(file);
  const roleOf = (pattern: string) => ROLES.find((r) => pattern === r || pattern.startsWith(`${r}.`));
  const stray = recipe.rules.find((x) => !roleOf(x.pattern));
  if (stray) throw new QuantLensError(`${file}:${stray.line}`, `'${stray.pattern}': a pipeline recipe starts each pattern with its component (${ROLES.join('., ')}.), e.g. decoder.model.layers.*.mlp.**`);
  const out: Partial<Record<ComponentRole, ComponentRecipe>> = {};
  for (const role of ROLES) {
    const mine = recipe.rules.filter((x) => roleOf(x.pattern) === role);
    if (!mine.length) continue;
    const whole = mine.filter((x) => x.pattern === role || x.pattern === `${role}.**`).at(-1);
    const modules = mine.filter((x) => x !== whole);
    if (whole?.rule.keep && !modules.length) { out[role] = 'float'; continue; }
    const { keep: _k, ...scheme } = whole?.rule ?? {};
    // A rule that changes the mode drops the default's bits and algorithm, and one that changes the bits its
    // algorithm: `decoder.**: {mode: dynamic}` or `{bits: 8}` does not inherit the default decoder's 4-bit
    // GPTQ (which either would refuse).
    const defaults = { ...(DEFAULT_PIPELINE_RECIPE[role] as Partial<QuantizeOptions>) };
    if (scheme.mode !== undefined && scheme.mode !== defaults.mode) { delete defaults.bits; delete defaults.algorithm; }
    else if (scheme.bits !== undefined && scheme.bits !== defaults.bits) delete defaults.algorithm;
    const base = { ...defaults, ...scheme } as Partial<QuantizeOptions>;
    // Rules that name the projector decide it, not the default exclusion.
    if (modules.some((x) => /projector/.test(x.pattern))) delete base.exclude;
    if (modules.length) {
      const f = path.join(work, `${role}.recipe.yaml`);
      fs.writeFileSync(f, YAML.stringify({ rules: Object.fromEntries(modules.map((x) => [x.pattern.slice(role.length + 1), x.rule])) }));
      base.recipe = f;
    }
    out[role] = base;
  }
  return out;
}

export interface PipelineQuantizeOptions {
  /** A pipeline recipe (see pipelineRecipe); otherwise DEFAULT_PIPELINE_RECIPE. */
  recipe?: string;
  /** Images and prompts (see data.ts): the float pipeline generates on them, and each component is calibrated on what it saw. */
  calibration: string;
  /** Held-apart images and prompts the result is judged on (default: the calibration ones, said so). */
  evaluation?: string;
  samples?: number;
  components?: Partial<Record<ComponentRole, ComponentRecipe>>;
  device?: DevicePreference;
}

export interface PipelineQuantizeResult {
  kind: 'pipeline';
  input: string;
  output: string;
  layout: string;
  components: Array<{ role: ComponentRole; file: string; recipe: ComponentRecipe; result?: Pick<QuantizeResult, 'sizeBefore' | 'sizeAfter' | 'quantized' | 'report'>; kept?: string }>;
  /** Decoder steps recorded while generating (prefill and decode): the decoder's calibration samples. */
  decoderSteps: number;
  judged: PipelineCompareReport;
  warning?: string;
  seconds: number;
}

export async function quantizePipeline(input: string, output: string, o: PipelineQuantizeOptions, ctx: JobContext = {}): Promise<PipelineQuantizeResult> {
  const t0 = performance.now();
  const p = detectPipeline(input);
  if (fs.existsSync(output) && (!fs.statSync(output).isDirectory() || fs.readdirSync(output).length)) throw new QuantLensError(output, 'exists and is not an empty folder: a quantized pipeline is written as a new folder');
  if (path.resolve(output) === path.resolve(p.dir)) throw new QuantLensError(output, 'is the input pipeline: the input is never modified');
  const calib = loadPipelineSamples(o.calibration, o.samples, p);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-pipeline-'));
  let recipe: Record<ComponentRole, ComponentRecipe>;
  try {
    recipe = { ...DEFAULT_PIPELINE_RECIPE, ...(o.recipe ? pipelineRecipe(o.recipe, work) : {}), ...(o.components ?? {}) };
  } catch (e) {
    fs.rmSync(work, { recursive: true, force: true });
    throw e;
  }
  const staged = `${path.resolve(output)}.partial-${process.pid}`;
  try {
    ctx.onProgress?.({ stage: 'generation', message: `float pipeline on ${calib.length} samples` });
    const { dirs, decoderSteps: steps } = await recordCalibration(p, calib, work, o.device ?? 'auto', ctx);
    // Everything beside the models (configs, tokenizer): the quantized components are written below.
    const modelFiles = new Set(p.components.map((c) => path.resolve(c.file)));
    fs.cpSync(p.dir, staged, { recursive: true, filter: (src) => !modelFiles.has(path.resolve(src)) });
    const components: PipelineQuantizeResult['components'] = [];
    for (const c of p.components) {
      const r = recipe[c.role];
      const dest = path.join(staged, c.relative);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      if (r === 'float') {
        fs.copyFileSync(c.file, dest);
        components.push({ role: c.role, file: c.relative, recipe: r });
        continue;
      }
      ctx.onProgress?.({ stage: `quantize ${c.role}`, message: c.relative });
      const needsData = r.mode === 'static' || (r.mode === 'weight' && r.bits === 4 && r.algorithm === 'gptq');
      const data = needsData ? dirs[c.role] : undefined;
      if (needsData && !data) throw new QuantLensError(c.file, `the ${c.role} recipe (${r.mode}${r.bits ? ` ${r.bits}-bit` : ''}) needs calibration inputs, and generation recorded none for it`);
      const q = await quantizeModel(c.file, dest, { ...r, ...(data ? { calibration: data } : {}), device: o.device }, { signal: ctx.signal })
        .catch((e: unknown) => { if (e instanceof QuantLensError && e.kind === 'already-quantized') return e; throw e; });
      if (q instanceof QuantLensError) {
        // onnxruntime-genai folders often ship an int4 decoder: it goes into the result as it came.
        fs.copyFileSync(c.file, dest);
        components.push({ role: c.role, file: c.relative, recipe: 'float', kept: `${q.detail}; copied as shipped` });
        continue;
      }
      fs.renameSync(q.report, `${dest}.report.json`);
      components.push({ role: c.role, file: c.relative, recipe: r, result: { sizeBefore: q.sizeBefore, sizeAfter: q.sizeAfter, quantized: q.quantized, report: path.join(output, `${c.relative}.report.json`) } });
    }
    ctx.onProgress?.({ stage: 'judge', message: 'greedy generation, float and quantized' });
    const judged = await comparePipelines(p.dir, staged, { data: o.evaluation ?? o.calibration, samples: o.samples, device: o.device });
    const result: PipelineQuantizeResult = {
      kind: 'pipeline', input: p.dir, output, layout: p.layout, components, decoderSteps: steps,
      judged: { ...judged, candidate: output },
      ...(o.evaluation ? {} : { warning: 'judged on the calibration images and prompts: pass --eval-data DIR (held apart) for evidence' }),
      seconds: (performance.now() - t0) / 1000,
    };
    fs.writeFileSync(path.join(staged, 'quantlens.report.json'), JSON.stringify(result, null, 2) + '\n');
    fs.renameSync(staged, output);
    return result;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(staged, { recursive: true, force: true });
  }
}
