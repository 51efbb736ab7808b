// NumPy .npy reader. The format is a fixed magic, a Python-dict header and the raw array, so a few
// lines of our own suffice (the npm parsers we found drop float16 and big-endian arrays).
import * as ort from 'onnxruntime-node';

const DTYPES: Record<string, { type: ort.Tensor.Type; size: number; ctor: { new (b: ArrayBuffer): ArrayLike<number | bigint> } }> = {
  f4: { type: 'float32', size: 4, ctor: Float32Array },
  f8: { type: 'float64', size: 8, ctor: Float64Array },
  f2: { type: 'float16', size: 2, ctor: Uint16Array },
  i1: { type: 'int8', size: 1, ctor: Int8Array },
  u1: { type: 'uint8', size: 1, ctor: Uint8Array },
  i2: { type: 'int16', size: 2, ctor: Int16Array },
  u2: { type: 'uint16', size: 2, ctor: Uint16Array },
  i4: { type: 'int32', size: 4, ctor: Int32Array },
  u4: { type: 'uint32', size: 4, ctor: Uint32Array },
  i8: { type: 'int64', size: 8, ctor: BigInt64Array },
  u8: { type: 'uint64', size: 8, ctor: BigUint64Array },
  b1: { type: 'bool', size: 1, ctor: Uint8Array },
};

/** The header of .npy bytes (the start of the file is enough): dtype, shape, and where the data starts. */
export function npyHeader(bytes: Uint8Array): { descr: string; shape: number[]; dataStart: number } {
  if (bytes.length < 10 || bytes[0] !== 0x93 || String.fromCharCode(...bytes.subarray(1, 6)) !== 'NUMPY') throw new Error('not a .npy file');
  const major = bytes[6];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = Buffer.from(bytes.subarray(start, start + headerLen)).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1] === 'True';
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new Error('malformed .npy header');
  if (fortran) throw new Error('Fortran-ordered .npy arrays are not supported (save with np.ascontiguousarray)');
  return { descr, shape: shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number), dataStart: start + headerLen };
}

/** Parses .npy bytes into an onnxruntime tensor; throws a plain message on anything it cannot read. */
export function parseNpy(bytes: Uint8Array): ort.Tensor {
  const { descr, shape, dataStart } = npyHeader(bytes);
  const endian = descr[0];
  const kind = descr.slice(1);
  const dt = DTYPES[kind];
  if (!dt) throw new Error(`unsupported .npy dtype '${descr}'`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.length - dataStart < count * dt.size) throw new Error(`.npy data is ${bytes.length - dataStart} bytes, shape (${shape}) needs ${count * dt.size}`);
  const copy = new Uint8Array(count * dt.size);
  copy.set(bytes.subarray(dataStart, dataStart + count * dt.size));
  if (endian === '>' && dt.size > 1) for (let i = 0; i < copy.length; i += dt.size) copy.subarray(i, i + dt.size).reverse();
  return new ort.Tensor(dt.type, dt.ctor === Uint16Array && dt.type === 'float16' ? new Uint16Array(copy.buffer) : (new dt.ctor(copy.buffer) as never), shape);
}
