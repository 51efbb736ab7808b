import fs from 'node:fs';
import path from 'node:path';
import { QuantLensError } from '../base/errors';
import { dataTypeInfo, rawByteLength } from './dtypes';
import { externalDataRef, isExternal, resolveExternalPath, type ModelLocation } from './external-data';
import { onnx, type ModelProto, type TensorProto } from './proto';
import { tensorDims, tensorNumel, tensorRawBytes } from './tensor';
import { walkTensors } from './walk';
import { upgradeLegacyOpset } from './legacy-opset';
import { AtomicFile } from '../fs/atomic';
import { writeEncoded } from './stream-encode';
import { appendExternal, type TensorSpill } from './tensor-spill';

/** A loaded model and where it came from (external data is read lazily from `loc.dir`). */
export interface LoadedModel {
  model: ModelProto;
  loc: ModelLocation;
  /** Bytes of the .onnx file itself. */
  fileBytes: number;
  /** External data files the model references (resolved inside its folder) and their total size. */
  externalFiles: string[];
  externalBytes: number;
  /** The file is stamped with an opset onnxruntime cannot run (below 7): it was read as opset 7 (see upgradeLegacyOpset). */
  legacyOpset?: { from: number; rewritten: number };
}

/** Protobuf's hard limit on one message: larger models must keep tensors in external data. */
export const PROTOBUF_LIMIT = 2 ** 31 - 1;

/** Parses ONNX bytes; `file` names the source in error messages. */
export function decodeModel(bytes: Uint8Array, file: string): ModelProto {
  if (bytes.length === 0) throw new QuantLensError(file, 'is empty, not an ONNX model');
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const truncated = /index out of range|premature|end of/i.test(msg);
    // A text file (JSON, a script, an LFS pointer) parses as garbage protobuf: say what it is instead.
    const head = bytes.subarray(0, 512);
    const text = head.length > 0 && head.every((c) => c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127));
    if (text) throw new QuantLensError(file, `is a text file, not an ONNX model${/^version https:\/\/git-lfs/.test(Buffer.from(head).toString('latin1')) ? ' (a Git LFS pointer: run git lfs pull)' : ''}`);
    throw new QuantLensError(file, truncated ? 'is truncated or corrupt (protobuf data ends early)' : `is not an ONNX model (protobuf decoding failed: ${msg.split('\n')[0]})`);
  }
  if (!model.graph || !(Number(model.ir_version) > 0) || (model.opset_import ?? []).length === 0 && Number(model.ir_version) >= 3) {
    throw new QuantLensError(file, 'is not an ONNX model (no graph, IR version or opset import)');
  }
  return model;
}

/** Checks every stored tensor: known data type, sane dims, data size matching the shape, external data inside the folder. */
export function validateTensors(model: ModelProto, loc: ModelLocation): { externalFiles: string[]; externalBytes: number } {
  const files = new Map<string, number>();
  for (const { tensor } of walkTensors(model.graph!)) {
    const info = dataTypeInfo(tensor.data_type ?? 0);
    if (!info) throw new QuantLensError(loc.file, `tensor '${tensor.name}' has unknown data type ${tensor.data_type}`);
    const n = tensorNumel(tensor, loc);
    if (isExternal(tensor)) {
      const ref = externalDataRef(tensor, loc);
      const file = resolveExternalPath(loc, ref.location);
      if (!files.has(file)) files.set(file, fs.statSync(file).size);
      const size = files.get(file)!;
      const length = Number.isNaN(ref.length) ? size - ref.offset : ref.length;
      const expected = rawByteLength(info.code, n);
      if (length !== expected) throw new QuantLensError(loc.file, `tensor '${tensor.name}' external data holds ${length} bytes but its shape needs ${expected}`);
      if (ref.offset + length > size) throw new QuantLensError(loc.file, `tensor '${tensor.name}' external data runs past the end of '${ref.location}'`);
    } else if (info.bits > 0 && tensor.raw_data && tensor.raw_data.length > 0) {
      const expected = rawByteLength(info.code, n);
      if (tensor.raw_data.length !== expected) {
        throw new QuantLensError(loc.file, `tensor '${tensor.name}' raw_data holds ${tensor.raw_data.length} bytes but its shape [${tensorDims(tensor)}] needs ${expected}`);
      }
    }
  }
  return { externalFiles: [...files.keys()], externalBytes: [...files.values()].reduce((a, b) => a + b, 0) };
}

/** Loads an ONNX model file: parses it, validates its tensors, and leaves external data on disk until read. */
export function loadModel(file: string): LoadedModel {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new QuantLensError(file, 'no such file');
  }
  if (stat.isDirectory()) throw new QuantLensError(file, 'is a directory, not an ONNX model');
  if (stat.size > PROTOBUF_LIMIT) throw new QuantLensError(file, `is ${stat.size} bytes, over protobuf's 2 GB limit (large models must use external data)`);
  const bytes = fs.readFileSync(file);
  const model = decodeModel(bytes, file);
  const loc: ModelLocation = { file, dir: path.dirname(path.resolve(file)) };
  const ext = validateTensors(model, loc);
  const legacyOpset = upgradeLegacyOpset(model, file);
  return { model, loc, fileBytes: stat.size, ...ext, ...(legacyOpset ? { legacyOpset } : {}) };
}

export interface SaveOptions {
  /** 'auto': external when the model would pass the protobuf limit or when `dataFile` is given. */
  externalData?: 'auto' | 'always' | 'never';
  /** Name of the external data file, beside the output (default `<output name>.data`). */
  dataFile?: string;
  /** Tensors at least this big go to the external file (default 1024 bytes, as onnx does). */
  sizeThreshold?: number;
  /** Where the model was loaded from, to read tensors that are external in the source. */
  source?: ModelLocation;
  /** Byte budget of the protobuf before switching to external data under 'auto' (tests lower it). */
  inlineLimit?: number;
  /** Tensors already streamed to the output's data file while editing: the rest is appended to that file. */
  spill?: TensorSpill;
}

export interface SaveResult {
  output: string;
  bytes: number;
  dataFile?: string;
  dataBytes?: number;
}

/** Bytes the tensor's data takes once stored as raw_data (0 for strings and unknown types). */
function inlineBytes(t: TensorProto, source?: ModelLocation): number {
  const info = dataTypeInfo(t.data_type ?? 0);
  return !info || info.bits === 0 ? 0 : rawByteLength(info.code, tensorNumel(t, source));
}

/**
 * Writes a model atomically (temp file + rename, data file first). Tensors that are external in the
 * source are copied from it; with external data on, large tensors go to one data file with 4 KiB
 * aligned offsets. The model object is left as it was.
 */
export function saveModel(model: ModelProto, output: string, opts: SaveOptions = {}): SaveResult {
  const spill = opts.spill;
  const mode = spill ? 'always' : opts.externalData ?? 'auto';
  const threshold = opts.sizeThreshold ?? 1024;
  const tensors = [...walkTensors(model.graph!)].map((s) => s.tensor).filter((t) => dataTypeInfo(t.data_type ?? 0)?.bits && !spill?.has(t));
  const total = tensors.reduce((a, t) => a + inlineBytes(t, opts.source), 0);
  const limit = opts.inlineLimit ?? PROTOBUF_LIMIT - (64 << 20);
  const external = mode === 'always' || (mode === 'auto' && (total > limit || !!opts.dataFile));
  if (!external && total > PROTOBUF_LIMIT) {
    throw new QuantLensError(output, 'the model is over 2 GB and must be saved with external data');
  }
  const restore: Array<() => void> = [];
  const dataName = spill?.dataName ?? opts.dataFile ?? `${path.basename(output)}.data`;
  const dataPath = path.join(path.dirname(path.resolve(output)), dataName);
  if (spill && path.resolve(spill.dataPath) !== dataPath) throw new Error(`the streamed data file ${spill.dataPath} is not the one ${output} names`);
  let data: AtomicFile | undefined = spill?.data;
  let proto: AtomicFile | undefined;
  try {
    // Bring external tensors of the source inline, or move large ones out, on the objects themselves; undone in finally.
    for (const t of tensors) {
      const size = inlineBytes(t, opts.source);
      const goesOut = external && size >= threshold;
      if (!goesOut && !isExternal(t)) continue;
      const bytes = tensorRawBytes(t, opts.source);
      const saved = { raw_data: t.raw_data, external_data: t.external_data, data_location: t.data_location, fields: clearTypedFields(t) };
      restore.push(() => Object.assign(t, { raw_data: saved.raw_data, external_data: saved.external_data, data_location: saved.data_location }, saved.fields));
      if (!goesOut) {
        Object.assign(t, { raw_data: bytes, external_data: [], data_location: 0 });
        continue;
      }
      data ??= new AtomicFile(dataPath);
      appendExternal(t, bytes, data, dataName);
    }
    const writer = onnx.ModelProto.encode(model);
    if (writer.len > PROTOBUF_LIMIT) throw new QuantLensError(output, 'the encoded model is over 2 GB even with external data');
    proto = new AtomicFile(output);
    const bytes = writeEncoded(writer, proto);
    const dataBytes = data?.position;
    // The data file goes in place first: a model is never visible before the tensors it points to.
    data?.commit();
    proto.commit();
    return { output, bytes, ...(data ? { dataFile: dataPath, dataBytes } : {}) };
  } catch (e) {
    data?.abort();
    proto?.abort();
    throw e;
  } finally {
    for (const r of restore.reverse()) r();
  }
}

/** Moves typed-field data out of the way (raw_data replaces it); returns what to put back. */
function clearTypedFields(t: TensorProto): Partial<TensorProto> {
  const saved: Partial<TensorProto> = {};
  for (const k of ['float_data', 'int32_data', 'int64_data', 'double_data', 'uint64_data'] as const) {
    if ((t[k]?.length ?? 0) > 0) {
      (saved as Record<string, unknown>)[k] = t[k];
      (t as Record<string, unknown>)[k] = [];
    }
  }
  return saved;
}
