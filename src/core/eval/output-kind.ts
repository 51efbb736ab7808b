import type { GraphProto, NodeProto } from '../onnx/proto';

// Names exporters give to features rather than scores: a transformer's hidden states and its KV cache,
// CLIP's and sentence encoders' embeddings, BERT's pooler output, a backbone's feature maps.
const FEATURE_NAME = /hidden|embed|feature|state|pooler|encoder_out|memory|present|past_key/i;
// Ops whose output is a normalised feature vector, never a score per class (including onnxruntime's fused ones).
const NORMALISERS = new Set(['LayerNormalization', 'SkipLayerNormalization', 'SimplifiedLayerNormalization', 'SkipSimplifiedLayerNormalization', 'RMSNormalization', 'GroupNormalization', 'EmbedLayerNormalization']);
const RESHAPES = new Set(['Identity', 'Cast', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Flatten']);

/**
 * Whether a model output holds features (hidden states, embeddings, a cache) rather than scores over
 * classes or tokens: by its name, or by a normalisation producing it. The argmax of a hidden state picks
 * its largest feature, which judges nothing: such outputs are judged by cosine and SQNR alone.
 */
export function isFeatureOutput(graph: GraphProto, name: string): boolean {
  if (FEATURE_NAME.test(name)) return true;
  const producer = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) for (const o of n.output ?? []) producer.set(o, n);
  let p = producer.get(name);
  for (let depth = 0; p && RESHAPES.has(p.op_type ?? '') && depth < 4; depth++) p = producer.get(p.input?.[0] ?? '');
  return !!p && NORMALISERS.has(p.op_type ?? '');
}
