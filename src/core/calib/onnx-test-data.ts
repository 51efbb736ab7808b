import fs from 'node:fs';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { QuantLensError } from '../base/errors';
import { onnx, type ValueInfoProto } from '../onnx/proto';
import { readTensor } from '../onnx/tensor';

/** How a run's outputs came out against an ONNX test case's expected ones. */
export interface ExpectedCheck {
  /** The folder whose output_K.pb were read. */
  source: string;
  /** Per output: the largest difference of a numeric one (how many values differ, of a string one), and whether every value is within the tolerance (onnx's test runner's rtol 1e-3). */
  outputs: Record<string, { maxAbsError: number; matches: boolean; differingStrings?: number }>;
  matches: boolean;
}

const RTOL = 1e-3, ATOL = 1e-5;

/** The ONNX test-data layout: a data set folder holds input_K.pb and the expected output_K.pb. */
export const isTestInput = (file: string) => /^input_\d+\.pb$/i.test(file);
export const isTestOutput = (file: string) => /^output_\d+\.pb$/i.test(file);
export const naturalCompare = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

/**
 * The folder holding the expected outputs of the first sample `data` gives, in the ONNX test-data layout:
 * the folder itself (output_K.pb beside input_K.pb) or its first test_data_set_N; undefined for other data.
 */
export function expectedOutputsFolder(data: string): string | undefined {
  if (!fs.existsSync(data) || !fs.statSync(data).isDirectory()) return undefined;
  const has = (d: string) => fs.readdirSync(d).some(isTestOutput);
  if (has(data)) return data;
  const first = fs.readdirSync(data).filter((d) => fs.statSync(path.join(data, d)).isDirectory()).sort(naturalCompare)[0];
  return first && has(path.join(data, first)) ? path.join(data, first) : undefined;
}

/** Compares `got` with the folder's output_K.pb, matched to outputs by name, else by position. */
export function checkExpected(folder: string, outputs: ValueInfoProto[], got: Record<string, ort.Tensor>): ExpectedCheck {
  const files = fs.readdirSync(folder).filter(isTestOutput).sort(naturalCompare);
  const result: ExpectedCheck['outputs'] = {};
  files.forEach((f, k) => {
    let t;
    try {
      t = onnx.TensorProto.decode(fs.readFileSync(path.join(folder, f)));
    } catch (e) {
      throw new QuantLensError(path.join(folder, f), `cannot be read as a tensor: ${e instanceof Error ? e.message : e}`);
    }
    const name = t.name && got[t.name] ? t.name : outputs[k]?.name;
    const out = name ? got[name] : undefined;
    if (!name || !out) return;
    const want = readTensor(t).data as ArrayLike<number | bigint | string>;
    const have = out.data as ArrayLike<number | bigint | string>;
    let maxAbsError = 0, matches = have.length === want.length, differingStrings: number | undefined;
    for (let i = 0; i < Math.min(have.length, want.length); i++) {
      if (typeof want[i] === 'string' || typeof have[i] === 'string') {
        if (want[i] !== have[i]) { matches = false; differingStrings = (differingStrings ?? 0) + 1; }
        else differingStrings ??= 0;
        continue;
      }
      const a = Number(have[i]), b = Number(want[i]);
      // NaN against NaN, and an infinity against the same one (a Cast of "INF"), agree.
      if ((Number.isNaN(a) && Number.isNaN(b)) || a === b) continue;
      const e = Math.abs(a - b);
      if (!(e <= ATOL + RTOL * Math.abs(b))) matches = false;
      if (e > maxAbsError || Number.isNaN(e)) maxAbsError = Number.isNaN(e) ? Infinity : e;
    }
    result[name] = { maxAbsError, matches, ...(differingStrings === undefined ? {} : { differingStrings }) };
  });
  return { source: folder, outputs: result, matches: Object.values(result).length === files.length && Object.values(result).every((o) => o.matches) };
}
