import { writeJsonAtomic } from '../fs/json';
import type { PrunableLayer } from './layers';

/**
 * The fine-tuning handoff: per module path, what pruning kept, in a form the user's PyTorch loop applies
 * (python/quantlens_prune.py). Masks are bit-packed (numpy.packbits order, 1 = kept) and base64 encoded,
 * in the ONNX weight's layout; `transposed` says the PyTorch weight is its transpose (nn.Linear exported
 * as MatMul stores [in, out]).
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
    mask?: string;
    keptOutputs?: number[];
    keptInputs?: number[];
  }>;
}

function packBits(mask: Uint8Array): string {
  const out = new Uint8Array(Math.ceil(mask.length / 8));
  for (let i = 0; i < mask.length; i++) if (mask[i]) out[i >> 3] |= 0x80 >> (i & 7);
  return Buffer.from(out).toString('base64');
}

export function writeMasks(file: string, r: { method: string; model: string; masks?: Array<{ layer: PrunableLayer; mask: Uint8Array }>; kept?: Map<PrunableLayer, { outputs?: number[]; inputs?: number[] }> }): string {
  const doc: MaskFile = { format: 'quantlens-prune-masks', version: 1, method: r.method, model: r.model, layers: {} };
  const entry = (l: PrunableLayer) => (doc.layers[l.name] ??= { weight: l.weight, opType: l.opType, shape: l.dims, transposed: l.outAxis === 1 });
  for (const { layer, mask } of r.masks ?? []) entry(layer).mask = packBits(mask);
  for (const [layer, k] of r.kept ?? []) {
    const e = entry(layer);
    if (k.outputs) e.keptOutputs = k.outputs;
    if (k.inputs) e.keptInputs = k.inputs;
  }
  writeJsonAtomic(file, doc);
  return file;
}
