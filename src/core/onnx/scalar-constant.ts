import type { GraphView } from './graph';
import type { ModelLocation } from './external-data';
import type { NodeProto } from './proto';
import { attrFloat } from './attributes';
import { readTensor, toFloat32 } from './tensor';

/** A one-value constant's value (an initializer or a Constant node), or undefined. */
export function scalarConstant(view: GraphView, loc: ModelLocation, name: string | undefined): number | undefined {
  const t = name ? view.constant(name) : undefined;
  if (!t) return undefined;
  const v = toFloat32(readTensor(t, loc));
  return v.length === 1 ? v[0] : undefined;
}

/** A constant list of integers of at most one dimension (axes, pads, a shape), as numbers; or undefined. */
export function intsConstant(view: GraphView, loc: ModelLocation | undefined, name: string | undefined): number[] | undefined {
  const t = name ? view.constant(name) : undefined;
  if (!t || (t.dims ?? []).length > 1) return undefined;
  const d = readTensor(t, loc).data;
  return Array.isArray(d) ? undefined : Array.from(d as ArrayLike<number | bigint>, Number);
}

/** A Clip's bounds: attributes before opset 11, optional constant inputs from then on (absent or '': none); undefined when one is computed. */
export function clipBounds(node: NodeProto, view: GraphView, loc: ModelLocation): { lo: number; hi: number } | undefined {
  const bound = (i: number, attr: string, none: number) => {
    if ((node.input ?? []).length <= 1) return attrFloat(node, attr, none);
    const name = node.input![i];
    return name ? scalarConstant(view, loc, name) : none;
  };
  const lo = bound(1, 'min', -Infinity), hi = bound(2, 'max', Infinity);
  return lo === undefined || hi === undefined ? undefined : { lo, hi };
}
