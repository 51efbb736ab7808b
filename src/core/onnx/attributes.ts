import { AttributeType, type AttributeProto, type GraphProto, type NodeProto, type TensorProto } from './proto';

/** One attribute of a node by name. */
export const attr = (node: NodeProto, name: string): AttributeProto | undefined => node.attribute?.find((a) => a.name === name);

/** An INT attribute, or `dflt` when absent. */
export function attrInt(node: NodeProto, name: string, dflt: number): number;
export function attrInt(node: NodeProto, name: string): number | undefined;
export function attrInt(node: NodeProto, name: string, dflt?: number): number | undefined {
  const a = attr(node, name);
  return a?.i === undefined || a.i === null ? dflt : Number(a.i);
}

/** An INTS attribute as numbers, or undefined when absent. */
export function attrInts(node: NodeProto, name: string): number[] | undefined {
  return attr(node, name)?.ints?.map(Number);
}

/** A FLOAT attribute, or `dflt` when absent. */
export function attrFloat(node: NodeProto, name: string, dflt: number): number {
  const f = attr(node, name)?.f;
  return f === undefined || f === null ? dflt : f;
}

/** A FLOATS attribute, or undefined when absent. */
export function attrFloats(node: NodeProto, name: string): number[] | undefined {
  return attr(node, name)?.floats?.map(Number);
}

/** A STRING attribute decoded, or undefined when absent. */
export function attrString(node: NodeProto, name: string): string | undefined {
  const s = attr(node, name)?.s;
  return s ? new TextDecoder().decode(s) : undefined;
}

/** A STRINGS attribute decoded, or undefined when absent. */
export function attrStrings(node: NodeProto, name: string): string[] | undefined {
  const v = attr(node, name)?.strings;
  return v?.length ? v.map((s) => new TextDecoder().decode(s)) : undefined;
}

/** A TENSOR attribute (Constant's value), or undefined. */
export const attrTensor = (node: NodeProto, name: string): TensorProto | undefined => attr(node, name)?.t ?? undefined;

// Attribute constructors, with the type tag onnxruntime checks.
export const intAttr = (name: string, i: number): AttributeProto => ({ name, type: AttributeType.INT, i });
export const intsAttr = (name: string, ints: number[]): AttributeProto => ({ name, type: AttributeType.INTS, ints });
export const floatAttr = (name: string, f: number): AttributeProto => ({ name, type: AttributeType.FLOAT, f });
export const floatsAttr = (name: string, floats: number[]): AttributeProto => ({ name, type: AttributeType.FLOATS, floats });
export const stringAttr = (name: string, s: string): AttributeProto => ({ name, type: AttributeType.STRING, s: new TextEncoder().encode(s) });

/** A GRAPH attribute (an If's then_branch / else_branch), or undefined. */
export const attrGraph = (node: NodeProto, name: string): GraphProto | undefined => attr(node, name)?.g ?? undefined;
