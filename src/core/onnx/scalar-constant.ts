import type { GraphView } from './graph';
import type { ModelLocation } from './external-data';
import { readTensor, toFloat32 } from './tensor';

/** A one-value constant's value (an initializer or a Constant node), or undefined. */
export function scalarConstant(view: GraphView, loc: ModelLocation, name: string | undefined): number | undefined {
  const t = name ? view.constant(name) : undefined;
  if (!t) return undefined;
  const v = toFloat32(readTensor(t, loc));
  return v.length === 1 ? v[0] : undefined;
}
