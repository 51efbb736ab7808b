import fs from 'node:fs';
import { QuantLensError } from '../base/errors';
import { AtomicFile } from './atomic';

/** Reads a JSON file the user gave (a config, prompts): a clear error naming it when it is not JSON. */
export function readJsonFile(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new QuantLensError(file, `cannot be read as JSON (${e instanceof Error ? e.message.split('\n')[0] : e})`);
  }
}

/** Writes a JSON report through a temp file and a rename; non-finite numbers become strings. */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeTextAtomic(file, JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2) + '\n');
}

/** Writes text through a temp file and a rename, so a reader never sees half of it. */
export function writeTextAtomic(file: string, text: string): void {
  const f = new AtomicFile(file);
  try {
    f.write(Buffer.from(text));
    f.commit();
  } catch (e) {
    f.abort();
    throw e;
  }
}
