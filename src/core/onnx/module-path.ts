import type { NodeProto } from './proto';
import type { GraphView } from './graph';

/**
 * Dotted module path from an exporter's names:
 *   node   '/vision_model/encoder/layers.0/self_attn/q_proj/MatMul' -> 'vision_model.encoder.layers.0.self_attn.q_proj'
 *   weight 'vision_model.encoder.layers.0.self_attn.q_proj.weight'  -> 'vision_model.encoder.layers.0.self_attn.q_proj'
 * Weights the exporter renamed (`onnx::MatMul_123`) carry no path: the consumer node's name is used instead.
 */
export function modulePathFromNodeName(name: string): string {
  if (!name.startsWith('/')) return name.replace(/\//g, '.');
  const parts = name.split('/').filter(Boolean);
  parts.pop(); // the op part: 'MatMul', 'Add_1', ...
  // torch.onnx names a child of a Sequential/ModuleList by its qualified name within its parent's scope:
  // '/features/features.1/block/block.0/block.0.0/Conv' is module 'features.1.block.0.0', so a part that
  // extends the one before it ('features' -> 'features.1') replaces it rather than adding to it.
  const path: string[] = [];
  for (const p of parts) {
    if (path.length && p.startsWith(`${path[path.length - 1]}.`)) path[path.length - 1] = p;
    else path.push(p);
  }
  return path.join('.');
}

const PARAM_SUFFIX = /\.(weight|bias|weight_orig|in_proj_weight|in_proj_bias|running_mean|running_var|scale|gamma|beta)$/;

export function modulePathFromWeightName(name: string): string | undefined {
  if (name.startsWith('onnx::') || !name.includes('.')) return undefined;
  return PARAM_SUFFIX.test(name) ? name.replace(PARAM_SUFFIX, '') : undefined;
}

const WEIGHT_PATH_OPS = new Set(['Transpose', 'Reshape', 'Identity', 'Cast', 'Squeeze', 'Unsqueeze', 'DequantizeLinear']);

/**
 * The stored tensor a weight input comes from: itself, or (for an input with no path of its own) the
 * tensor behind the Transpose/Reshape/Cast/DequantizeLinear an exporter put in between, as torch.onnx
 * writes a functional F.linear(x, self.qkv.weight) without constant folding.
 */
export function weightSource(view: GraphView, name: string): string {
  let at = name;
  for (let depth = 0; depth < 4 && !view.constant(at); depth++) {
    const p = view.producer.get(at);
    if (!p || !WEIGHT_PATH_OPS.has(p.op_type ?? '') || !p.input?.[0]) return name;
    at = p.input[0];
  }
  return view.constant(at) ? at : name;
}

/** The module a node belongs to: its weight's name when that carries a path, else the node's own name. */
export function modulePathOf(node: NodeProto, weightName?: string): string {
  const fromWeight = weightName ? modulePathFromWeightName(weightName) : undefined;
  if (fromWeight) return fromWeight;
  return modulePathFromNodeName(node.name || node.output?.[0] || node.op_type || '');
}
