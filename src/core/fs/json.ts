import { AtomicFile } from './atomic';

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
