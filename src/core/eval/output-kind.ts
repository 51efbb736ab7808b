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
  return !!p && (NORMALISERS.has(p.op_type ?? '') || decomposedNorm(p, producer, graph));
}

/**
 * A LayerNorm or RMSNorm as exporters below opset 17 write it: (x − mean) / Sqrt(var + eps), or
 * x · Reciprocal(Sqrt(...)), then a stored scale and bias (torchaudio's Conformer ends in one).
 */
function decomposedNorm(p: NodeProto, producer: Map<string, NodeProto>, graph: GraphProto): boolean {
  const stored = new Set([...(graph.initializer ?? []).map((t) => t.name), ...(graph.node ?? []).filter((n) => n.op_type === 'Constant').flatMap((n) => n.output ?? [])]);
  const op = (n: NodeProto | undefined) => n?.op_type ?? '';
  // Past an epsilon Add (a stored operand), to the value's producer.
  const pastEps = (v: string | undefined) => {
    const q = producer.get(v ?? '');
    return op(q) === 'Add' && (q!.input ?? []).some((i) => stored.has(i)) ? producer.get((q!.input ?? []).find((i) => !stored.has(i)) ?? '') : q;
  };
  // The square root of a mean over the data (a variance, a mean square), not of a stored size (attention's scale).
  const fromSqrt = (v: string | undefined) => {
    const q = pastEps(v);
    return op(q) === 'Sqrt' && op(pastEps(q!.input?.[0])) === 'ReduceMean';
  };
  // The affine part: a bias Add and a scale Mul, each with a stored operand.
  let n: NodeProto | undefined = p;
  for (let k = 0; k < 2 && n && (op(n) === 'Add' || op(n) === 'Mul') && (n.input ?? []).some((i) => stored.has(i)); k++) n = producer.get((n.input ?? []).find((i) => !stored.has(i)) ?? '');
  if (op(n) === 'Div') return fromSqrt(n!.input?.[1]);
  if (op(n) !== 'Mul') return false;
  return (n!.input ?? []).some((i) => {
    const q = producer.get(i);
    return (op(q) === 'Reciprocal' && fromSqrt(q!.input?.[0])) || (op(q) === 'Div' && stored.has(q!.input?.[0] ?? '') && fromSqrt(q!.input?.[1]));
  });
}
