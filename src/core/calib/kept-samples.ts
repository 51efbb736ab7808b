import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type * as ort from 'onnxruntime-node';

/** Bytes of decoded images kept for later reads (see keptSample): 53 of PaddleOCR det's 1x3x320x640 samples, 218 at 224x224 (64 is the default sample count). */
export const KEPT_SAMPLE_BYTES = 128 * 2 ** 20;

/** How long kept samples outlive their last read: a job's passes follow one another; the engine serves the next job later. */
export const KEPT_SAMPLE_MS = 30_000;

const kept = new Map<string, Record<string, ort.Tensor>>();
let held = 0;
let expiry: NodeJS.Timeout | undefined;

/**
 * The sample `read` makes of `file` (prepared as `how` says), kept and handed out again to later reads of
 * a file of the same bytes, prepared the same way: a job reads its samples once per pass and opens
 * the data more than once (calibration, the placement search, verification, the profile). A static
 * quantize of PaddleOCR det on 16 JPEG photos decoded them 41 times, 5.0 s of a 15.1 s job (122 ms for a
 * 1280x960 photo here). The first samples are kept until KEPT_SAMPLE_BYTES is reached, and later ones
 * are not: a pass reads them in order, and evicting the oldest would miss on every read. All are let go
 * KEPT_SAMPLE_MS after the last read. Samples are shared, not copied: nothing that reads one writes into
 * it (a worker gets a copy, see feedsForWorker).
 */
export function keptSample(file: string, how: unknown, read: (bytes?: Buffer) => Record<string, ort.Tensor>, budget = KEPT_SAMPLE_BYTES): Record<string, ort.Tensor> {
  if (unkept.getStore()) return read();
  clearTimeout(expiry);
  expiry = setTimeout(forgetKeptSamples, KEPT_SAMPLE_MS);
  expiry.unref();
  // By content, not name and time: a file rewritten within one clock tick keeps its mtime (reading and
  // hashing a 600 KB photo took 3.2-4.4 ms here, decoding it 120). The bytes read go to `read`.
  let bytesOfFile: Buffer;
  try {
    bytesOfFile = fs.readFileSync(file);
  } catch {
    return read(); // (which says what is wrong with the file)
  }
  const key = JSON.stringify([createHash('sha1').update(bytesOfFile).digest('hex'), how]);
  const hit = kept.get(key);
  if (hit) return hit;
  const sample = read(bytesOfFile);
  const bytes = Object.values(sample).reduce((a, t) => a + (ArrayBuffer.isView(t.data) ? t.data.byteLength : 0), 0);
  if (held + bytes <= budget) {
    kept.set(key, sample);
    held += bytes;
  }
  return sample;
}

/** Lets every kept sample go. */
export function forgetKeptSamples(): void {
  kept.clear();
  held = 0;
}

const unkept = new AsyncLocalStorage<boolean>();

/**
 * Runs `job` with nothing kept (see keptSample): for a job whose peak memory has a bound to keep, as local
 * sensitivity's within twice one inference's. On 64 photos at PaddleOCR det's 320x640 it read them in two
 * passes, 25.7 s, peak RSS 360 MiB; with 128 MiB of them kept, 20.7 s and 509 MiB (one inference 182 MiB).
 */
export function withoutKeptSamples<T>(job: () => Promise<T>): Promise<T> {
  return unkept.run(true, job);
}
