import fs from 'node:fs';
import path from 'node:path';
import { QuantLensError } from '../base/errors';

/** A report or plan file: its folder exists and takes files, and the path is not a folder. */
export function checkReportPath(output: string): void {
  const dir = path.dirname(path.resolve(output));
  if (!fs.existsSync(dir)) throw new QuantLensError(output, `folder '${dir}' does not exist`);
  if (fs.existsSync(output) && fs.statSync(output).isDirectory()) throw new QuantLensError(output, 'is a folder; give a file path');
  checkWritable(output, dir);
}

/**
 * Whether a file can be created in `dir`, tried for real (permissions, a read-only file system, a full
 * disk all show up only then): a probe file made and removed at once, before any work is done.
 */
export function checkWritable(output: string, dir: string): void {
  const probe = path.join(dir, `.quantlens-probe-${process.pid}-${Date.now()}`);
  try {
    fs.closeSync(fs.openSync(probe, 'wx'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EROFS' ? 'is on a read-only file system' : code === 'EACCES' || code === 'EPERM' ? 'is not writable' : code === 'ENOSPC' ? 'is on a full disk' : `cannot be written (${code ?? 'unknown error'})`;
    throw new QuantLensError(output, `folder '${dir}' ${why}`);
  } finally {
    fs.rmSync(probe, { force: true });
  }
  if (fs.existsSync(output)) {
    try { fs.accessSync(output, fs.constants.W_OK); } catch { throw new QuantLensError(output, 'exists and is not writable'); }
  }
}
