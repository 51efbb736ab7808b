import * as ort from 'onnxruntime-node';
import { Rng } from './rng';
import { DataType } from '../onnx/dtypes';
import { floatToHalf } from '../onnx/half';
import { GraphView } from '../onnx/graph';
import type { GraphProto } from '../onnx/proto';
import { tensorDims } from '../onnx/tensor';
import { attrStrings } from '../onnx/attributes';
import { describeValue } from '../onnx/value-type';
import { QuantLensError } from '../base/errors';
import { concreteShapes, isPastInput } from './symbolic-dims';

export interface RandomFeedOptions {
  seed?: number;
  /** Value for a symbolic batch dimension (default 1). */
  batch?: number;
  /** Whole shapes for some inputs (`--input-shape`), checked against the declared ones by checkInputShapes. */
  shapes?: Record<string, number[]>;
}

/**
 * Random inputs matched to the graph's declared inputs. Integer inputs that index a Gather (token ids)
 * stay below the table's first dim, so an embedding lookup never goes out of range.
 */
export function randomFeeds(graph: GraphProto, opts: RandomFeedOptions = {}): Record<string, ort.Tensor> {
  return randomFeedMaker(graph, opts)(opts.seed ?? 1234);
}

/**
 * randomFeeds for many seeds over one graph: the graph is read once (its view and shapes, built again
 * for every sample, were about a third of making the tiny VLM's samples, scratch CPU profile). The graph
 * must not change while the maker is in use.
 */
export function randomFeedMaker(graph: GraphProto, opts: Omit<RandomFeedOptions, 'seed'> = {}): (seed: number) => Record<string, ort.Tensor> {
  const view = new GraphView(graph);
  const names = (graph.input ?? []).map((v) => v.name ?? '').filter((n) => n && view.graphInputs.has(n));
  for (const v of graph.input ?? []) {
    if (!v.name || !view.graphInputs.has(v.name) || v.type?.tensor_type) continue;
    const kind = describeValue(v).type;
    throw new QuantLensError(undefined, `input '${v.name}' is ${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind}, not a tensor: onnxruntime-node feeds tensors only`);
  }
  const shapes = concreteShapes(graph, names, opts.shapes, opts.batch ?? 1, view);
  const inputs = (graph.input ?? []).filter((vi) => vi.name && view.graphInputs.has(vi.name)).map((vi) => {
    const name = vi.name!, elem = vi.type?.tensor_type?.elem_type ?? DataType.FLOAT, shape = shapes.get(name)!;
    return { name, elem, shape, n: shape.reduce((a, b) => a * b, 1), words: elem === DataType.STRING ? vocabulary(view, name) : undefined, bound: elem === DataType.STRING ? 0 : indexBound(view, name) };
  });
  const length = sequenceLength(graph, view, shapes);
  return (seed) => {
    const rng = new Rng(seed);
    const feeds: Record<string, ort.Tensor> = {};
    for (const { name, elem, shape, n, words, bound } of inputs) {
      feeds[name] = decoderInput(name, elem, shape, shapes) ?? lengthInput(name, elem, shape, length) ?? (words ? randomWords(rng, words, shape, n) : randomTensor(rng, elem, shape, n, bound));
    }
    return feeds;
  };
}

/**
 * The length of the float inputs' sequence: the size given to the first open dimension after the batch
 * (frames of [batch, frames, 80] or [batch, 80, frames], samples of a waveform); undefined without one.
 */
function sequenceLength(graph: GraphProto, view: GraphView, shapes: Map<string, number[]>): number | undefined {
  for (const v of graph.input ?? []) {
    if (!v.name || !view.graphInputs.has(v.name) || v.type?.tensor_type?.elem_type !== DataType.FLOAT && v.type?.tensor_type?.elem_type !== DataType.FLOAT16) continue;
    const declared = describeValue(v).shape ?? [];
    const k = declared.findIndex((d, i) => i > 0 && !(typeof d === 'number' && d > 0));
    if (k > 0) return shapes.get(v.name)?.[k];
  }
  return undefined;
}

// (`sequence_lengths`, `audio_signal_length` and the like end in one of these after an underscore.)
const LENGTH_INPUT = /(^|[_.])(lengths?|lens|seq_?lens?|n_?frames|num_frames)$/i;

/**
 * A lengths input ([batch] or a scalar: ASR models' `lengths`, `length`, `audio_signal_length`) says how
 * much of each sequence is real: the whole of it. Random values (0 or 1) masked nearly every frame, and a
 * fully masked attention row is NaN (torchaudio's Conformer).
 */
function lengthInput(name: string, elem: number, shape: number[], length: number | undefined): ort.Tensor | undefined {
  if (length === undefined || shape.length > 1 || !LENGTH_INPUT.test(name)) return undefined;
  const n = shape.reduce((a, b) => a * b, 1);
  if (elem === DataType.INT64) return new ort.Tensor('int64', new BigInt64Array(n).fill(BigInt(length)), shape);
  if (elem === DataType.INT32) return new ort.Tensor('int32', new Int32Array(n).fill(length), shape);
  if (elem === DataType.FLOAT) return new ort.Tensor('float32', new Float32Array(n).fill(length), shape);
  return undefined;
}

/**
 * A decoder's attention mask and position ids are not noise: the mask is all ones (random zeros can mask
 * a whole row), and positions continue after the past (a learned position table is indexed by them); a
 * merged decoder takes its with-past branch.
 */
function decoderInput(name: string, elem: number, shape: number[], shapes: Map<string, number[]>): ort.Tensor | undefined {
  // Optimum's merged decoder: the with-past branch, whose inputs the sizes above agree with.
  if (elem === DataType.BOOL && /use_cache_branch/i.test(name)) return new ort.Tensor('bool', new Uint8Array(shape.reduce((a, b) => a * b, 1)).fill(1), shape);
  if (elem !== DataType.INT64 && elem !== DataType.INT32) return undefined;
  const n = shape.reduce((a, b) => a * b, 1);
  const make = (f: (i: number) => number) => (elem === DataType.INT64 ? new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(f(i))), shape) : new ort.Tensor('int32', Int32Array.from({ length: n }, (_, i) => f(i)), shape));
  if (/attention_mask|attn_mask/i.test(name)) return make(() => 1);
  if (/position_ids/i.test(name) && shape.length === 2) {
    const past = [...shapes].find(([k, s]) => isPastInput(k) && s.length >= 3)?.[1];
    const offset = past ? past[past.length - 2] : 0;
    return make((i) => offset + (i % shape[1]));
  }
  return undefined;
}

function indexBound(view: GraphView, name: string, depth = 0): number {
  for (const c of view.consumersOf(name)) {
    // The ids cast or renamed on their way to the lookup (int32 tables, an Identity from the exporter).
    if ((c.op_type === 'Cast' || c.op_type === 'Identity') && depth < 4) {
      const b = indexBound(view, c.output![0], depth + 1);
      if (b !== 2) return b;
    }
    if ((c.op_type === 'Gather' || c.op_type === 'GatherBlockQuantized') && c.input?.[1] === name) {
      const rows = tableOf(view, c.input[0])?.dims[0];
      if (rows) return rows;
    }
  }
  return 2;
}

/**
 * A lookup table's stored tensor (its rows are the vocabulary): the table itself, or the one behind what a
 * quantized or float16 model reads it through: DequantizeLinear, Cast, or Cast then Mul by its scales (the
 * quantized model's own random inputs must index the float model's vocabulary: ids drawn from {0, 1}
 * measured a weight-quantized language model on two tokens). Of a Mul's inputs, the larger is the table.
 */
function tableOf(view: GraphView, name: string, depth = 0): { dims: number[]; size: number } | undefined {
  const t = view.constant(name);
  if (t) { const dims = tensorDims(t); return { dims, size: dims.reduce((a, b) => a * b, 1) }; }
  const p = view.producer.get(name);
  if (!p || depth > 4) return undefined;
  if (['DequantizeLinear', 'Cast', 'Identity'].includes(p.op_type ?? '')) return tableOf(view, p.input![0], depth + 1);
  if (p.op_type !== 'Mul') return undefined;
  const found = (p.input ?? []).map((i) => tableOf(view, i, depth + 1)).filter((x) => x !== undefined);
  return found.sort((a, b) => b.size - a.size)[0];
}

/**
 * The strings a text input's reader knows (an ONNX-ML CategoryMapper's categories, a LabelEncoder's keys,
 * a TfIdfVectorizer's n-grams), so random words reach the model's lookups instead of its default.
 */
function vocabulary(view: GraphView, name: string): string[] {
  const words = new Set<string>();
  for (const c of view.consumersOf(name)) {
    for (const a of ['cats_strings', 'keys_strings', 'pool_strings']) for (const w of attrStrings(c, a) ?? []) words.add(w);
  }
  return [...words];
}

/** A string tensor of words from `vocabulary`, or of three to eight random lowercase letters each. */
function randomWords(rng: Rng, vocabulary: string[], shape: number[], n: number): ort.Tensor {
  const word = () => (vocabulary.length ? vocabulary[rng.int(vocabulary.length)] : Array.from({ length: 3 + rng.int(6) }, () => String.fromCharCode(97 + rng.int(26))).join(''));
  return new ort.Tensor('string', Array.from({ length: n }, word), shape);
}

function randomTensor(rng: Rng, elem: number, shape: number[], n: number, bound: number): ort.Tensor {
  switch (elem) {
    case DataType.INT64: return new ort.Tensor('int64', BigInt64Array.from({ length: n }, () => BigInt(rng.int(bound))), shape);
    case DataType.INT32: return new ort.Tensor('int32', Int32Array.from({ length: n }, () => rng.int(bound)), shape);
    case DataType.BOOL: return new ort.Tensor('bool', Uint8Array.from({ length: n }, () => rng.int(2)), shape);
    case DataType.UINT8: return new ort.Tensor('uint8', Uint8Array.from({ length: n }, () => rng.int(256)), shape);
    case DataType.INT8: return new ort.Tensor('int8', Int8Array.from({ length: n }, () => rng.int(256) - 128), shape);
    case DataType.INT16: return new ort.Tensor('int16', Int16Array.from({ length: n }, () => rng.int(bound)), shape);
    case DataType.UINT16: return new ort.Tensor('uint16', Uint16Array.from({ length: n }, () => rng.int(bound)), shape);
    case DataType.UINT32: return new ort.Tensor('uint32', Uint32Array.from({ length: n }, () => rng.int(bound)), shape);
    case DataType.UINT64: return new ort.Tensor('uint64', BigUint64Array.from({ length: n }, () => BigInt(rng.int(bound))), shape);
    case DataType.DOUBLE: { const a = new Float64Array(n); rng.fillNormal(a); return new ort.Tensor('float64', a, shape); }
    case DataType.FLOAT16: return new ort.Tensor('float16', Uint16Array.from({ length: n }, () => floatToHalf(rng.normal())), shape);
    default: {
      // Filled in place (see fillNormal), not TypedArray.from with a callback, which cost several times
      // the draws themselves; the same values in the same order either way.
      const a = new Float32Array(n);
      rng.fillNormal(a);
      return new ort.Tensor('float32', a, shape);
    }
  }
}
