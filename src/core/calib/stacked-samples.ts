import fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import type { ValueInfoProto } from '../onnx/proto';
import { describeValue } from '../onnx/value-type';
import { npyHeader } from './npy';

/**
 * How many samples a file's arrays hold when they stack them along the batch dimension: each array has
 * N×b rows where the model declares a fixed batch of b, and the same N for every input (a calibration
 * set saved as one `[500, 3, 224, 224]` array). 1 for anything else, including a model whose batch is
 * left open: that array already is one sample, a batch of 500.
 */
export function stackedSamples(shapes: Record<string, readonly number[]> | undefined, inputs: ValueInfoProto[]): number {
  if (!shapes) return 1;
  let k = 1;
  for (const vi of inputs) {
    const want = describeValue(vi).shape;
    const dims = shapes[vi.name ?? ''];
    const b = want?.[0];
    if (!want || !dims || typeof b !== 'number' || b < 1 || dims.length !== want.length || dims[0] <= b || dims[0] % b !== 0) return 1;
    if (want.some((s, i) => i > 0 && typeof s === 'number' && s > 0 && dims[i] !== s)) return 1;
    if (k > 1 && dims[0] / b !== k) return 1;
    k = dims[0] / b;
  }
  return k;
}

/** Sample `j` of stacked feeds: rows j·b to (j+1)·b of each input's array, without copying. */
export function sampleRows(feeds: Record<string, ort.Tensor>, j: number, k: number): Record<string, ort.Tensor> {
  return Object.fromEntries(Object.entries(feeds).map(([name, t]) => {
    const rows = t.dims[0] / k;
    const per = t.size / t.dims[0];
    const data = t.data as Float32Array;
    return [name, new ort.Tensor(t.type, data.subarray(j * rows * per, (j + 1) * rows * per) as never, [rows, ...t.dims.slice(1)])];
  }));
}

/** The shape of a .npy file, from its first bytes. */
export function npyFileShape(file: string): number[] | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(8192); // headers are padded to 64-byte lines: a few hundred bytes
    return npyHeader(head.subarray(0, fs.readSync(fd, head, 0, head.length, 0))).shape;
  } catch {
    return undefined; // read in full later, where the error names the file
  } finally {
    fs.closeSync(fd);
  }
}
