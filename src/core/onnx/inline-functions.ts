import type { ModelEditor } from './editor';
import type { AttributeProto, FunctionProto, NodeProto } from './proto';
import { walkGraphs } from './walk';

const key = (domain: string | null | undefined, name: string | null | undefined, overload: string | null | undefined) => `${domain ?? ''}::${name ?? ''}::${overload ?? ''}`;
const sameDomain = (d: string | null | undefined) => (d === 'ai.onnx' ? '' : d ?? '');

/**
 * Replaces calls of the model's local functions (torch.onnx's export_modules_as_functions, the dynamo
 * exporter's onnxscript functions) by the nodes of their bodies, as onnxruntime does when it loads the
 * model: a Conv inside a function is then a Conv the passes can quantize or prune. Inner nodes are named
 * in the call's scope, so module paths still read from them; attributes a
 * body takes from its call (ref_attr_name) get the call's values or the function's defaults. A call is
 * left as it is when its function imports an opset version the model does not, or holds subgraphs.
 * Returns how many calls were inlined.
 */
export function inlineLocalFunctions(editor: ModelEditor): number {
  const model = editor.model;
  const functions = model.functions ?? [];
  if (!functions.length) return 0;
  const byKey = new Map(functions.map((f) => [key(f.domain, f.name, f.overload), f]));
  const opsets = new Map((model.opset_import ?? []).map((o) => [sameDomain(o.domain), Number(o.version)]));
  const inlinable = (f: FunctionProto) =>
    (f.opset_import ?? []).every((o) => { const v = opsets.get(sameDomain(o.domain)); return v === undefined || v === Number(o.version); }) &&
    !(f.node ?? []).some((n) => (n.attribute ?? []).some((a) => a.g || a.graphs?.length));
  let count = 0;
  const expand = (call: NodeProto, depth: number): NodeProto[] | undefined => {
    const f = byKey.get(key(call.domain, call.op_type, call.overload));
    if (!f || depth > 32 || !inlinable(f)) return undefined;
    for (const o of f.opset_import ?? []) if (!opsets.has(sameDomain(o.domain))) {
      opsets.set(sameDomain(o.domain), Number(o.version));
      model.opset_import = [...(model.opset_import ?? []), { domain: o.domain, version: o.version }];
    }
    count++;
    const prefix = call.name || editor.unique(`${call.op_type}`);
    // torch names a call after its module and the function ('/b1/Block'): its body's nodes are named in the
    // module's scope ('/b1/Conv_0', or '/b1/conv/Conv' for a body that names its own), as they would be had
    // the module not been a function, so module paths read the same.
    const scope = prefix.endsWith(`/${call.op_type}`) ? prefix.slice(0, -(call.op_type!.length + 1)) : prefix;
    const rename = new Map<string, string>();
    (f.input ?? []).forEach((x, i) => rename.set(x, call.input?.[i] ?? ''));
    const name = (x: string) => {
      if (!x) return '';
      let r = rename.get(x);
      if (r === undefined) rename.set(x, (r = editor.unique(`${prefix}/${x}`)));
      return r;
    };
    // The body's outputs are written under the call's output names (one the call leaves out keeps a fresh name).
    (f.output ?? []).forEach((x, i) => { if (call.output?.[i]) rename.set(x, call.output[i]); });
    const given = new Map((call.attribute ?? []).map((a) => [a.name ?? '', a]));
    const defaults = new Map((f.attribute_proto ?? []).map((a) => [a.name ?? '', a]));
    const out: NodeProto[] = [];
    for (const n of f.node ?? []) {
      const attribute: AttributeProto[] = [];
      for (const a of n.attribute ?? []) {
        if (!a.ref_attr_name) { attribute.push(a); continue; }
        const v = given.get(a.ref_attr_name) ?? defaults.get(a.ref_attr_name);
        if (v) attribute.push({ ...v, name: a.name, ref_attr_name: '' });
      }
      const own = n.name || n.op_type || 'node';
      const inner: NodeProto = { ...n, name: editor.unique(own.startsWith('/') ? `${scope}${own}` : `${scope}/${own}`), input: (n.input ?? []).map(name), output: (n.output ?? []).map(name), attribute };
      out.push(...(expand(inner, depth + 1) ?? [inner]));
    }
    return out;
  };
  for (const { graph } of walkGraphs(editor.graph)) {
    if (!(graph.node ?? []).some((n) => byKey.has(key(n.domain, n.op_type, n.overload)))) continue;
    graph.node = (graph.node ?? []).flatMap((n) => expand(n, 0) ?? [n]);
  }
  // Functions nothing calls any more go; one still called (left as it was) keeps them all.
  const called = [...walkGraphs(editor.graph)].some(({ graph }) => (graph.node ?? []).some((n) => byKey.has(key(n.domain, n.op_type, n.overload))));
  if (!called) model.functions = [];
  return count;
}
