import fs from 'node:fs';
import path from 'node:path';
import { unzipSync } from 'fflate';
import * as ort from 'onnxruntime-node';
import { checkInputShapes, type InputShapes } from './input-shapes';
import { QuantLensError } from '../base/errors';
import { DataType, dataTypeName } from '../onnx/dtypes';
import { GraphView } from '../onnx/graph';
import { onnx, type GraphProto, type ValueInfoProto } from '../onnx/proto';
import { readTensor } from '../onnx/tensor';
import { describeValue } from '../onnx/value-type';
import { randomFeedMaker } from './random-feeds';
import { decodeImage } from './images';
import { describeImageOptions, folderImageOptions, type ImageOptions } from './image-options';
import { npyHeader, parseNpy } from './npy';
import { npyFileShape, sampleRows, stackedSamples } from './stacked-samples';
import { isTestInput, isTestOutput, naturalCompare } from './onnx-test-data';
import { keptSample } from './kept-samples';

export type Feeds = Record<string, ort.Tensor>;

/** A set of model inputs to calibrate or compare on, read one sample at a time. */
export interface CalibrationData {
  source: string;
  kind: 'folder' | 'random';
  count: number;
  /** Set when the samples are not real data. */
  warning?: string;
  /** Images: how they are prepared (mean/std, channel order, and where that came from). */
  preprocessing?: string;
  samples(): Iterable<Feeds>;
}

// Every element type onnxruntime-node feeds (strings too: text pipelines' StringNormalizer, CategoryMapper).
const ORT_TYPE: Partial<Record<number, ort.Tensor.Type>> = {
  [DataType.FLOAT]: 'float32', [DataType.FLOAT16]: 'float16', [DataType.DOUBLE]: 'float64', [DataType.INT64]: 'int64',
  [DataType.INT32]: 'int32', [DataType.INT16]: 'int16', [DataType.INT8]: 'int8', [DataType.UINT8]: 'uint8', [DataType.UINT16]: 'uint16',
  [DataType.UINT32]: 'uint32', [DataType.UINT64]: 'uint64', [DataType.BOOL]: 'bool', [DataType.STRING]: 'string',
};

function modelInputs(graph: GraphProto): ValueInfoProto[] {
  const view = new GraphView(graph);
  return (graph.input ?? []).filter((v) => view.graphInputs.has(v.name ?? ''));
}

/**
 * Opens calibration data: `random:N` (seeded, marked as not real), or a folder of .npy / .npz
 * (keys = input names) / TensorProto .pb files, ONNX test-data folders (test_data_set_N/input_K.pb),
 * per-sample subfolders of <input>.npy|.pb, or images (.png/.jpg) for a single image input.
 */
export function openCalibration(spec: string, graph: GraphProto, opts: { maxSamples?: number; image?: ImageOptions; seed?: number; inputShapes?: InputShapes } = {}): CalibrationData {
  const inputs = modelInputs(graph);
  checkInputShapes(graph, opts.inputShapes);
  const max = opts.maxSamples ?? Infinity;
  const random = /^random:(\d+)$/.exec(spec);
  if (random) {
    const n = Math.min(Number(random[1]), max);
    if (n < 1) throw new QuantLensError(undefined, `'${spec}' asks for no samples`);
    return {
      source: spec, kind: 'random', count: n, warning: `calibrated on ${n} seeded random samples, not real data`,
      *samples() {
        const make = randomFeedMaker(graph, { shapes: opts.inputShapes });
        for (let i = 0; i < n; i++) yield make((opts.seed ?? 1000) + i);
      },
    };
  }
  if (!fs.existsSync(spec) || !fs.statSync(spec).isDirectory()) throw new QuantLensError(spec, 'calibration data must be a folder (or random:N)');
  const entries = fs.readdirSync(spec).sort(naturalCompare);
  const readers: Array<() => Feeds> = [];
  // Images are prepared as the folder says (preprocess.json, Hugging Face's preprocessor_config.json), else ImageNet's way.
  const folder = entries.some((e) => /\.(png|jpe?g)$/i.test(e)) ? folderImageOptions(spec) : undefined;
  const image: ImageOptions = { ...folder?.options, ...opts.image };
  // The folder is itself one ONNX test case's data set (input_K.pb beside output_K.pb, or an input_K.pb
  // for each input): one sample. (Loose input_K.pb alone for a one-input model stay a sample each.)
  const testInputs = entries.filter(isTestInput);
  if (testInputs.length && (entries.some(isTestOutput) || (inputs.length > 1 && testInputs.length === inputs.length))) readers.push(() => fromFiles(testInputs.map((f) => path.join(spec, f)), inputs));
  // Arrays' shapes are read at open only in a folder of a few .npy/.npz files: a stacked set is one file or a
  // few, and a folder of many holds a sample in each (see pushStacked).
  const few = entries.filter((e) => /\.np[yz]$/i.test(e)).length <= 8;
  if (!readers.length) for (const e of entries) {
    const full = path.join(spec, e);
    const ext = path.extname(e).toLowerCase();
    if (fs.statSync(full).isDirectory()) {
      let files = fs.readdirSync(full).filter((f) => /\.(pb|npy)$/i.test(f)).sort(naturalCompare);
      // A test case's expected outputs (output_K.pb) are not inputs: with them, unnamed tensors (older
      // exporters write none) could not be matched to inputs by position.
      if (files.some(isTestInput)) files = files.filter(isTestInput);
      if (files.length) readers.push(() => fromFiles(files.map((f) => path.join(full, f)), inputs));
    } else if (ext === '.npz') {
      pushStacked(readers, inputs, few ? npzShapes(full, inputs) : undefined, () => fromNpz(full, inputs), full);
    } else if (ext === '.npy' || ext === '.pb') {
      if (inputs.length !== 1) continue; // loose files only make sense for one-input models
      const shape = ext === '.npy' && few ? npyFileShape(full) : undefined;
      pushStacked(readers, inputs, shape && { [inputs[0].name!]: shape }, () => ({ [inputs[0].name!]: readOne(full).tensor }), full);
    } else if (['.png', '.jpg', '.jpeg'].includes(ext)) {
      readers.push(() => fromImage(full, inputs, image, opts.inputShapes));
    }
  }
  if (readers.length === 0) {
    throw new QuantLensError(spec, `no usable calibration files (expected .npy, .npz, .pb, test_data_set_N/ folders or images${inputs.length > 1 ? `; with ${inputs.length} inputs, use .npz files or one subfolder per sample` : ''})`);
  }
  const used = readers.slice(0, Math.min(readers.length, max));
  const images = entries.filter((e) => /\.(png|jpe?g)$/i.test(e)).length;
  return {
    source: spec, kind: 'folder', count: used.length, ...(images ? { preprocessing: `${images} image${images === 1 ? '' : 's'}: ${describeImageOptions(image, folder?.from)}` } : {}),
    *samples() { for (const r of used) yield r(); },
  };
}


function readOne(file: string): { name?: string; tensor: ort.Tensor } {
  const bytes = fs.readFileSync(file);
  try {
    if (file.toLowerCase().endsWith('.npy')) return { name: path.basename(file, path.extname(file)), tensor: parseNpy(bytes) };
    const t = onnx.TensorProto.decode(bytes);
    const dec = readTensor(t);
    const type = ORT_TYPE[dec.dtype];
    if (!type) throw new Error(`unsupported data type ${dataTypeName(dec.dtype)}`);
    return { name: t.name || undefined, tensor: new ort.Tensor(type, dec.data as never, dec.dims) };
  } catch (e) {
    // ONNX test data also stores sequences and optionals as .pb (SequenceProto, OptionalProto), which read
    // as a tensor only as garbage.
    const hint = file.toLowerCase().endsWith('.pb') ? ' (a serialized sequence, map or optional is not a tensor: only tensors can be fed)' : '';
    throw new QuantLensError(file, `cannot read calibration tensor: ${e instanceof Error ? e.message : e}${hint}`);
  }
}

/** Matches tensors to inputs by name, else by position (input_0.pb, input_1.pb, ...). */
function fromFiles(files: string[], inputs: ValueInfoProto[]): Feeds {
  const read = files.map((f) => ({ file: f, ...readOne(f) }));
  const feeds: Feeds = {};
  const byName = new Map(read.map((r) => [r.name, r]));
  inputs.forEach((vi, k) => {
    const r = byName.get(vi.name ?? '') ?? (read.length === inputs.length ? read[k] : undefined);
    if (!r) throw new QuantLensError(path.dirname(files[0]), `no tensor for model input '${vi.name}' (files: ${files.map((f) => path.basename(f)).join(', ')})`);
    feeds[vi.name!] = fitInput(r.tensor, vi, r.file);
  });
  return feeds;
}

/**
 * One reader per sample of a file (`read` gives its arrays as stored, by input): several where they stack
 * samples along a fixed batch dimension (see stackedSamples), read once and handed out a batch at a time;
 * else the file is one sample. Each sample is checked against the inputs (fitInput).
 */
function pushStacked(readers: Array<() => Feeds>, inputs: ValueInfoProto[], shapes: Record<string, number[]> | undefined, read: () => Feeds, file: string): void {
  const fitted = (f: Feeds) => Object.fromEntries(inputs.map((vi) => [vi.name!, fitInput(f[vi.name!], vi, file)]));
  const k = stackedSamples(shapes, inputs);
  if (k === 1) { readers.push(() => fitted(read())); return; }
  let held: Feeds | undefined;
  for (let j = 0; j < k; j++) {
    readers.push(() => {
      if (j === 0 || !held) held = read();
      const rows = sampleRows(held, j, k);
      if (j === k - 1) held = undefined;
      return fitted(rows);
    });
  }
}

/** The shapes of a .npz file's arrays, by the input each feeds (see fromNpz); undefined if it cannot be read here. */
function npzShapes(file: string, inputs: ValueInfoProto[]): Record<string, number[]> | undefined {
  try {
    const arrays = npzArrays(fs.readFileSync(file));
    const shapes: Record<string, number[]> = {};
    for (const vi of inputs) {
      const bytes = arrayFor(arrays, vi, inputs);
      if (bytes) shapes[vi.name!] = npyHeader(bytes).shape;
    }
    return shapes;
  } catch {
    return undefined; // read in full later, where the error names the file
  }
}

/** A .npz archive's arrays by name (without '.npy'). */
const npzArrays = (bytes: Uint8Array) => new Map(Object.entries(unzipSync(bytes)).map(([k, v]) => [k.replace(/\.npy$/, ''), v]));
/** The array feeding `vi`: by its name, or the only one for a one-input model. */
const arrayFor = (arrays: Map<string, Uint8Array>, vi: ValueInfoProto, inputs: ValueInfoProto[]) => arrays.get(vi.name ?? '') ?? (inputs.length === 1 && arrays.size === 1 ? [...arrays.values()][0] : undefined);

/** A .npz file's arrays by the input each feeds, as stored (pushStacked checks them against the inputs). */
function fromNpz(file: string, inputs: ValueInfoProto[]): Feeds {
  let arrays: Map<string, Uint8Array>;
  try {
    arrays = npzArrays(fs.readFileSync(file));
  } catch (e) {
    throw new QuantLensError(file, `is not a readable .npz archive: ${e instanceof Error ? e.message : e}`);
  }
  const feeds: Feeds = {};
  for (const vi of inputs) {
    const bytes = arrayFor(arrays, vi, inputs);
    if (!bytes) throw new QuantLensError(file, `has no array named '${vi.name}' (keys: ${[...arrays.keys()].join(', ')})`);
    let t: ort.Tensor;
    try {
      t = parseNpy(bytes);
    } catch (e) {
      throw new QuantLensError(file, `array '${vi.name}': ${e instanceof Error ? e.message : e}`);
    }
    feeds[vi.name!] = t;
  }
  return feeds;
}

function fromImage(file: string, inputs: ValueInfoProto[], opts?: ImageOptions, shapes?: InputShapes): Feeds {
  const images = inputs.filter((v) => (describeValue(v).shape ?? []).length === 4);
  if (images.length !== 1) throw new QuantLensError(file, 'images need a model with exactly one 4-D (image) input');
  const vi = images[0];
  // A dynamic height/width takes the size --input-shape gives.
  const want = ORT_TYPE[vi.type?.tensor_type?.elem_type ?? 0];
  const type = want === 'uint8' || want === 'float16' ? want : 'float32';
  for (const other of inputs) if (other !== vi) throw new QuantLensError(file, `model input '${other.name}' has no data: images feed only '${vi.name}'`);
  const shape = shapes?.[vi.name!] ?? describeValue(vi).shape!;
  // Decoding is the dear part, and a job reads each sample in several passes (see keptSample).
  return keptSample(file, [vi.name, shape, opts ?? {}, type], (bytes) => ({ [vi.name!]: fitInput(decodeImage(file, shape, opts, type, bytes), vi, file) }));
}

/** Checks a tensor against the declared input; adds a missing batch dimension of 1. */
export function fitInput(t: ort.Tensor, vi: ValueInfoProto, file: string): ort.Tensor {
  const d = describeValue(vi);
  const want = ORT_TYPE[vi.type?.tensor_type?.elem_type ?? 0];
  if (want && t.type !== want) {
    if (want === 'float32' && t.type === 'float64') t = new ort.Tensor('float32', Float32Array.from(t.data as Float64Array), t.dims);
    else if (want === 'int64' && t.type === 'int32') t = new ort.Tensor('int64', BigInt64Array.from(t.data as Int32Array, (v) => BigInt(v)), t.dims);
    else throw new QuantLensError(file, `input '${vi.name}' must be ${want}, the file holds ${t.type}`);
  }
  if (d.shape) {
    let dims = [...t.dims];
    if (dims.length === d.shape.length - 1) dims = [1, ...dims];
    const bad = dims.length !== d.shape.length || d.shape.some((s, k) => typeof s === 'number' && s > 0 && dims[k] !== s);
    if (bad) throw new QuantLensError(file, `input '${vi.name}' has shape [${t.dims}], the model expects [${d.shape.map((s) => s ?? '?').join(', ')}]`);
    if (dims.length !== t.dims.length) t = new ort.Tensor(t.type, t.data as never, dims);
  }
  return t;
}
