// Runs a VLM pipeline as it is deployed: vision encoder → token embeddings with the image features merged
// in → decoder prefill → greedy decode steps with the KV cache, all in onnxruntime.
import * as ort from 'onnxruntime-node';
import { QuantLensError } from '../base/errors';
import { loadModel } from '../onnx/model-io';
import { describeValue } from '../onnx/value-type';
import { createSession, type DevicePreference, type ModelSession, type Provider } from '../runtime/session';
import type { ComponentRole, Pipeline } from './layout';

export interface PipelineSessions {
  sessions: Partial<Record<ComponentRole, ModelSession>>;
  provider: Provider;
  fallbackReason?: string;
  /** The decoder's cache: layers, and each past tensor's [heads, head size] and element type. */
  cache: { layers: number; heads: number; headSize: number };
  decoderInputs: Set<string>;
  release: () => Promise<void>;
}

export async function openPipeline(p: Pipeline, device: DevicePreference = 'auto'): Promise<PipelineSessions> {
  const sessions: Partial<Record<ComponentRole, ModelSession>> = {};
  try {
    for (const c of p.components) sessions[c.role] = await createSession(c.file, { device, label: c.file });
  } catch (e) {
    await Promise.all(Object.values(sessions).map((s) => s!.session.release()));
    throw e;
  }
  const dec = p.components.find((c) => c.role === 'decoder')!;
  const graph = loadModel(dec.file).model.graph!;
  const declared = new Map((graph.input ?? []).map((v) => [v.name ?? '', describeValue(v).shape ?? []]));
  let layers = 0;
  while (declared.has(p.decoder.past(layers, 'key'))) layers++;
  const shape = declared.get(p.decoder.past(0, 'key')) ?? [];
  const heads = Number(shape[1]), headSize = Number(shape[3]);
  if (layers && !(heads > 0 && headSize > 0)) throw new QuantLensError(dec.file, `past key '${p.decoder.past(0, 'key')}' has no fixed [batch, heads, past, head size] shape ([${shape.join(', ')}])`);
  const first = sessions.decoder!;
  return {
    sessions, provider: first.provider, ...(first.fallbackReason ? { fallbackReason: first.fallbackReason } : {}),
    cache: { layers, heads, headSize }, decoderInputs: new Set(first.session.inputNames),
    release: async () => { await Promise.all(Object.values(sessions).map((s) => s!.session.release())); },
  };
}

export interface GenerationSample {
  pixels?: ort.Tensor;
  prompt: number[];
}

export interface Generated {
  tokens: number[];
  /** The first step's next-token logits (after prefill), for cosine against another pipeline. */
  firstLogits: Float32Array;
  prefillMs: number;
  /** Milliseconds per decode step (embedding and decoder). */
  stepMs: number[];
}

/** Everything the decoder is fed at one step: calibration by generation records these. */
export type DecoderFeeds = Record<string, ort.Tensor>;

const int64 = (values: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), dims);

function lastRow(logits: ort.Tensor): Float32Array {
  const [, t, v] = logits.dims;
  return (logits.data as Float32Array).slice((t - 1) * v, t * v);
}

const argmax = (v: Float32Array) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);

/** Concatenates [1, a, D] and [1, b, D] float tensors along the sequence. */
function concatSeq(parts: ort.Tensor[]): ort.Tensor {
  const d = parts[0].dims[2];
  const total = parts.reduce((a, p) => a + p.dims[1], 0);
  const out = new Float32Array(total * d);
  let at = 0;
  for (const p of parts) { out.set(p.data as Float32Array, at); at += (p.data as Float32Array).length; }
  return new ort.Tensor('float32', out, [1, total, d]);
}

/** The prompt's embeddings with the image features spliced in: at the image token, or before the prompt. */
async function prefillEmbeds(p: Pipeline, s: PipelineSessions, sample: GenerationSample): Promise<ort.Tensor> {
  const embed = s.sessions.embedding;
  const embedIds = async (ids: number[]) => {
    if (!embed) throw new QuantLensError(p.dir, 'has no embedding model to turn token ids into embeddings');
    const out = await embed.session.run({ [embed.session.inputNames[0]]: int64(ids, [1, ids.length]) });
    return out[embed.session.outputNames[0]];
  };
  if (!sample.pixels || !s.sessions.vision) return embedIds(sample.prompt);
  const vision = s.sessions.vision.session;
  const image = (await vision.run({ [vision.inputNames[0]]: sample.pixels }))[vision.outputNames[0]];
  const flat = image.dims.length === 2 ? new ort.Tensor('float32', image.data as Float32Array, [1, ...image.dims]) : image;
  const at = p.imageToken === undefined ? -1 : sample.prompt.indexOf(p.imageToken);
  if (at < 0) return concatSeq([flat, await embedIds(sample.prompt)]);
  const before = sample.prompt.slice(0, at), after = sample.prompt.slice(at + 1);
  return concatSeq([...(before.length ? [await embedIds(before)] : []), flat, ...(after.length ? [await embedIds(after)] : [])]);
}

/**
 * Greedy generation of up to `maxNew` tokens (stopping at an EOS), with the KV cache: one prefill over the
 * image and the prompt, then one decoder run per token. `onDecoderFeeds` sees every step's decoder inputs.
 */
export async function generate(p: Pipeline, s: PipelineSessions, sample: GenerationSample, maxNew = p.maxNewTokens, onDecoderFeeds?: (feeds: DecoderFeeds) => void): Promise<Generated> {
  const dec = s.sessions.decoder!.session;
  const t0 = performance.now();
  let embeds = await prefillEmbeds(p, s, sample);
  const embedMs = performance.now() - t0;
  let past: Record<string, ort.Tensor> = {};
  for (let l = 0; l < s.cache.layers; l++) for (const kv of ['key', 'value'] as const) past[p.decoder.past(l, kv)] = new ort.Tensor('float32', new Float32Array(0), [1, s.cache.heads, 0, s.cache.headSize]);
  let done = 0;
  const tokens: number[] = [];
  let firstLogits: Float32Array = new Float32Array(0);
  const times: number[] = [];
  for (let step = 0; step < maxNew; step++) {
    const t = performance.now();
    const n = embeds.dims[1];
    const total = done + n;
    const feeds: DecoderFeeds = { [p.decoder.inputsEmbeds]: embeds, ...past };
    if (s.decoderInputs.has(p.decoder.attentionMask)) feeds[p.decoder.attentionMask] = int64(new Array(total).fill(1), [1, total]);
    if (s.decoderInputs.has(p.decoder.positionIds)) feeds[p.decoder.positionIds] = int64(Array.from({ length: n }, (_, i) => done + i), [1, n]);
    if (s.decoderInputs.has('use_cache_branch')) feeds.use_cache_branch = new ort.Tensor('bool', Uint8Array.from([done > 0 ? 1 : 0]), [1]);
    onDecoderFeeds?.(feeds);
    const out = await dec.run(feeds);
    const logits = lastRow(out[dec.outputNames[0]]);
    if (step === 0) firstLogits = logits;
    const next = argmax(logits);
    tokens.push(next);
    past = {};
    for (let l = 0; l < s.cache.layers; l++) for (const kv of ['key', 'value'] as const) past[p.decoder.past(l, kv)] = out[p.decoder.present(l, kv)];
    done = total;
    const stop = p.eos.includes(next) || step === maxNew - 1;
    if (!stop) {
      const embed = s.sessions.embedding!.session;
      embeds = (await embed.run({ [embed.inputNames[0]]: int64([next], [1, 1]) }))[embed.outputNames[0]];
    }
    times.push(performance.now() - t);
    if (stop) break;
  }
  // The prefill: the vision encoder, the prompt's embeddings and the first decoder run.
  return { tokens, firstLogits, prefillMs: embedMs + times[0], stepMs: times.slice(1) };
}
