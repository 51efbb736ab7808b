import { DataType } from '../onnx/dtypes';

/** The integer types QuantLens stores weights and activations in. */
export type QuantType = 'int8' | 'uint8' | 'int4' | 'uint4';

export interface QuantTypeInfo {
  name: QuantType;
  dataType: DataType;
  bits: 8 | 4;
  signed: boolean;
  qmin: number;
  qmax: number;
}

export const QUANT_TYPES: Readonly<Record<QuantType, QuantTypeInfo>> = {
  int8: { name: 'int8', dataType: DataType.INT8, bits: 8, signed: true, qmin: -128, qmax: 127 },
  uint8: { name: 'uint8', dataType: DataType.UINT8, bits: 8, signed: false, qmin: 0, qmax: 255 },
  int4: { name: 'int4', dataType: DataType.INT4, bits: 4, signed: true, qmin: -8, qmax: 7 },
  uint4: { name: 'uint4', dataType: DataType.UINT4, bits: 4, signed: false, qmin: 0, qmax: 15 },
};

/**
 * The integer range used: symmetric signed types drop the most negative value (-127..127, -7..7) so
 * zero is exactly in the middle and the scale is absmax / qmax, as onnxruntime's tool does for weights.
 */
export function quantRange(t: QuantType, symmetric: boolean): { qmin: number; qmax: number } {
  const info = QUANT_TYPES[t];
  return symmetric && info.signed ? { qmin: info.qmin + 1, qmax: info.qmax } : { qmin: info.qmin, qmax: info.qmax };
}
