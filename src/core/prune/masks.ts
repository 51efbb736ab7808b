import { writeJsonAtomic } from '../fs/json';
import { modulePathFromWeightName } from '../onnx/module-path';
import type { PrunableLayer } from './layers';
import type { StructuredSlices } from './structured/structured';

/**
 * The fine-tuning handoff: per module path, what pruning kept, in a form the user's PyTorch loop applies
 * (python/quantlens_prune.py). Masks are bit-packed (numpy.packbits order, 1 = kept) and base64 encoded,
 * in the ONNX weight's layout; `transposed` says the PyTorch weight is its transpose (nn.Linear exported
 * as MatMul stores [in, out]).
 *
 * Structured runs also list what lost channels besides the layers' weights: per-channel parameters by
 * their PyTorch name (BatchNorm and LayerNorm scales, embedding tables; `axis` in that tensor), norm
 * modules whose statistics now run over the kept channels (--prune-norm; `axis` counted from the end),
 * and model inputs whose kept channels the pruned graph gathers. Parameters the exporter renamed
 * (`onnx::Mul_12`) have no PyTorch name, nor do norms whose nodes carry no module scope: they are
 * counted in `unnamedParams` and `unnamedNorms`.
 */
export interface MaskFile {
  format: 'quantlens-prune-masks';
  version: 1;
  method: string;
  model: string;
  layers: Record<string, {
    weight: string;
    opType: string;
    shape: number[];
    transposed: boolean;
    /** The weight axis of the outputs in PyTorch's layout when not 0 (ConvTranspose). */
    outputAxis?: number;
    mask?: string;
    keptOutputs?: number[];
    keptInputs?: number[];
    /** Added to the bias (per original output) by bias compensation: the removed inputs' mean contribution. */
    biasShift?: number[];
  }>;
  params?: Record<string, { shape: number[]; axis: number; kept: number[] }>;
  norms?: Record<string, { node: string; axis: number; kept: number[] }>;
  inputs?: Record<string, { axis: number; kept: number[] }>;
  unnamedParams?: number;
  unnamedNorms?: number;
}

function packBits(mask: Uint8Array): string {
  const out = new Uint8Array(Math.ceil(mask.length / 8));
  for (let i = 0; i < mask.length; i++) if (mask[i]) out[i >> 3] |= 0x80 >> (i & 7);
  return Buffer.from(out).toString('base64');
}

export function writeMasks(file: string, r: { method: string; model: string; masks?: Array<{ layer: PrunableLayer; mask: Uint8Array }>; kept?: Map<PrunableLayer, { outputs?: number[]; inputs?: number[] }>; slices?: StructuredSlices; shifts?: Map<PrunableLayer, Float64Array> }): string {
  const doc: MaskFile = { format: 'quantlens-prune-masks', version: 1, method: r.method, model: r.model, layers: {} };
  // PyTorch stores Linear weights [out, in] (ONNX MatMul: [in, out]) and ConvTranspose ones [in, out, ...] as ONNX does.
  const entry = (l: PrunableLayer) => (doc.layers[l.name] ??= { weight: l.weight, opType: l.opType, shape: l.dims, transposed: l.outAxis === 1 && l.dims.length === 2, ...(l.opType === 'ConvTranspose' ? { outputAxis: 1 } : {}) });
  for (const { layer, mask } of r.masks ?? []) entry(layer).mask = packBits(mask);
  for (const [layer, k] of r.kept ?? []) {
    const e = entry(layer);
    if (k.outputs) e.keptOutputs = k.outputs;
    if (k.inputs) e.keptInputs = k.inputs;
  }
  for (const [layer, shift] of r.shifts ?? []) entry(layer).biasShift = Array.from(shift, (v) => Number(v.toPrecision(9)));
  if (r.slices) {
    const s = r.slices;
    const named = s.params.filter((p) => modulePathFromWeightName(p.name));
    if (named.length) doc.params = Object.fromEntries(named.map((p) => [p.name, { shape: p.dims, axis: p.axis, kept: p.kept }]));
    if (named.length < s.params.length) doc.unnamedParams = s.params.length - named.length;
    // A norm's module path comes from its node's scope ('/a/b/ReduceMean'); other names map to no module.
    const scoped = s.norms.filter((n) => n.node.startsWith('/'));
    if (scoped.length) doc.norms = Object.fromEntries(scoped.map((n) => [n.module, { node: n.node, axis: n.axis, kept: n.kept }]));
    if (scoped.length < s.norms.length) doc.unnamedNorms = s.norms.length - scoped.length;
    if (s.inputs.length) doc.inputs = Object.fromEntries(s.inputs.map((i) => [i.name, { axis: i.axis, kept: i.kept }]));
  }
  writeJsonAtomic(file, doc);
  return file;
}
