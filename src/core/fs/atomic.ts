import fs from 'node:fs';
import path from 'node:path';

/** Temp name in the destination's folder, so the final rename never crosses file systems. */
function tempPath(dest: string): string {
  return path.join(path.dirname(path.resolve(dest)), `.${path.basename(dest)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`);
}

/** A file written incrementally to a temp path, renamed into place on commit and removed on abort. */
export class AtomicFile {
  readonly temp: string;
  private fd: number;
  position = 0;

  constructor(readonly dest: string) {
    this.temp = tempPath(dest);
    this.fd = fs.openSync(this.temp, 'wx');
  }

  write(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) done += fs.writeSync(this.fd, bytes, done, Math.min(bytes.length - done, 1 << 30), this.position + done);
    this.position += bytes.length;
  }

  /** Zero-fills up to the next multiple of `align`. */
  pad(align: number): void {
    const rem = this.position % align;
    if (rem) this.write(new Uint8Array(align - rem));
  }

  commit(): void {
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = -1;
    fs.renameSync(this.temp, this.dest);
  }

  abort(): void {
    if (this.fd >= 0) {
      try { fs.closeSync(this.fd); } catch { /* already closed */ }
      this.fd = -1;
    }
    try { fs.unlinkSync(this.temp); } catch { /* never created or already renamed */ }
  }
}
