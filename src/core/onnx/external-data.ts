import fs from 'node:fs';
import path from 'node:path';
import { QuantLensError } from '../base/errors';
import type { TensorProto } from './proto';

/** Where a model lives, so tensors stored outside the protobuf can be found and errors can name the file. */
export interface ModelLocation {
  /** The model file, as the user named it (used in error messages). */
  file: string;
  /** Folder that external-data locations are relative to. */
  dir: string;
}

export interface ExternalDataRef {
  location: string;
  offset: number;
  /** NaN when the entry is absent: the tensor runs to the end of the file. */
  length: number;
}

export function isExternal(t: TensorProto): boolean {
  return t.data_location === 1 || (t.external_data?.length ?? 0) > 0;
}

export function externalDataRef(t: TensorProto, loc: ModelLocation): ExternalDataRef {
  const kv = new Map((t.external_data ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = kv.get('location');
  if (!location) throw new QuantLensError(loc.file, `tensor '${t.name}' is marked external but has no location`);
  const num = (k: string) => {
    const v = kv.get(k);
    if (v === undefined) return NaN;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new QuantLensError(loc.file, `tensor '${t.name}' has an invalid external-data ${k} '${v}'`);
    return n;
  };
  const offset = num('offset');
  return { location, offset: Number.isNaN(offset) ? 0 : offset, length: num('length') };
}

/**
 * Resolves an external-data location inside the model's folder. Absolute paths, `..` segments and
 * symlinks that lead outside the folder are refused: a downloaded model must not make us read any file.
 */
export function resolveExternalPath(loc: ModelLocation, location: string): string {
  const refuse = (why: string) => new QuantLensError(loc.file, `external data location '${location}' ${why}; it must name a file inside the model's folder`);
  if (location.includes('\0')) throw refuse('contains a NUL byte');
  if (path.isAbsolute(location) || path.win32.isAbsolute(location)) throw refuse('is an absolute path');
  if (location.split(/[\\/]+/).includes('..')) throw refuse("contains '..'");
  const full = path.resolve(loc.dir, location);
  let real: string;
  let realDir: string;
  try {
    realDir = fs.realpathSync(loc.dir);
    real = fs.realpathSync(full);
  } catch {
    throw new QuantLensError(loc.file, `external data file '${location}' does not exist`);
  }
  if (!real.startsWith(realDir + path.sep)) throw refuse('resolves (through a link) outside the folder');
  if (!fs.statSync(real).isFile()) throw refuse('is not a regular file');
  return real;
}

/**
 * Reads one external tensor's bytes; checks the range against the file so a bad offset is an error, not
 * garbage. `into` gives reusable memory to read into (see ScratchBuffer).
 */
export function readExternalBytes(t: TensorProto, loc: ModelLocation, expectedBytes: number, into?: ScratchBuffer): Buffer {
  const ref = externalDataRef(t, loc);
  const file = resolveExternalPath(loc, ref.location);
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const length = Number.isNaN(ref.length) ? size - ref.offset : ref.length;
    if (!Number.isNaN(expectedBytes) && length !== expectedBytes) {
      throw new QuantLensError(loc.file, `tensor '${t.name}' external data length ${length} does not match its shape (${expectedBytes} bytes)`);
    }
    if (ref.offset + length > size) {
      throw new QuantLensError(loc.file, `tensor '${t.name}' external data [${ref.offset}, ${ref.offset + length}) runs past the end of '${ref.location}' (${size} bytes)`);
    }
    const buf = into ? into.take(length) : Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, buf, done, Math.min(length - done, 1 << 30), ref.offset + done);
      if (n === 0) throw new QuantLensError(loc.file, `tensor '${t.name}': external data file '${ref.location}' ended early`);
      done += n;
    }
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Memory reused from one tensor read to the next: on a large model, first touches of fresh allocations
 * cost as much as the reads themselves. Only for data consumed before the next read.
 */
export class ScratchBuffer {
  private buf = Buffer.alloc(0);

  take(bytes: number): Buffer {
    if (this.buf.length < bytes) this.buf = Buffer.allocUnsafeSlow(bytes);
    return this.buf.subarray(0, bytes);
  }

  release(): void {
    this.buf = Buffer.alloc(0);
  }
}
