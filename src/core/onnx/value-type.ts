import { dataTypeName } from './dtypes';
import type { GraphProto, ValueInfoProto } from './proto';

export interface ValueTypeInfo {
  name: string;
  type: string;
  /** Numbers for fixed dims, names for symbolic ones, null for unknown; null for an unknown rank. */
  shape: Array<number | string | null> | null;
}

const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/**
 * Whether onnxruntime-node can hand this value back: anything but a sequence, map, optional or sparse
 * tensor. An output that declares no type counts as a tensor (onnxruntime infers it).
 */
export function isTensorValue(v: ValueInfoProto): boolean {
  const t = v.type;
  return !(t?.sequence_type || t?.map_type || t?.optional_type || t?.sparse_tensor_type);
}

export function describeValue(v: ValueInfoProto): ValueTypeInfo {
  const t = v.type;
  if (t?.tensor_type) {
    const shape = t.tensor_type.shape;
    return {
      name: v.name ?? '',
      type: dataTypeName(t.tensor_type.elem_type ?? 0),
      shape: shape ? (shape.dim ?? []).map((d) => (d.dim_param ? d.dim_param : has(d, 'dim_value') ? Number(d.dim_value) : null)) : null,
    };
  }
  const kind = t?.sequence_type ? 'sequence' : t?.map_type ? 'map' : t?.optional_type ? 'optional' : t?.sparse_tensor_type ? 'sparse_tensor' : 'unknown';
  return { name: v.name ?? '', type: kind, shape: null };
}

/** The element type each value of `graph` declares (its inputs, value_info and outputs), by name. */
export function declaredElemTypes(graph: GraphProto): Map<string, number | undefined> {
  return new Map([...(graph.input ?? []), ...(graph.value_info ?? []), ...(graph.output ?? [])].map((v) => [v.name ?? '', v.type?.tensor_type?.elem_type ?? undefined]));
}
