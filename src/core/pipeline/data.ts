// Images and prompts for a pipeline: pixel_values_N.npy (or image_N.npy) with input_ids_N.npy, one shared
// input_ids.npy, or prompts.json (a list of token-id lists) — token ids, so no tokenizer is needed.
import fs from 'node:fs';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { QuantLensError } from '../base/errors';
import { parseNpy } from '../calib/npy';
import type { GenerationSample } from './generate';

const index = (f: string) => Number(/_(\d+)\.npy$/.exec(f)?.[1] ?? -1);

function idsOf(t: ort.Tensor, file: string): number[] {
  if (t.type !== 'int64' && t.type !== 'int32') throw new QuantLensError(file, `holds ${t.type} values; token ids are int64 or int32`);
  return Array.from(t.data as BigInt64Array | Int32Array, Number);
}

export function loadPipelineSamples(dir: string, max = Infinity): GenerationSample[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new QuantLensError(dir, 'pipeline data must be a folder of pixel_values_N.npy and input_ids(.npy|_N.npy) or prompts.json');
  const files = fs.readdirSync(dir);
  const images = files.filter((f) => /^(pixel_values|image)_\d+\.npy$/.test(f)).sort((a, b) => index(a) - index(b));
  const read = (f: string) => parseNpy(fs.readFileSync(path.join(dir, f)));
  let prompts: number[][] | undefined;
  if (files.includes('prompts.json')) {
    const j = JSON.parse(fs.readFileSync(path.join(dir, 'prompts.json'), 'utf8'));
    if (!Array.isArray(j) || !j.every((p) => Array.isArray(p) && p.every(Number.isInteger))) throw new QuantLensError(path.join(dir, 'prompts.json'), 'must be a list of token-id lists, e.g. [[10, 11], [10, 12]]');
    prompts = j;
  }
  const shared = files.includes('input_ids.npy') ? idsOf(read('input_ids.npy'), path.join(dir, 'input_ids.npy')) : undefined;
  const promptFor = (i: number) => {
    const own = `input_ids_${i}.npy`;
    if (files.includes(own)) return idsOf(read(own), path.join(dir, own));
    return prompts?.[i] ?? prompts?.[0] ?? shared;
  };
  const n = Math.min(max, images.length || prompts?.length || 0);
  if (!n) throw new QuantLensError(dir, 'has no pixel_values_N.npy and no prompts.json');
  return Array.from({ length: n }, (_, i) => {
    const prompt = promptFor(images.length ? index(images[i]) : i);
    if (!prompt) throw new QuantLensError(dir, `has no prompt for sample ${i} (input_ids_${i}.npy, input_ids.npy or prompts.json)`);
    return { ...(images.length ? { pixels: read(images[i]) } : {}), prompt };
  });
}
