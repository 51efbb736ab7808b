// Graphs built from onnxruntime's contrib ops, the way its tools write them: an onnxruntime-genai style
// decoder (GroupQueryAttention with rotary caches, SimplifiedLayerNormalization, SkipSimplifiedLayerNormalization)
// and a BERT after onnxruntime-transformers' optimizer (EmbedLayerNormalization, Attention,
// SkipLayerNormalization, BiasGelu or FastGelu). Weights are random (scaled like trained ones).
import { ModelBuilder } from '../../src/core/fixtures/model-builder';
import { smallVector, trainedWeight } from '../../src/core/fixtures/layers';
import { Rng } from '../../src/core/calib/rng';
import { DataType } from '../../src/core/onnx/dtypes';
import type { ModelProto } from '../../src/core/onnx/proto';

const MS = 'com.microsoft';
const withContribDomain = (m: ModelProto) => { m.opset_import!.push({ domain: MS, version: 1 }); return m; };

export const GENAI = { hidden: 64, heads: 4, kvHeads: 2, headSize: 16, layers: 2, vocab: 200 };

/**
 * Decoder with input_ids (or, with `inputsEmbeds`, inputs_embeds), attention_mask and
 * past_key_values.N.key/value; present.N.* and logits out.
 */
export function genaiDecoder(seed = 3, inputsEmbeds = false): ModelProto {
  const rng = new Rng(seed);
  const { hidden: H, heads, kvHeads, headSize: hd, layers, vocab: V } = GENAI;
  const b = new ModelBuilder(17);
  const w = (name: string, i: number, o: number) => b.initializer(name, DataType.FLOAT, [i, o], trainedWeight(rng, i, o, i, 2));
  const norm = (name: string) => b.initializer(name, DataType.FLOAT, [H], smallVector(rng, H, 1, 0.1));
  const table = trainedWeight(rng, V, H, 4);
  let x = inputsEmbeds
    ? b.input('inputs_embeds', DataType.FLOAT, ['batch_size', 'sequence_length', H])
    : b.op('/model/embed_tokens', 'Gather', [b.initializer('model.embed_tokens.weight', DataType.FLOAT, [V, H], table), b.input('input_ids', DataType.INT64, ['batch_size', 'sequence_length'])]);
  const mask = b.input('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']);
  // seqlens_k = sum(mask) - 1 and total_sequence_length, int32, as the builder computes them
  const s = '/model/attn_mask_reformat';
  const i64 = (v: bigint) => b.constant(s, DataType.INT64, [], BigInt64Array.of(v));
  const seqlens = b.op(s, 'Cast', [b.op(s, 'Sub', [b.op(s, 'ReduceSum', [mask, b.ints(s, [1])], { keepdims: 0 }), i64(1n)])], { to: DataType.INT32 });
  const total = b.op(s, 'Cast', [b.op(s, 'Gather', [b.op(s, 'Shape', [mask]), i64(1n)], { axis: 0 })], { to: DataType.INT32 });
  const maxLen = 128, cos = new Float32Array(maxLen * hd / 2), sin = new Float32Array(maxLen * hd / 2);
  for (let p = 0; p < maxLen; p++) for (let i = 0; i < hd / 2; i++) { const a = p / 10000 ** (2 * i / hd); cos[p * hd / 2 + i] = Math.cos(a); sin[p * hd / 2 + i] = Math.sin(a); }
  const caches = [b.initializer('cos_cache', DataType.FLOAT, [maxLen, hd / 2], cos), b.initializer('sin_cache', DataType.FLOAT, [maxLen, hd / 2], sin)];
  let residual = '';
  for (let l = 0; l < layers; l++) {
    const p = `/model/layers.${l}`, n = `model.layers.${l}`;
    let normed: string;
    if (l === 0) { normed = b.op(`${p}/input_layernorm`, 'SimplifiedLayerNormalization', [x, norm(`${n}.input_layernorm.weight`)], { axis: -1, epsilon: { float: 1e-5 } }); residual = x; }
    else { const o = b.node(`${p}/input_layernorm`, 'SkipSimplifiedLayerNormalization', [x, residual, norm(`${n}.input_layernorm.weight`)], { epsilon: { float: 1e-5 } }, 4, MS); [normed, residual] = [o[0], o[3]]; }
    const proj = (what: string, out: number) => b.op(`${p}/attn/${what}`, 'MatMul', [normed, w(`${n}.attn.${what}.MatMul.weight`, H, out)]);
    const past = (kv: string) => b.input(`past_key_values.${l}.${kv}`, DataType.FLOAT, ['batch_size', kvHeads, 'past_sequence_length', hd]);
    const [att, presentK, presentV] = b.node(`${p}/attn`, 'GroupQueryAttention', [proj('q_proj', heads * hd), proj('k_proj', kvHeads * hd), proj('v_proj', kvHeads * hd), past('key'), past('value'), seqlens, total, ...caches], { num_heads: heads, kv_num_heads: kvHeads, do_rotary: 1 }, 3, MS);
    for (const [t, kv] of [[presentK, 'key'], [presentV, 'value']]) {
      b.rename(t, `present.${l}.${kv}`);
      b.output(`present.${l}.${kv}`, DataType.FLOAT, ['batch_size', kvHeads, 'total_sequence_length', hd]);
    }
    const o = b.op(`${p}/attn/o_proj`, 'MatMul', [att, w(`${n}.attn.o_proj.MatMul.weight`, heads * hd, H)]);
    const post = b.node(`${p}/post_attention_layernorm`, 'SkipSimplifiedLayerNormalization', [o, residual, norm(`${n}.post_attention_layernorm.weight`)], { epsilon: { float: 1e-5 } }, 4, MS);
    residual = post[3];
    const gate = b.op(`${p}/mlp/gate_proj`, 'MatMul', [post[0], w(`${n}.mlp.gate_proj.MatMul.weight`, H, 4 * H)]);
    const up = b.op(`${p}/mlp/up_proj`, 'MatMul', [post[0], w(`${n}.mlp.up_proj.MatMul.weight`, H, 4 * H)]);
    const act = b.op(`${p}/mlp/act_fn`, 'Mul', [gate, b.op(`${p}/mlp/act_fn`, 'Sigmoid', [gate])]);
    x = b.op(`${p}/mlp/down_proj`, 'MatMul', [b.op(`${p}/mlp`, 'Mul', [act, up]), w(`${n}.mlp.down_proj.MatMul.weight`, 4 * H, H)]);
  }
  const final = b.node('/model/norm', 'SkipSimplifiedLayerNormalization', [x, residual, norm('model.norm.weight')], { epsilon: { float: 1e-5 } }, 4, MS)[0];
  b.rename(b.op('/lm_head', 'MatMul', [final, w('lm_head.MatMul.weight', H, V)]), 'logits');
  b.output('logits', DataType.FLOAT, ['batch_size', 'sequence_length', V]);
  return withContribDomain(b.build());
}

/** The embedding model of a genai pipeline around `genaiDecoder(seed, true)`: input_ids → inputs_embeds (the same table). */
export function genaiEmbedding(seed = 3): ModelProto {
  const { hidden: H, vocab: V } = GENAI;
  const b = new ModelBuilder(17);
  const table = b.initializer('model.embed_tokens.weight', DataType.FLOAT, [V, H], trainedWeight(new Rng(seed), V, H, 4));
  b.rename(b.op('/model/embed_tokens', 'Gather', [table, b.input('input_ids', DataType.INT64, ['batch_size', 'sequence_length'])]), 'inputs_embeds');
  b.output('inputs_embeds', DataType.FLOAT, ['batch_size', 'sequence_length', H]);
  return b.build();
}

export const BERT = { hidden: 64, heads: 4, layers: 2, vocab: 300, positions: 64 };

/** Encoder with int32 input_ids, token_type_ids and attention_mask; last_hidden_state out. */
export function optimizedBert(gelu: 'BiasGelu' | 'FastGelu' = 'BiasGelu', seed = 5): ModelProto {
  const rng = new Rng(seed);
  const { hidden: H, heads, layers, vocab: V, positions: P } = BERT;
  const b = new ModelBuilder(14);
  const w = (name: string, i: number, o: number) => b.initializer(name, DataType.FLOAT, [i, o], trainedWeight(rng, i, o, i, 2));
  const vec = (name: string, n: number, center: number, spread: number) => b.initializer(name, DataType.FLOAT, [n], smallVector(rng, n, center, spread));
  const ids = b.input('input_ids', DataType.INT32, ['batch_size', 'sequence_length']);
  const segments = b.input('token_type_ids', DataType.INT32, ['batch_size', 'sequence_length']);
  const mask = b.input('attention_mask', DataType.INT32, ['batch_size', 'sequence_length']);
  const table = (name: string, rows: number) => b.initializer(name, DataType.FLOAT, [rows, H], trainedWeight(rng, rows, H, 16));
  const [embedded, maskIndex] = b.node('/embeddings', 'EmbedLayerNormalization', [ids, segments, table('embeddings.word_embeddings.weight', V), table('embeddings.position_embeddings.weight', P), table('embeddings.token_type_embeddings.weight', 2), vec('embeddings.LayerNorm.weight', H, 1, 0.1), vec('embeddings.LayerNorm.bias', H, 0, 0.05), mask], { epsilon: { float: 1e-12 } }, 2, MS);
  let x = embedded;
  const skipNorm = (scope: string, a: string, skip: string, name: string, bias: string) => b.node(scope, 'SkipLayerNormalization', [a, skip, vec(`${name}.weight`, H, 1, 0.1), vec(`${name}.bias`, H, 0, 0.05), bias], { epsilon: { float: 1e-12 } }, 1, MS)[0];
  for (let l = 0; l < layers; l++) {
    const p = `/encoder/layer.${l}`, n = `encoder.layer.${l}`;
    const att = b.node(`${p}/attention/self`, 'Attention', [x, w(`${n}.attention.self.qkv.weight`, H, 3 * H), vec(`${n}.attention.self.qkv.bias`, 3 * H, 0, 0.02), maskIndex], { num_heads: heads }, 1, MS)[0];
    const o = b.op(`${p}/attention/output/dense`, 'MatMul', [att, w(`${n}.attention.output.dense.weight`, H, H)]);
    const n1 = skipNorm(`${p}/attention/output/LayerNorm`, o, x, `${n}.attention.output.LayerNorm`, vec(`${n}.attention.output.dense.bias`, H, 0, 0.02));
    const inner = b.op(`${p}/intermediate/dense`, 'MatMul', [n1, w(`${n}.intermediate.dense.weight`, H, 4 * H)]);
    const act = b.node(`${p}/intermediate/intermediate_act_fn`, gelu, [inner, vec(`${n}.intermediate.dense.bias`, 4 * H, 0, 0.02)], {}, 1, MS)[0];
    const o2 = b.op(`${p}/output/dense`, 'MatMul', [act, w(`${n}.output.dense.weight`, 4 * H, H)]);
    x = skipNorm(`${p}/output/LayerNorm`, o2, n1, `${n}.output.LayerNorm`, vec(`${n}.output.dense.bias`, H, 0, 0.02));
  }
  b.rename(x, 'last_hidden_state');
  b.output('last_hidden_state', DataType.FLOAT, ['batch_size', 'sequence_length', H]);
  return withContribDomain(b.build());
}
