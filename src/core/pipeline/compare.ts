// Two pipelines judged by what they generate: greedy tokens of each on the same images and prompts.
import fs from 'node:fs';
import { QuantLensError } from '../base/errors';
import type { DevicePreference, Provider } from '../runtime/session';
import { loadPipelineSamples } from './data';
import { generate, openPipeline, type Generated } from './generate';
import { detectPipeline, type ComponentRole, type Pipeline } from './layout';
import { loadTokenizer } from './tokenizer';

export interface PipelineCompareReport {
  kind: 'pipeline';
  reference: string;
  candidate: string;
  layout: Pipeline['layout'];
  device: Provider;
  fallbackReason?: string;
  samples: number;
  data: string;
  /** Greedy tokens: share of the reference's tokens the candidate reproduces at the same position, whole answers identical, and where each first differs (null: never). */
  tokens: { agreement: number; exactMatch: number; firstDivergence: Array<number | null>; generated: number };
  /** Cosine of the first generated token's logits (after prefill), averaged over samples. */
  logitsCosine: number;
  /** Medians: prefill (vision, embeddings, first decoder run) and per decoded token. */
  latencyMs: { reference: { prefill: number; perToken: number }; candidate: { prefill: number; perToken: number } };
  sizes: Partial<Record<ComponentRole, { reference: number; candidate: number }>>;
  /** Each sample's generated tokens, and their text where the pipeline has a tokenizer.json. */
  answers: Array<{ reference: number[]; candidate: number[]; referenceText?: string; candidateText?: string }>;
}

const median = (v: number[]) => (v.length ? [...v].sort((a, b) => a - b)[v.length >> 1] : NaN);

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return aa && bb ? ab / Math.sqrt(aa * bb) : aa === bb ? 1 : 0;
}

/** Token agreement of a candidate answer against the reference's, position by position. */
export function agreement(ref: number[], cand: number[]): { same: number; first: number | null } {
  let same = 0, first: number | null = null;
  for (let i = 0; i < Math.max(ref.length, cand.length); i++) {
    if (i < ref.length && ref[i] === cand[i]) same++;
    else if (first === null) first = i;
  }
  return { same, first };
}

export async function comparePipelines(referenceDir: string, candidateDir: string, opts: { data?: string; samples?: number; device?: DevicePreference } = {}): Promise<PipelineCompareReport> {
  const ref = detectPipeline(referenceDir), cand = detectPipeline(candidateDir);
  if (!opts.data) throw new QuantLensError(undefined, 'comparing pipelines needs --data DIR: images (pixel_values_N.npy or image files) and prompts (input_ids.npy, prompts.json or prompts.txt)', 'usage');
  const samples = loadPipelineSamples(opts.data, opts.samples, ref);
  const run = async (p: Pipeline) => {
    const s = await openPipeline(p, opts.device ?? 'auto');
    try {
      const out: Generated[] = [];
      for (const sample of samples) out.push(await generate(p, s, sample));
      return { out, provider: s.provider, fallbackReason: s.fallbackReason };
    } finally {
      await s.release();
    }
  };
  const a = await run(ref), b = await run(cand);
  let same = 0, total = 0, exact = 0;
  const firstDivergence: Array<number | null> = [];
  a.out.forEach((r, i) => {
    const g = agreement(r.tokens, b.out[i].tokens);
    same += g.same;
    total += r.tokens.length;
    firstDivergence.push(g.first);
    if (g.first === null) exact++;
  });
  const tok = loadTokenizer(ref.dir);
  const size = (f?: string) => (f && fs.existsSync(f) ? fs.statSync(f).size : 0);
  const sizes: PipelineCompareReport['sizes'] = {};
  for (const c of ref.components) sizes[c.role] = { reference: size(c.file), candidate: size(cand.components.find((x) => x.role === c.role)?.file) };
  const lat = (x: Generated[]) => ({ prefill: median(x.map((g) => g.prefillMs)), perToken: median(x.flatMap((g) => g.stepMs)) });
  return {
    kind: 'pipeline', reference: referenceDir, candidate: candidateDir, layout: ref.layout, device: b.provider, ...(b.fallbackReason ? { fallbackReason: b.fallbackReason } : {}),
    samples: samples.length, data: opts.data,
    tokens: { agreement: total ? same / total : 1, exactMatch: samples.length ? exact / samples.length : 1, firstDivergence, generated: total },
    logitsCosine: a.out.reduce((acc, r, i) => acc + cosine(r.firstLogits, b.out[i].firstLogits), 0) / Math.max(1, samples.length),
    latencyMs: { reference: lat(a.out), candidate: lat(b.out) }, sizes,
    answers: a.out.map((r, i) => ({ reference: r.tokens, candidate: b.out[i].tokens, ...(tok ? { referenceText: tok.decode(r.tokens), candidateText: tok.decode(b.out[i].tokens) } : {}) })),
  };
}
