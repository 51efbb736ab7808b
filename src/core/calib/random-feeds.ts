import * as ort from 'onnxruntime-node';
import { Rng } from './rng';
import { DataType } from '../onnx/dtypes';
import { floatToHalf } from '../onnx/half';
import { GraphView } from '../onnx/graph';
import type { GraphProto } from '../onnx/proto';
import { tensorDims } from '../onnx/tensor';
import { describeValue } from '../onnx/value-type';

export interface RandomFeedOptions {
  seed?: number;
  /** Value for a symbolic batch dimension (default 1). */
  batch?: number;
  /** Whole shapes for some inputs (`--input-shape`), checked against the declared ones by checkInputShapes. */
  shapes?: Record<string, number[]>;
}

/**
 * A size for each symbolic dimension: 1 for the batch, 224 for the spatial dims of an image input
 * (rank 4 with 1 or 3 channels at axis 1 or 3), 16 for the rest (sequence lengths).
 */
function concreteShape(shape: Array<number | string | null>, batch: number): number[] {
  const image = shape.length === 4 && ([1, 3].includes(shape[1] as number) || [1, 3].includes(shape[3] as number));
  const channelsFirst = image && [1, 3].includes(shape[1] as number);
  return shape.map((d, k) => {
    if (typeof d === 'number' && d > 0) return d;
    if (k === 0) return batch;
    if (image && (channelsFirst ? k >= 2 : k === 1 || k === 2)) return 224;
    return 16;
  });
}

/**
 * Random inputs matched to the graph's declared inputs. Integer inputs that index a Gather (token ids)
 * stay below the table's first dim, so an embedding lookup never goes out of range.
 */
export function randomFeeds(graph: GraphProto, opts: RandomFeedOptions = {}): Record<string, ort.Tensor> {
  const rng = new Rng(opts.seed ?? 1234);
  const view = new GraphView(graph);
  const feeds: Record<string, ort.Tensor> = {};
  for (const vi of graph.input ?? []) {
    if (!vi.name || !view.graphInputs.has(vi.name)) continue;
    const elem = vi.type?.tensor_type?.elem_type ?? DataType.FLOAT;
    const shape = opts.shapes?.[vi.name] ?? concreteShape(describeValue(vi).shape ?? [], opts.batch ?? 1);
    const n = shape.reduce((a, b) => a * b, 1);
    feeds[vi.name] = randomTensor(rng, elem, shape, n, indexBound(view, vi.name));
  }
  return feeds;
}

function indexBound(view: GraphView, name: string): number {
  for (const c of view.consumersOf(name)) {
    if (c.op_type === 'Gather' && c.input?.[1] === name) {
      const table = view.constant(c.input[0]);
      if (table) return tensorDims(table)[0] ?? 2;
    }
  }
  return 2;
}

function randomTensor(rng: Rng, elem: number, shape: number[], n: number, bound: number): ort.Tensor {
  switch (elem) {
    case DataType.INT64: return new ort.Tensor('int64', BigInt64Array.from({ length: n }, () => BigInt(rng.int(bound))), shape);
    case DataType.INT32: return new ort.Tensor('int32', Int32Array.from({ length: n }, () => rng.int(bound)), shape);
    case DataType.BOOL: return new ort.Tensor('bool', Uint8Array.from({ length: n }, () => rng.int(2)), shape);
    case DataType.UINT8: return new ort.Tensor('uint8', Uint8Array.from({ length: n }, () => rng.int(256)), shape);
    case DataType.DOUBLE: return new ort.Tensor('float64', Float64Array.from({ length: n }, () => rng.normal()), shape);
    case DataType.FLOAT16: return new ort.Tensor('float16', Uint16Array.from({ length: n }, () => floatToHalf(rng.normal())), shape);
    default: return new ort.Tensor('float32', Float32Array.from({ length: n }, () => rng.normal()), shape);
  }
}
