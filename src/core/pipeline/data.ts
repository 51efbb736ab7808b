// Images and prompts for a pipeline: pixel_values_N.npy (or image_N.npy) or image files (.png/.jpg, prepared
// as the data folder or the pipeline's preprocessor_config.json says) with input_ids_N.npy, one shared
// input_ids.npy, prompts.json (token-id lists, or text) or prompts.txt (text, a prompt a line): text goes
// through the pipeline's tokenizer.json.
import fs from 'node:fs';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { QuantLensError } from '../base/errors';
import { parseNpy } from '../calib/npy';
import { decodeImage } from '../calib/images';
import { keptSample } from '../calib/kept-samples';
import { folderImageOptions } from '../calib/image-options';
import { loadModel } from '../onnx/model-io';
import { DataType } from '../onnx/dtypes';
import { readJsonFile } from '../fs/json';
import { describeValue } from '../onnx/value-type';
import type { ValueInfoProto } from '../onnx/proto';
import type { GenerationSample } from './generate';
import type { Pipeline } from './layout';
import { loadTokenizer } from './tokenizer';

const index = (f: string) => Number(/_(\d+)\.npy$/.exec(f)?.[1] ?? -1);

function idsOf(t: ort.Tensor, file: string): number[] {
  if (t.type !== 'int64' && t.type !== 'int32') throw new QuantLensError(file, `holds ${t.type} values; token ids are int64 or int32`);
  return Array.from(t.data as BigInt64Array | Int32Array, Number);
}

const IMAGE_FILE = /\.(png|jpe?g)$/i;
const fileIndex = (f: string, k: number) => Number(/(\d+)\.[a-z]+$/i.exec(f)?.[1] ?? k);

// A vision encoder's pixel input, by file and version: decoding the whole model once per data folder read
// (calibration, then the judgement) would parse its weights again each time.
const visionInputs = new Map<string, ValueInfoProto>();
function visionInput(file: string): ValueInfoProto {
  const st = fs.statSync(file);
  const key = `${file}\n${st.mtimeMs}\n${st.size}`;
  if (!visionInputs.has(key)) visionInputs.set(key, loadModel(file).model.graph!.input![0]);
  return visionInputs.get(key)!;
}

/**
 * Image files decoded for the pipeline's vision model: resized to its pixel input, prepared as the data
 * folder says (preprocess.json, preprocessor_config.json) or else as the pipeline's own
 * preprocessor_config.json does (Hugging Face exports ship one), else ImageNet's way.
 */
function imageDecoder(dir: string, p: Pipeline | undefined): (f: string) => ort.Tensor {
  const vision = p?.components.find((c) => c.role === 'vision');
  if (!p || !vision) throw new QuantLensError(dir, 'holds image files, but the pipeline has no vision model to feed them to');
  const input = visionInput(vision.file);
  const shape = describeValue(input).shape ?? [];
  const own = folderImageOptions(dir);
  const { options } = own.from ? own : folderImageOptions(p.dir);
  const type = input.type?.tensor_type?.elem_type === DataType.FLOAT16 ? 'float16' : 'float32';
  // Kept for the job's later passes, as a calibration folder's images are (see keptSample).
  return (f) => keptSample(path.join(dir, f), ['pipeline', shape, options, type], (bytes) => ({ pixels: decodeImage(path.join(dir, f), shape, options, type, bytes) })).pixels;
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
  // Text prompts (prompts.txt, a line each, or strings in prompts.json) go through the pipeline's tokenizer.json.
  const tokenize = (texts: string[], file: string) => {
    const tok = pipeline ? loadTokenizer(pipeline.dir) : undefined;
    if (!tok) throw new QuantLensError(file, `holds text prompts, but ${pipeline ? `${pipeline.dir} has no tokenizer.json` : 'no pipeline tokenizer was given'}: give token ids (prompts.json as [[10, 11], ...]) or add the model's tokenizer.json`);
    return texts.map((t) => tok.encode(t));
  };
  if (files.includes('prompts.json')) {
    const file = path.join(dir, 'prompts.json');
    const j = readJsonFile(file);
    if (Array.isArray(j) && j.length && j.every((p) => typeof p === 'string')) prompts = tokenize(j as string[], file);
    else if (Array.isArray(j) && j.every((p) => Array.isArray(p) && p.every(Number.isInteger))) prompts = j as number[][];
    else throw new QuantLensError(file, 'must be a list of token-id lists, e.g. [[10, 11], [10, 12]], or of text prompts');
  } else if (files.includes('prompts.txt')) {
    const file = path.join(dir, 'prompts.txt');
    // One prompt a line; '\n' inside a line stands for a line break (chat templates have them).
    const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/).filter((l) => l.trim()).map((l) => l.replace(/\\n/g, '\n'));
    if (!lines.length) throw new QuantLensError(file, 'holds no prompt');
    prompts = tokenize(lines, file);
  }
  const shared = files.includes('input_ids.npy') ? idsOf(read('input_ids.npy'), path.join(dir, 'input_ids.npy')) : undefined;
  const promptFor = (i: number) => {
    const own = `input_ids_${i}.npy`;
    if (files.includes(own)) return idsOf(read(own), path.join(dir, own));
    return prompts?.[i] ?? prompts?.[0] ?? shared;
  };
  const n = Math.min(max, images.length || prompts?.length || 0);
  if (!n) throw new QuantLensError(dir, 'has no pixel_values_N.npy, no images and no prompts (prompts.json or prompts.txt)');
  return Array.from({ length: n }, (_, i) => {
    const prompt = promptFor(arrays.length ? index(images[i]) : pictures.length ? fileIndex(images[i], i) : i);
    if (!prompt) throw new QuantLensError(dir, `has no prompt for sample ${i} (input_ids_${i}.npy, input_ids.npy, prompts.json or prompts.txt)`);
    return { ...(images.length ? { pixels: read(images[i]) } : {}), prompt };
  });
}
