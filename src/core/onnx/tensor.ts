import { QuantLensError } from '../base/errors';
import { DataType, dataTypeInfo, dataTypeName, rawByteLength, type ArrayCtor, type TypedArray } from './dtypes';
import { isExternal, readExternalBytes, type ModelLocation, type ScratchBuffer } from './external-data';
import { bfloat16ToFloat, halfToFloat } from './half';
import type { TensorProto } from './proto';

/** A decoded tensor: fp16/bf16/fp8 hold raw bits, int4/uint4 one element per byte, strings as text. */
export interface Tensor {
  dtype: DataType;
  dims: number[];
  data: TypedArray | string[];
}

const where = (loc?: ModelLocation) => loc?.file;

export function tensorDims(t: TensorProto, loc?: ModelLocation): number[] {
  const dims = (t.dims ?? []).map(Number);
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new QuantLensError(where(loc), `tensor '${t.name}' has an invalid dimension ${d}`);
  }
  return dims;
}

export function tensorNumel(t: TensorProto, loc?: ModelLocation): number {
  const n = tensorDims(t, loc).reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(n)) throw new QuantLensError(where(loc), `tensor '${t.name}' has too many elements`);
  return n;
}

function checkType(t: TensorProto, loc?: ModelLocation) {
  const info = dataTypeInfo(t.data_type ?? 0);
  if (!info) throw new QuantLensError(where(loc), `tensor '${t.name}' has unknown data type ${t.data_type}`);
  return info;
}

/** Bytes of a little-endian copy-free view when aligned, copied when not (typed arrays need alignment). */
function viewAs(bytes: Uint8Array, ctor: ArrayCtor, count: number): TypedArray {
  const size = ctor.BYTES_PER_ELEMENT;
  if (bytes.byteOffset % size === 0) return new ctor(bytes.buffer, bytes.byteOffset, count);
  const copy = new Uint8Array(count * size);
  copy.set(bytes.subarray(0, count * size));
  return new ctor(copy.buffer, 0, count);
}

function unpack4(bytes: ArrayLike<number>, count: number, signed: boolean): Int8Array | Uint8Array {
  const out = signed ? new Int8Array(count) : new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const b = bytes[i >> 1] & 0xff;
    const nib = i & 1 ? b >> 4 : b & 0x0f;
    out[i] = signed && nib & 0x8 ? nib - 16 : nib;
  }
  return out;
}

/** Packs int4/uint4 values two per byte, low nibble first, as ONNX stores them. */
export function pack4(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(values.length / 2));
  for (let i = 0; i < values.length; i++) out[i >> 1] |= (values[i] & 0x0f) << (i & 1 ? 4 : 0);
  return out;
}

/** The tensor's little-endian bytes as raw_data would hold them, wherever they are stored. */
export function tensorRawBytes(t: TensorProto, loc?: ModelLocation, scratch?: ScratchBuffer): Uint8Array {
  const info = checkType(t, loc);
  if (info.bits === 0) throw new QuantLensError(where(loc), `tensor '${t.name}' holds strings, which have no raw bytes`);
  const n = tensorNumel(t, loc);
  const expected = rawByteLength(info.code, n);
  if (isExternal(t)) {
    if (!loc) throw new QuantLensError(undefined, `tensor '${t.name}' has external data but no model location was given`);
    return readExternalBytes(t, loc, expected, scratch);
  }
  if (t.raw_data && t.raw_data.length > 0) {
    if (t.raw_data.length !== expected) {
      throw new QuantLensError(where(loc), `tensor '${t.name}' raw_data holds ${t.raw_data.length} bytes but ${dataTypeName(info.code)}[${tensorDims(t, loc).join(',')}] needs ${expected}`);
    }
    return t.raw_data;
  }
  return typedFieldsToRaw(t, info.code, n, loc);
}

function typedFieldsToRaw(t: TensorProto, code: DataType, n: number, loc?: ModelLocation): Uint8Array {
  const info = dataTypeInfo(code)!;
  const src = (t[info.field!] ?? []) as ArrayLike<number>;
  const wantLen = info.bits === 4 && src.length !== n ? Math.ceil(n / 2) : n;
  const complexFactor = code === DataType.COMPLEX64 || code === DataType.COMPLEX128 ? 2 : 1;
  if (src.length !== wantLen * complexFactor && n > 0) {
    throw new QuantLensError(where(loc), `tensor '${t.name}' holds ${src.length} values in ${info.field} but its shape needs ${n * complexFactor}`);
  }
  if (info.bits === 4) return src.length === n ? pack4(src) : Uint8Array.from(src, (v) => v & 0xff);
  const out = new (info.array!)(n * complexFactor);
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    for (let i = 0; i < src.length; i++) out[i] = BigInt(src[i]);
  } else {
    (out as Exclude<TypedArray, BigInt64Array | BigUint64Array>).set(src as ArrayLike<number>);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Decodes a TensorProto (raw_data, typed fields or external data) into a typed array. */
export function readTensor(t: TensorProto, loc?: ModelLocation, scratch?: ScratchBuffer): Tensor {
  const info = checkType(t, loc);
  const dims = tensorDims(t, loc);
  const n = tensorNumel(t, loc);
  if (info.code === DataType.STRING) {
    const strs = (t.string_data ?? []).map((b) => Buffer.from(b).toString('utf8'));
    if (strs.length !== n) throw new QuantLensError(where(loc), `tensor '${t.name}' holds ${strs.length} strings but its shape needs ${n}`);
    return { dtype: info.code, dims, data: strs };
  }
  const bytes = tensorRawBytes(t, loc, scratch);
  if (info.bits === 4) return { dtype: info.code, dims, data: unpack4(bytes, n, info.code === DataType.INT4) };
  const count = info.code === DataType.COMPLEX64 || info.code === DataType.COMPLEX128 ? n * 2 : n;
  return { dtype: info.code, dims, data: viewAs(bytes, info.array!, count) };
}

/** Any numeric tensor as float32 values (fp16/bf16 converted; int64 through Number). */
export function toFloat32(t: Tensor): Float32Array {
  const d = t.data;
  if (Array.isArray(d)) throw new Error('string tensor has no float values');
  if (t.dtype === DataType.FLOAT) return d as Float32Array;
  const out = new Float32Array(d.length);
  if (t.dtype === DataType.FLOAT16) for (let i = 0; i < d.length; i++) out[i] = halfToFloat(d[i] as number);
  else if (t.dtype === DataType.BFLOAT16) for (let i = 0; i < d.length; i++) out[i] = bfloat16ToFloat(d[i] as number);
  else for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
  return out;
}

/** A 1-D int64 tensor (shapes, indices, split sizes, slice bounds). */
export function int64Tensor(name: string, values: number[]): TensorProto {
  return makeTensor(name, DataType.INT64, [values.length], BigInt64Array.from(values.map(BigInt)));
}

/** Builds a TensorProto that stores `data` in raw_data (int4/uint4 given one value per element are packed). */
export function makeTensor(name: string, dtype: DataType, dims: number[], data: TypedArray): TensorProto {
  const n = dims.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`makeTensor(${name}): ${data.length} values for shape [${dims}]`);
  const raw = dtype === DataType.INT4 || dtype === DataType.UINT4
    ? pack4(data as ArrayLike<number>)
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { name, data_type: dtype, dims, raw_data: raw };
}
