import fs from 'node:fs';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';

/** A .npy file as numpy writes it (version 1.0, header padded to 64 bytes). */
export function npy(descr: string, shape: number[], data: ArrayBufferView): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

const DESCR: Partial<Record<string, string>> = { float32: '<f4', int64: '<i8', bool: '|b1' };

/** Samples as calibration data: one folder per sample (in order), an .npy per input. */
export function writeSampleFolders(dir: string, samples: Array<Record<string, ort.Tensor>>): string {
  samples.forEach((feeds, k) => {
    const d = path.join(dir, `sample_${String(k).padStart(3, '0')}`);
    fs.mkdirSync(d, { recursive: true });
    for (const [name, t] of Object.entries(feeds)) fs.writeFileSync(path.join(d, `${name}.npy`), npy(DESCR[t.type]!, [...t.dims], t.data as ArrayBufferView));
  });
  return dir;
}
