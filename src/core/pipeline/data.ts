// Images and prompts for a pipeline: pixel_values_N.npy (or image_N.npy) or image files (.png/.jpg, prepared
// as the data folder or the pipeline's preprocessor_config.json says) with input_ids_N.npy, one shared
// input_ids.npy, or prompts.json (a list of token-id lists) — token ids, so no tokenizer is needed.
import fs from 'node:fs';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { QuantLensError } from '../base/errors';
import { parseNpy } from '../calib/npy';
import { decodeImage, folderImageOptions } from '../calib/images';
import { loadModel } from '../onnx/model-io';
import { describeValue } from '../onnx/value-type';
import type { GenerationSample } from './generate';
import type { Pipeline } from './layout';

const index = (f: string) => Number(/_(\d+)\.npy$/.exec(f)?.[1] ?? -1);

function idsOf(t: ort.Tensor, file: string): number[] {
  if (t.type !== 'int64' && t.type !== 'int32') throw new QuantLensError(file, `holds ${t.type} values; token ids are int64 or int32`);
  return Array.from(t.data as BigInt64Array | Int32Array, Number);
}

const IMAGE_FILE = /\.(png|jpe?g)$/i;
const fileIndex = (f: string, k: number) => Number(/(\d+)\.[a-z]+$/i.exec(f)?.[1] ?? k);

/**
 * Image files decoded for the pipeline's vision model: resized to its pixel input, prepared as the data
 * folder says (preprocess.json, preprocessor_config.json) or else as the pipeline's own
 * preprocessor_config.json does (Hugging Face exports ship one), else ImageNet's way.
 */
function imageDecoder(dir: string, p: Pipeline | undefined): (f: string) => ort.Tensor {
  const vision = p?.components.find((c) => c.role === 'vision');
  if (!p || !vision) throw new QuantLensError(dir, 'holds image files, but the pipeline has no vision model to feed them to');
  const input = loadModel(vision.file).model.graph!.input![0];
  const shape = describeValue(input).shape ?? [];
  const own = folderImageOptions(dir);
  const { options } = own.from ? own : folderImageOptions(p.dir);
  const type = input.type?.tensor_type?.elem_type === 10 ? 'float16' : 'float32';
  return (f) => decodeImage(path.join(dir, f), shape, options, type);
}

export function loadPipelineSamples(dir: string, max = Infinity, pipeline?: Pipeline): GenerationSample[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new QuantLensError(dir, 'pipeline data must be a folder of pixel_values_N.npy (or images) and input_ids(.npy|_N.npy) or prompts.json');
  const files = fs.readdirSync(dir);
  const arrays = files.filter((f) => /^(pixel_values|image)_\d+\.npy$/.test(f)).sort((a, b) => index(a) - index(b));
  const pictures = arrays.length ? [] : files.filter((f) => IMAGE_FILE.test(f)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const images = arrays.length ? arrays : pictures;
  const decode = pictures.length ? imageDecoder(dir, pipeline) : undefined;
  const read = (f: string) => (decode && IMAGE_FILE.test(f) ? decode(f) : parseNpy(fs.readFileSync(path.join(dir, f))));
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
  if (!n) throw new QuantLensError(dir, 'has no pixel_values_N.npy, no images and no prompts.json');
  return Array.from({ length: n }, (_, i) => {
    const prompt = promptFor(arrays.length ? index(images[i]) : pictures.length ? fileIndex(images[i], i) : i);
    if (!prompt) throw new QuantLensError(dir, `has no prompt for sample ${i} (input_ids_${i}.npy, input_ids.npy or prompts.json)`);
    return { ...(images.length ? { pixels: read(images[i]) } : {}), prompt };
  });
}
