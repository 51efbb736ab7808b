import { onnx, type ModelProto, type NodeProto, type GraphProto } from '../onnx/proto';
import { walkGraphs } from '../onnx/walk';
import { intAttr } from '../onnx/attributes';

/**
 * Puts many small models side by side in one graph: every name inside model k gets the prefix `k/`
 * except its graph inputs, which all copies share. With a `base` model (kept as it is, names unchanged),
 * those shared inputs are the base's own tensors: each copy reads the float values where the base
 * computes them, so one onnxruntime run computes the float model and every layer's copies together and
 * nothing needs to leave onnxruntime between them.
 */
export function mergeSideBySide(parts: Array<{ prefix: string; model: ModelProto }>, base?: ModelProto): ModelProto {
  const nodes: NodeProto[] = [...(base?.graph?.node ?? [])];
  const initializers: NonNullable<GraphProto['initializer']> = [...(base?.graph?.initializer ?? [])];
  const inputs = new Map<string, NonNullable<GraphProto['input']>[number]>((base?.graph?.input ?? []).map((i) => [i.name!, i]));
  const outputs: NonNullable<GraphProto['output']> = [];
  const opsets = new Map<string, number>((base?.opset_import ?? []).map((o) => [o.domain ?? '', Number(o.version)]));
  const inBase = new Set([...nodes.flatMap((n) => n.output ?? []), ...initializers.map((t) => t.name ?? '')]);
  let ir = Number(base?.ir_version ?? 0);
  // Float weights a copy reads unchanged (the layers downstream of the quantized one) are the base's own:
  // shared, not copied, so the merged model is not a copy of the float model per layer.
  const baseInit = new Map(initializers.map((t) => [t.name ?? '', t]));
  const baseConst = new Map(nodes.filter((n) => n.op_type === 'Constant').map((n) => [n.output?.[0] ?? '', n]));
  const bytes = (x: object, codec: { encode(m: never): { finish(): Uint8Array } }) => codec.encode(x as never).finish();
  const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
  for (const { prefix, model } of parts) {
    const g = model.graph!;
    ir = Math.max(ir, Number(model.ir_version));
    for (const o of model.opset_import ?? []) opsets.set(o.domain ?? '', Math.max(opsets.get(o.domain ?? '') ?? 0, Number(o.version)));
    const shared = new Set((g.input ?? []).map((i) => i.name ?? ''));
    const reused = new Set<object>();
    if (base) {
      for (const t of g.initializer ?? []) {
        const b = baseInit.get(t.name ?? '');
        if (b && same(bytes(t, onnx.TensorProto), bytes(b, onnx.TensorProto))) { shared.add(t.name!); reused.add(t); }
      }
      for (const n of g.node ?? []) {
        const b = n.op_type === 'Constant' ? baseConst.get(n.output?.[0] ?? '') : undefined;
        if (b && same(bytes({ ...n, name: '' }, onnx.NodeProto), bytes({ ...b, name: '' }, onnx.NodeProto))) { shared.add(n.output![0]); reused.add(n); }
      }
    }
    const rename = (n: string) => (!n || shared.has(n) ? n : `${prefix}/${n}`);
    for (const i of g.input ?? []) if (!inputs.has(i.name!) && !inBase.has(i.name!)) inputs.set(i.name!, i);
    for (const t of g.initializer ?? []) if (!reused.has(t)) initializers.push({ ...t, name: rename(t.name ?? '') });
    // A copy per part: nodes of subgraphs would need the same renaming, so the parts carry none here.
    for (const n of g.node ?? []) if (!reused.has(n)) nodes.push({ ...n, name: rename(n.name ?? ''), input: (n.input ?? []).map(rename), output: (n.output ?? []).map(rename) });
    for (const o of g.output ?? []) outputs.push({ ...o, name: rename(o.name ?? '') });
    if ([...walkGraphs(g)].length > 1) throw new Error('layer neighbourhoods with subgraphs cannot be merged');
  }
  return onnx.ModelProto.create({
    ir_version: ir, opset_import: [...opsets].map(([domain, version]) => ({ domain, version })),
    graph: { name: 'side_by_side', node: nodes, initializer: initializers, input: [...inputs.values()], output: outputs },
  });
}

/**
 * Replaces the merged model's outputs with two scalars per compared tensor: Σ(y − ŷ)² for each copy and
 * Σy² of the float value y, which becomes an input (it comes from the capture pass). Only scalars leave
 * onnxruntime, so each copy's activations are freed as the run goes instead of all being held for the
 * caller: the local method's peak memory stays near one inference's.
 */
export function reduceToNsr(merged: ModelProto, compared: Array<{ reference: string; copies: string[] }>): Array<{ sig: string; err: string[] }> {
  const g = merged.graph!;
  const nodes = g.node!;
  // A reference the graph computes itself (the base model's tensor) is not an input.
  const inputs = new Set([...(g.input ?? []).map((i) => i.name), ...nodes.flatMap((n) => n.output ?? [])]);
  const outputs: NonNullable<GraphProto['output']> = [];
  const scalar = (name: string) => ({ name, type: { tensor_type: { elem_type: 1 } } });
  const sumOfSquares = (x: string, tag: string) => {
    const sq = `${tag}/sq`, sum = `${tag}/sum`;
    nodes.push({ name: `${tag}/Mul`, op_type: 'Mul', input: [x, x], output: [sq] }, { name: `${tag}/ReduceSum`, op_type: 'ReduceSum', input: [sq], output: [sum], attribute: [intAttr('keepdims', 0)] });
    outputs.push(scalar(sum));
    return sum;
  };
  // A tensor several layers' regions end at is fed and squared once.
  const signal = new Map<string, string>();
  const result = compared.map((c) => {
    if (!inputs.has(c.reference)) { g.input!.push(scalar(c.reference)); inputs.add(c.reference); }
    let sig = signal.get(c.reference);
    if (!sig) signal.set(c.reference, (sig = sumOfSquares(c.reference, `nsr/${c.reference}/signal`)));
    const err = c.copies.map((copy) => {
      const d = `nsr/${copy}/diff`;
      nodes.push({ name: `${d}/Sub`, op_type: 'Sub', input: [copy, c.reference], output: [d] });
      return sumOfSquares(d, `nsr/${copy}/error`);
    });
    return { sig, err };
  });
  g.output = outputs;
  return result;
}
