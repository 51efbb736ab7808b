import { DataType } from './dtypes';
import type { ModelLocation } from './external-data';
import type { GraphView } from './graph';
import { readTensor, tensorDims, toFloat32 } from './tensor';

/**
 * The value per channel of a stored float operand `name` when it broadcasts per channel of a tensor:
 * one value (repeated), or a shape whose only non-1 dimension lines up with the channel axis — axis 1 of
 * a rank-`rank` tensor (NCHW, right-aligned broadcasting), or the last axis. Undefined otherwise.
 */
export function channelConstant(view: GraphView, loc: ModelLocation, name: string, channels: number, axis: 1 | 'last', rank = 0): Float32Array | undefined {
  const t = view.constant(name);
  if (!t || t.data_type !== DataType.FLOAT) return undefined;
  const v = toFloat32(readTensor(t, loc));
  if (v.length === 1) return new Float32Array(channels).fill(v[0]);
  const dims = tensorDims(t, loc);
  if (v.length !== channels || (axis === 1 && dims.length > rank)) return undefined;
  const at = axis === 'last' ? dims.length - 1 : dims.length - (rank - 1);
  return at >= 0 && dims[at] === channels ? v : undefined;
}
