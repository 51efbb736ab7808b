/** ONNX TensorProto.DataType codes. */
export enum DataType {
  UNDEFINED = 0, FLOAT = 1, UINT8 = 2, INT8 = 3, UINT16 = 4, INT16 = 5, INT32 = 6, INT64 = 7,
  STRING = 8, BOOL = 9, FLOAT16 = 10, DOUBLE = 11, UINT32 = 12, UINT64 = 13, COMPLEX64 = 14,
  COMPLEX128 = 15, BFLOAT16 = 16, FLOAT8E4M3FN = 17, FLOAT8E4M3FNUZ = 18, FLOAT8E5M2 = 19,
  FLOAT8E5M2FNUZ = 20, UINT4 = 21, INT4 = 22, FLOAT4E2M1 = 23,
}

export type { ArrayCtor };
export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

type ArrayCtor = { new (n: number): TypedArray; new (b: ArrayBufferLike, o: number, n: number): TypedArray; BYTES_PER_ELEMENT: number };

/** What we know of each data type: its name, bits per element and the typed array holding one element per slot. */
export interface DataTypeInfo {
  code: DataType;
  name: string;
  bits: number;
  /** The in-memory array: fp16/bf16/fp8 keep their raw bits; int4/uint4 are unpacked to one byte each. */
  array: ArrayCtor | null;
  /** Which TensorProto repeated field holds it when raw_data is absent. */
  field: 'float_data' | 'int32_data' | 'int64_data' | 'double_data' | 'uint64_data' | 'string_data' | null;
  isFloat: boolean;
}

const info = (code: DataType, name: string, bits: number, array: ArrayCtor | null, field: DataTypeInfo['field'], isFloat = false): DataTypeInfo =>
  ({ code, name, bits, array, field, isFloat });

/** dtype code → facts; the one table the rest of the code reads (like onnxruntime-web's DataTypeMap). */
export const DataTypeMap: ReadonlyMap<number, DataTypeInfo> = new Map([
  info(DataType.FLOAT, 'float32', 32, Float32Array, 'float_data', true),
  info(DataType.UINT8, 'uint8', 8, Uint8Array, 'int32_data'),
  info(DataType.INT8, 'int8', 8, Int8Array, 'int32_data'),
  info(DataType.UINT16, 'uint16', 16, Uint16Array, 'int32_data'),
  info(DataType.INT16, 'int16', 16, Int16Array, 'int32_data'),
  info(DataType.INT32, 'int32', 32, Int32Array, 'int32_data'),
  info(DataType.INT64, 'int64', 64, BigInt64Array as unknown as ArrayCtor, 'int64_data'),
  info(DataType.STRING, 'string', 0, null, 'string_data'),
  info(DataType.BOOL, 'bool', 8, Uint8Array, 'int32_data'),
  info(DataType.FLOAT16, 'float16', 16, Uint16Array, 'int32_data', true),
  info(DataType.DOUBLE, 'float64', 64, Float64Array, 'double_data', true),
  info(DataType.UINT32, 'uint32', 32, Uint32Array, 'uint64_data'),
  info(DataType.UINT64, 'uint64', 64, BigUint64Array as unknown as ArrayCtor, 'uint64_data'),
  info(DataType.COMPLEX64, 'complex64', 64, Float32Array, 'float_data', true),
  info(DataType.COMPLEX128, 'complex128', 128, Float64Array, 'double_data', true),
  info(DataType.BFLOAT16, 'bfloat16', 16, Uint16Array, 'int32_data', true),
  info(DataType.FLOAT8E4M3FN, 'float8e4m3fn', 8, Uint8Array, 'int32_data', true),
  info(DataType.FLOAT8E4M3FNUZ, 'float8e4m3fnuz', 8, Uint8Array, 'int32_data', true),
  info(DataType.FLOAT8E5M2, 'float8e5m2', 8, Uint8Array, 'int32_data', true),
  info(DataType.FLOAT8E5M2FNUZ, 'float8e5m2fnuz', 8, Uint8Array, 'int32_data', true),
  info(DataType.UINT4, 'uint4', 4, Uint8Array, 'int32_data'),
  info(DataType.INT4, 'int4', 4, Int8Array, 'int32_data'),
  info(DataType.FLOAT4E2M1, 'float4e2m1', 4, Uint8Array, 'int32_data', true),
].map((i) => [i.code, i]));

export function dataTypeInfo(code: number): DataTypeInfo | undefined {
  return DataTypeMap.get(code);
}

export function dataTypeName(code: number): string {
  return DataTypeMap.get(code)?.name ?? `unknown(${code})`;
}

/** Bytes that `count` elements take in raw_data (4-bit types pack two per byte, rounding up). */
export function rawByteLength(code: number, count: number): number {
  const i = DataTypeMap.get(code);
  if (!i || i.bits === 0) return NaN;
  return Math.ceil((count * i.bits) / 8);
}
