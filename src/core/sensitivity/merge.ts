import { onnx, type AttributeProto, type ModelProto, type NodeProto, type GraphProto, type TensorProto } from '../onnx/proto';
import { capturedValues, nodesComputing, walkGraphs } from '../onnx/walk';
import { intAttr } from '../onnx/attributes';
import { ModelEditor } from '../onnx/editor';

/**
 * Puts many small models beside a `base` model in one graph. The base keeps its names; every name inside
 * part k gets the prefix `k/` except its graph inputs, which are the base's own tensors: each copy reads
 * the float values where the base computes them, so one onnxruntime run computes the float model and
 * every layer's copies together, and nothing needs to leave onnxruntime between them.
 */
export function mergeSideBySide(base: ModelProto, parts: Array<{ prefix: string; model: ModelProto }>): ModelProto {
  const nodes: NodeProto[] = [...(base.graph!.node ?? [])];
  const initializers: NonNullable<GraphProto['initializer']> = [...(base.graph!.initializer ?? [])];
  const opsets = new Map<string, number>((base.opset_import ?? []).map((o) => [o.domain ?? '', Number(o.version)]));
  let ir = Number(base.ir_version ?? 0);
  // Float weights a copy reads unchanged (the layers downstream of the quantized one) are the base's own:
  // shared, not copied, so the merged model is not a copy of the float model per layer. A base tensor is
  // encoded once for the comparison, however many copies read it.
  const baseInit = new Map(initializers.map((t) => [t.name ?? '', t]));
  const baseConst = new Map(nodes.filter((n) => n.op_type === 'Constant').map((n) => [n.output?.[0] ?? '', n]));
  const encoded = new Map<object, Buffer>();
  const bytesOf = (x: object, encode: () => Uint8Array) => {
    let b = encoded.get(x);
    if (!b) { const u = encode(); encoded.set(x, (b = Buffer.from(u.buffer, u.byteOffset, u.length))); }
    return b;
  };
  type Tensor = NonNullable<GraphProto['initializer']>[number];
  const tensorBytes = (t: Tensor) => bytesOf(t, () => onnx.TensorProto.encode(t).finish());
  // Most tensors carry raw bytes: compare those in place (encoding every part's tensors only to compare
  // them held a second copy of each part until the merge ended).
  const plain = (t: Tensor) => !!t.raw_data && !t.float_data?.length && !t.int64_data?.length && !t.int32_data?.length && !t.external_data?.length;
  const sameTensor = (a: Tensor, b: Tensor) => plain(a) && plain(b)
    ? a.data_type === b.data_type && Buffer.compare(Buffer.from(a.raw_data!.buffer, a.raw_data!.byteOffset, a.raw_data!.length), Buffer.from(b.raw_data!.buffer, b.raw_data!.byteOffset, b.raw_data!.length)) === 0 && String(a.dims ?? []) === String(b.dims ?? [])
    : tensorBytes(a).equals(tensorBytes(b));
  const constBytes = (n: NodeProto) => bytesOf(n, () => onnx.NodeProto.encode({ ...n, name: '' }).finish());
  for (const { prefix, model } of parts) {
    const g = model.graph!;
    ir = Math.max(ir, Number(model.ir_version));
    for (const o of model.opset_import ?? []) opsets.set(o.domain ?? '', Math.max(opsets.get(o.domain ?? '') ?? 0, Number(o.version)));
    const shared = new Set((g.input ?? []).map((i) => i.name ?? ''));
    const reused = new Set<object>();
    for (const t of g.initializer ?? []) {
      const b = baseInit.get(t.name ?? '');
      if (b && sameTensor(t, b)) { shared.add(t.name!); reused.add(t); }
    }
    for (const n of g.node ?? []) {
      const b = n.op_type === 'Constant' ? baseConst.get(n.output?.[0] ?? '') : undefined;
      if (b && constBytes(n).equals(constBytes(b))) { shared.add(n.output![0]); reused.add(n); }
    }
    const rename = (n: string) => (!n || shared.has(n) ? n : `${prefix}/${n}`);
    // A part decoded from bytes holds its tensors as views into that whole buffer (its float weights
    // too): a copy of the few it keeps lets the rest go (PaddleOCR det: 238 MB of such buffers).
    for (const t of g.initializer ?? []) if (!reused.has(t)) initializers.push({ ...ownBytes(t), name: rename(t.name ?? '') });
    // A copy per part: nodes of subgraphs would need the same renaming, so the parts carry none here.
    for (const n of g.node ?? []) if (!reused.has(n)) nodes.push({ ...n, name: rename(n.name ?? ''), input: (n.input ?? []).map(rename), output: (n.output ?? []).map(rename), attribute: (n.attribute ?? []).map(detached) });
    if ([...walkGraphs(g)].length > 1) throw new Error('layer neighbourhoods with subgraphs cannot be merged');
  }
  // The parts' outputs are not the merged model's: reduceToNsr sets what comes out.
  return onnx.ModelProto.create({
    ir_version: ir, opset_import: [...opsets].map(([domain, version]) => ({ domain, version })),
    graph: { name: 'side_by_side', node: nodes, initializer: initializers, input: base.graph!.input ?? [], output: [] },
  });
}

/**
 * An attribute with its bytes copied out of the buffer its part was decoded from: a string attribute
 * (a Resize's mode) or a Constant's tensor is a view that would hold the whole part's buffer alive
 * (PaddleOCR det 320x640: about 70 MB of them while the merged graph ran).
 */
function detached(a: AttributeProto): AttributeProto {
  return {
    ...a,
    ...(a.s?.length ? { s: new Uint8Array(a.s) } : {}),
    ...(a.strings?.length ? { strings: a.strings.map((x) => new Uint8Array(x)) } : {}),
    ...(a.t ? { t: ownBytes(a.t) } : {}),
    ...(a.tensors?.length ? { tensors: a.tensors.map(ownBytes) } : {}),
  };
}

/** A tensor whose raw bytes are its own, not a view into a larger decoded buffer. */
function ownBytes(t: TensorProto): TensorProto {
  return t.raw_data?.length ? { ...t, raw_data: new Uint8Array(t.raw_data) } : t;
}

/**
 * Sets the merged model's outputs to two scalars per compared tensor: Σ(y − ŷ)² for each copy ŷ and Σy²
 * of the float value y, which the base computes (or of `signal`, where the error is measured before it
 * joins other values: see RegionJoin). Only scalars leave onnxruntime, so no activation is held for the
 * caller. A copy listed in `errors` computes y − ŷ itself (see weightErrorPart): Σ of its squares.
 */
export function reduceToNsr(merged: ModelProto, compared: Array<{ reference: string; copies: string[]; errors?: Set<string>; signal?: string }>): Array<{ sig: string; err: string[] }> {
  const g = merged.graph!;
  const nodes = g.node!;
  const outputs: NonNullable<GraphProto['output']> = [];
  const scalar = (name: string) => ({ name, type: { tensor_type: { elem_type: 1 } } });
  // ReduceSumSquare reads the tensor once; Mul then ReduceSum wrote a squared copy first.
  const sumOfSquares = (x: string, tag: string) => {
    const sum = `${tag}/sum`;
    nodes.push({ name: `${tag}/ReduceSumSquare`, op_type: 'ReduceSumSquare', input: [x], output: [sum], attribute: [intAttr('keepdims', 0)] });
    outputs.push(scalar(sum));
    return sum;
  };
  // A tensor several layers' regions end at is squared once, and so is a copy's error.
  const signal = new Map<string, string>();
  const error = new Map<string, string>();
  const result = compared.map((c) => {
    const s = c.signal ?? c.reference;
    let sig = signal.get(s);
    if (!sig) signal.set(s, (sig = sumOfSquares(s, `nsr/${s}/signal`)));
    const err = c.copies.map((copy) => {
      let e = error.get(copy);
      if (e) return e;
      if (c.errors?.has(copy)) e = sumOfSquares(copy, `nsr/${copy}/error`);
      else {
        const d = `nsr/${copy}/diff`;
        nodes.push({ name: `${d}/Sub`, op_type: 'Sub', input: [copy, c.reference], output: [d] });
        e = sumOfSquares(d, `nsr/${copy}/error`);
      }
      error.set(copy, e);
      return e;
    });
    return { sig, err };
  });
  g.output = outputs;
  return result;
}

/**
 * Reorders the merged graph so every copy's node (and every reduction) comes right after the last node
 * that makes one of its inputs, instead of after the whole float graph, and puts the reductions (the
 * graph's leaves) last, in reverse. onnxruntime's default execution order is a depth-first walk from the
 * leaves that takes the last leaf first: with the last layer's reduction first, it computed the whole
 * float model before any copy and kept every float activation a copy reads alive to the end. Leaves in
 * reverse, the walk takes the first layer's reduction first: each copy runs and is reduced to scalars
 * while its inputs are fresh, and they are freed (PaddleOCR det 320x640, 4 samples: resident memory after
 * the merged runs 419 -> 269 MB; the command's peak is now calibration's). The first `baseCount` nodes are
 * the float graph, in its own order.
 */
export function interleaveCopies(merged: ModelProto, baseCount: number): void {
  const g = merged.graph!;
  const nodes = g.node ?? [];
  const base = nodes.slice(0, baseCount), side = nodes.slice(baseCount);
  const known = new Set<string>(['', ...(g.input ?? []).map((i) => i.name ?? ''), ...(g.initializer ?? []).map((t) => t.name ?? '')]);
  const waiting = new Map<string, number[]>();
  const ready: number[] = [];
  const missing = side.map((n, i) => {
    let m = 0;
    for (const x of new Set([...(n.input ?? []), ...capturedValues(n)])) {
      if (known.has(x)) continue;
      m++;
      (waiting.get(x) ?? waiting.set(x, []).get(x)!).push(i);
    }
    if (m === 0) ready.push(i);
    return m;
  });
  const out: NodeProto[] = [];
  const made = (n: NodeProto) => {
    out.push(n);
    for (const o of n.output ?? []) {
      for (const i of waiting.get(o) ?? []) if (--missing[i] === 0) ready.push(i);
      waiting.delete(o);
    }
  };
  const drain = () => { for (let k = 0; k < ready.length; k++) made(side[ready[k]]); ready.length = 0; };
  drain();
  for (const n of base) {
    made(n);
    drain();
  }
  // Anything still waiting reads a tensor nothing makes: keep it (onnxruntime names the problem).
  const placed = new Set(out);
  for (const n of side) if (!placed.has(n)) out.push(n);
  const outputs = new Set((g.output ?? []).map((o) => o.name ?? ''));
  const leaf = (n: NodeProto) => (n.output ?? []).some((o) => outputs.has(o));
  g.node = [...out.filter((n) => !leaf(n)), ...out.filter(leaf).reverse()];
}

/**
 * Keeps only the outputs in `keep` and the nodes they need; the initializers no node reads then go (see
 * ModelEditor.dropUnusedConstants). Local sensitivity's second graph: the split's copies and sums dropped
 * (see measureLayers). onnxruntime runs every node of a graph, whether an output needs it or not.
 */
export function keepOutputs(model: ModelProto, keep: ReadonlySet<string>): ModelProto {
  const g = model.graph!;
  const needed = nodesComputing(g, keep);
  const kept = onnx.ModelProto.create({
    ...model,
    graph: onnx.GraphProto.create({ ...g, node: (g.node ?? []).filter((n) => needed.has(n)), output: (g.output ?? []).filter((o) => keep.has(o.name ?? '')) }),
  });
  new ModelEditor(kept).dropUnusedConstants();
  return kept;
}
