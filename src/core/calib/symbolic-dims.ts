// Sizes for the symbolic dimensions of a model's inputs, one value per symbol, so that inputs that share a
// dimension agree, and a KV-cache decoder's attention mask spans the past and the new tokens.
import type { GraphProto, ValueInfoProto } from '../onnx/proto';
import { describeValue } from '../onnx/value-type';
import { GraphView } from '../onnx/graph';
import { attrInt } from '../onnx/attributes';
import { tensorDims } from '../onnx/tensor';
import { QuantLensError } from '../base/errors';
import { UNARY_ELEMENTWISE } from '../onnx/unary-ops';

type Dim = number | string | null;

/** Past keys/values of a decoder (past_key_values.0.key, past.1.value, cache_k_0 ...). */
export const isPastInput = (name: string) => /past|cache/i.test(name) && !/mask|position/i.test(name);
const isMask = (name: string) => /attention_mask|attn_mask/i.test(name);
const isTokens = (name: string) => /input_ids|inputs_embeds|^input$|tokens/i.test(name);

/** `past_sequence_length + 1`, `past + seq`: a dim_param computed from others (+, -, * and integers). */
function evaluate(expr: string, sym: Map<string, number>): number | undefined {
  const tokens = expr.match(/[A-Za-z_][\w.]*|\d+|[+\-*]/g);
  if (!tokens || tokens.length < 3) return undefined;
  const value = (t: string) => (/^\d+$/.test(t) ? Number(t) : sym.get(t));
  // Left to right, * before + and -.
  const terms: number[] = [];
  let sign = 1, acc = value(tokens[0]);
  for (let i = 1; i < tokens.length; i += 2) {
    const op = tokens[i], v = value(tokens[i + 1] ?? '');
    if (acc === undefined || v === undefined) return undefined;
    if (op === '*') acc *= v;
    else { terms.push(sign * acc); sign = op === '-' ? -1 : 1; acc = v; }
  }
  if (acc === undefined) return undefined;
  terms.push(sign * acc);
  return terms.reduce((a, b) => a + b, 0);
}

/** An open dimension's size when nothing says one (a sequence, a signal). */
export const DEFAULT_LENGTH = 16;

const isExpression = (d: Dim) => typeof d === 'string' && /[+\-*]/.test(d);

/**
 * A concrete shape for every data input: given shapes first (their symbols then hold for the other
 * inputs), then the defaults (1 for a batch, 224 for an image's height and width, `length` otherwise:
 * 16, or what fitRandomShapes tries), one value per symbol. A decoder with a KV cache gets an attention
 * mask as long as the past and the new tokens together when its length is a symbol of its own
 * (total_sequence_length); dim_params written as sums (`past_sequence_length + 1`) are computed.
 */
export function concreteShapes(graph: GraphProto, inputs: string[], given: Record<string, number[]> = {}, batch = 1, view = new GraphView(graph), length = DEFAULT_LENGTH): Map<string, number[]> {
  const infos = new Map(inputs.map((n) => [n, graph.input!.find((v) => v.name === n)!]));
  const shapes = new Map(inputs.map((n) => [n, describeValue(infos.get(n)!).shape]));
  // Only an input whose declared shape leaves a dim open needs what its reader says (this runs per sample).
  const open = (shape: Dim[] | null) => !shape || shape.some((d) => !(typeof d === 'number' && d > 0));
  const hints = new Map(inputs.map((n) => [n, open(shapes.get(n)!) ? inputHint(view, infos.get(n)!) : undefined]));
  const declared = new Map(inputs.map((n) => {
    const shape = shapes.get(n)!;
    const hint = hints.get(n);
    if (shape) return [n, shape as Dim[]];
    if (given[n]) return [n, given[n]];
    if (hint) return [n, new Array<Dim>(hint.rank).fill(null)];
    throw new QuantLensError(undefined, `input '${n}' declares no shape and nothing that reads it says one: pass --input-shape ${n}=1x...`);
  }));
  const sym = new Map<string, number>();
  for (const [name, dims] of Object.entries(given)) {
    (declared.get(name) ?? []).forEach((d, k) => { if (typeof d === 'string' && d && !isExpression(d) && dims[k] !== undefined && !sym.has(d)) sym.set(d, dims[k]); });
  }
  const positional = (shape: Dim[], k: number, name: string) => {
    const hint = hints.get(name);
    const known = hint?.dims.get(k) ?? hint?.dims.get(k - shape.length);
    if (known !== undefined) return known;
    if (hint?.spatialFrom !== undefined && k >= hint.spatialFrom) return shape.length === 5 ? (k === 2 ? 16 : 112) : 224;
    const image = shape.length === 4 && ([1, 3].includes(shape[1] as number) || [1, 3].includes(shape[3] as number));
    const channelsFirst = image && [1, 3].includes(shape[1] as number);
    if (k === 0) return batch;
    if (image && (channelsFirst ? k >= 2 : k === 1 || k === 2)) return 224;
    return length;
  };
  // The decoder's sequence symbols: the past's length, the new tokens', the mask's.
  const symbolAt = (pred: (n: string) => boolean, axis: number | 'last') => {
    for (const [n, shape] of declared) {
      if (!pred(n)) continue;
      const d = shape[axis === 'last' ? shape.length - 1 : axis];
      if (typeof d === 'string' && d && !isExpression(d)) return d;
    }
    return undefined;
  };
  const past = pastSymbol(declared);
  const tokens = symbolAt(isTokens, 1);
  const mask = symbolAt(isMask, 'last');
  for (const [name, shape] of declared) {
    shape.forEach((d, k) => { if (typeof d === 'string' && d && !isExpression(d) && !sym.has(d) && d !== mask) sym.set(d, positional(shape, k, name)); });
  }
  if (mask && !sym.has(mask)) sym.set(mask, past && tokens && mask !== past && mask !== tokens ? sym.get(past)! + sym.get(tokens)! : sym.get(mask) ?? length);
  const out = new Map<string, number[]>();
  for (const [name, shape] of declared) {
    out.set(name, given[name] ?? shape.map((d, k) => {
      if (typeof d === 'number' && d > 0) return d;
      if (typeof d === 'string' && d) return sym.get(d) ?? evaluate(d, sym) ?? positional(shape, k, name);
      return positional(shape, k, name);
    }));
  }
  return out;
}

const SAME_SHAPE = new Set<string>([...UNARY_ELEMENTWISE, 'QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear']);

type LayoutHint = { rank: number; dims: Map<number, number>; spatialFrom?: number };

/**
 * An input's layout hint from its graph, or else as last read for the same input entry: the quantized copy
 * of a model keeps the float model's input entries but may read them through kernels whose shapes say
 * less (QLinearConv, MatMulNBits), and the float model's reading holds for it (the same feeds for both
 * sides of a comparison).
 */
const hintOf = new WeakMap<object, LayoutHint>();
function inputHint(view: GraphView, input: ValueInfoProto): LayoutHint | undefined {
  const h = layoutHint(view, input.name ?? '');
  if (h) hintOf.set(input, h);
  return h ?? hintOf.get(input);
}

/**
 * What the layer reading an input says of its shape: a Conv's input has the weight's rank and its
 * channels (224 for each spatial dim; a 3-D conv's clip 16 frames of 112×112); a MatMul's or Gemm's, the weight's
 * rows as its last dim. `dims` by axis (negative: from the end).
 */
function layoutHint(view: GraphView, name: string, depth = 0): LayoutHint | undefined {
  for (const c of view.consumersOf(name)) {
    if (c.input?.[0] !== name) continue;
    // Through ops that keep the shape (an activation, a cast, the Q/DQ pair of a quantized model's input).
    if (SAME_SHAPE.has(c.op_type ?? '') && depth < 8) {
      const h = layoutHint(view, c.output?.[0] ?? '', depth + 1);
      if (h) return h;
      continue;
    }
    if ((c.domain ?? '') !== '') continue;
    // The weight as stored, or behind its DequantizeLinear (a quantized model).
    const wName = c.input?.[1] ?? '';
    const w = view.constant(wName) ?? (view.producer.get(wName)?.op_type === 'DequantizeLinear' ? view.constant(view.producer.get(wName)!.input![0]) : undefined);
    const wd = w ? tensorDims(w) : undefined;
    if (!wd || wd.length < 2) continue;
    if (c.op_type === 'Conv' || c.op_type === 'ConvInteger') return { rank: wd.length, dims: new Map([[1, wd[1] * attrInt(c, 'group', 1)]]), spatialFrom: 2 };
    if (c.op_type === 'ConvTranspose') return { rank: wd.length, dims: new Map([[1, wd[0]]]), spatialFrom: 2 };
    if ((c.op_type === 'MatMul' || c.op_type === 'MatMulInteger') && wd.length === 2) return { rank: 2, dims: new Map([[-1, wd[0]]]) };
    if (c.op_type === 'Gemm') return { rank: 2, dims: new Map([[attrInt(c, 'transA', 0) ? 0 : 1, wd[attrInt(c, 'transB', 0) ? 1 : 0]]]) };
  }
  return undefined;
}

/** The past's sequence axis symbol: the dim of a past input that is neither the batch nor a fixed size, and not its last (head size). */
function pastSymbol(declared: Map<string, Dim[]>): string | undefined {
  for (const [n, shape] of declared) {
    if (!isPastInput(n)) continue;
    const d = shape.slice(1, -1).find((x) => typeof x === 'string' && x && !isExpression(x));
    if (typeof d === 'string') return d;
  }
  return undefined;
}
