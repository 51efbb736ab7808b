// VLM deployments as folders of ONNX files: the Optimum / transformers.js layout (onnx/vision_encoder.onnx,
// onnx/embed_tokens.onnx, onnx/decoder_model_merged.onnx beside config.json) and onnxruntime-genai's
// (genai_config.json naming a vision, an embedding and a decoder model).
import fs from 'node:fs';
import path from 'node:path';
import { QuantLensError } from '../base/errors';

export type ComponentRole = 'vision' | 'embedding' | 'decoder';
export const ROLES: readonly ComponentRole[] = ['vision', 'embedding', 'decoder'];

export interface PipelineComponent {
  role: ComponentRole;
  /** Absolute path of the .onnx file, and relative to the pipeline's folder (the layout written back). */
  file: string;
  relative: string;
}

export interface Pipeline {
  dir: string;
  layout: 'genai' | 'optimum';
  components: PipelineComponent[];
  /** JSON and text files beside the models (configs, tokenizer), relative: copied into a quantized pipeline. */
  extras: string[];
  /** Generation facts from the configs. */
  eos: number[];
  maxNewTokens: number;
  /** Token id the image features replace in the prompt (LLaVA's image_token_index), if the config names one. */
  imageToken?: number;
  /** Decoder input names. */
  decoder: { inputsEmbeds: string; attentionMask: string; positionIds: string; past: (layer: number, kv: 'key' | 'value') => string; present: (layer: number, kv: 'key' | 'value') => string };
}

interface GenaiModel { filename?: string; inputs?: Record<string, string>; outputs?: Record<string, string> }
/** The parts of config.json, generation_config.json and genai_config.json that generation needs. */
interface Configs { eos_token_id?: unknown; image_token_index?: unknown; max_new_tokens?: unknown; model?: { eos_token_id?: unknown; vision?: GenaiModel; embedding?: GenaiModel; decoder?: GenaiModel } }

const readJson = (file: string): Configs | undefined => {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
};

/** Optimum's file stems for each role, the plain (float) export first. */
const OPTIMUM: Record<ComponentRole, string> = { vision: 'vision_encoder', embedding: 'embed_tokens', decoder: 'decoder_model_merged' };

const pattern = (s: string) => (layer: number, kv: 'key' | 'value') => s.replace('%d', String(layer)).replace(/\{kv\}/, kv);

/** Where a pipeline's sensitivity report goes by default: beside its folder. */
export const pipelineSensitivityPath = (dir: string) => `${dir.replace(/[\\/]+$/, '')}.sensitivity.json`;

/** Whether a folder is a pipeline, cheaply (for pickers and `quantlens DIR` dispatch). */
export function isPipelineDir(dir: string): boolean {
  try {
    detectPipeline(dir);
    return true;
  } catch {
    return false;
  }
}

/**
 * The pipeline in a folder (or the folder of a given config.json / genai_config.json), or an error
 * saying what was found and what is missing.
 */
export function detectPipeline(input: string): Pipeline {
  if (!fs.existsSync(input)) throw new QuantLensError(input, 'does not exist');
  const dir = fs.statSync(input).isDirectory() ? input : path.dirname(input);
  const config: Configs = readJson(path.join(dir, 'config.json')) ?? {};
  const generation: Configs = readJson(path.join(dir, 'generation_config.json')) ?? {};
  const genai = readJson(path.join(dir, 'genai_config.json'));
  const list = (v: unknown): number[] => (Array.isArray(v) ? v.map(Number) : v === undefined || v === null ? [] : [Number(v)]);
  const extras = fs.readdirSync(dir).filter((f) => /\.(json|txt|model|jinja)$/i.test(f) && fs.statSync(path.join(dir, f)).isFile());
  const common = {
    dir, extras,
    eos: [...new Set([...list(generation.eos_token_id), ...list(config.eos_token_id), ...list(genai?.model?.eos_token_id)])].filter(Number.isFinite),
    maxNewTokens: Number(generation.max_new_tokens ?? 16),
    ...(config.image_token_index !== undefined ? { imageToken: Number(config.image_token_index) } : {}),
  };
  if (genai?.model) {
    const m = genai.model;
    const components: PipelineComponent[] = [];
    for (const role of ROLES) {
      const f = m[role]?.filename;
      if (!f) continue;
      const file = path.resolve(dir, f);
      if (!fs.existsSync(file)) throw new QuantLensError(path.join(dir, 'genai_config.json'), `names ${role} model '${f}', which does not exist`);
      components.push({ role, file, relative: path.relative(dir, file) });
    }
    if (!components.some((c) => c.role === 'decoder')) throw new QuantLensError(path.join(dir, 'genai_config.json'), 'names no decoder model (model.decoder.filename)');
    const ins = m.decoder?.inputs ?? {}, outs = m.decoder?.outputs ?? {};
    return {
      ...common, layout: 'genai', components,
      decoder: {
        inputsEmbeds: ins.inputs_embeds ?? 'inputs_embeds', attentionMask: ins.attention_mask ?? 'attention_mask', positionIds: ins.position_ids ?? 'position_ids',
        past: (l, kv) => pattern(kv === 'key' ? ins.past_key_names ?? 'past_key_values.%d.key' : ins.past_value_names ?? 'past_key_values.%d.value')(l, kv),
        present: (l, kv) => pattern(kv === 'key' ? outs.present_key_names ?? 'present.%d.key' : outs.present_value_names ?? 'present.%d.value')(l, kv),
      },
    };
  }
  const folder = fs.existsSync(path.join(dir, 'onnx')) ? path.join(dir, 'onnx') : dir;
  const models = fs.readdirSync(folder).filter((f) => f.endsWith('.onnx'));
  const components: PipelineComponent[] = [];
  for (const role of ROLES) {
    const f = models.includes(`${OPTIMUM[role]}.onnx`) ? `${OPTIMUM[role]}.onnx` : undefined;
    if (f) components.push({ role, file: path.join(folder, f), relative: path.relative(dir, path.join(folder, f)) });
  }
  if (!components.some((c) => c.role === 'decoder')) {
    const found = models.length ? `found ${models.slice(0, 6).join(', ')}${models.length > 6 ? ', ...' : ''}` : 'found no .onnx file';
    throw new QuantLensError(dir, `is a directory but not a model pipeline: no genai_config.json and no ${path.relative(dir, path.join(folder, 'decoder_model_merged.onnx')) || 'decoder_model_merged.onnx'} (${found}); quantize one .onnx file by its path`);
  }
  return {
    ...common, layout: 'optimum', components,
    decoder: { inputsEmbeds: 'inputs_embeds', attentionMask: 'attention_mask', positionIds: 'position_ids', past: (l, kv) => `past_key_values.${l}.${kv}`, present: (l, kv) => `present.${l}.${kv}` },
  };
}
