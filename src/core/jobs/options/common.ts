import { parseInputShape } from '../../calib/input-shapes';
import { parseShard } from '../../cluster/shard';
import type { Declared, Path } from './schema';

const isShard = (v: unknown) => {
  const s = v as { index?: unknown; count?: unknown } | undefined;
  return !!s && Number.isInteger(s.index) && Number.isInteger(s.count) && (s.index as number) >= 1 && (s.index as number) <= (s.count as number);
};

const isShapes = (v: unknown) =>
  !!v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((d) => Array.isArray(d) && d.every((x) => Number.isInteger(x) && x > 0));

export const DEVICE_CHOICES = {
  auto: 'CUDA when onnxruntime has it, else CPU (the report says which ran)',
  cpu: 'CPU execution provider',
  cuda: 'CUDA execution provider, falling back to CPU with the reason',
};

/** Options most jobs share, declared once; each job says where in its request they go. */
export function commonOptions<R>() {
  return {
    json: (): Declared<R> => ({ flag: 'json', kind: 'flag', help: 'print the result as JSON on stdout' }),
    output: (target: Path<R>, metavar: string, help: string): Declared<R> => ({ flag: 'output', short: 'o', kind: 'text', target, metavar, help }),
    device: (target: Path<R>, dflt?: string): Declared<R> => ({ flag: 'device', kind: 'choice', choices: DEVICE_CHOICES, target, default: dflt, help: 'where onnxruntime runs the models' }),
    calibration: (target: Path<R>, help = 'calibration samples: a folder (images, .npy, .npz, .json) or random:N for seeded random ones (marked in reports)'): Declared<R> =>
      ({ flag: 'calibration', kind: 'text', target, metavar: 'DIR|random:N', help }),
    samples: (target: Path<R>, help = 'use at most N samples'): Declared<R> => ({ flag: 'samples', kind: 'number', range: { min: 1, whole: true }, target, metavar: 'N', help }),
    exclude: (target: Path<R>): Declared<R> => ({ flag: 'exclude', kind: 'text', multiple: true, target, metavar: 'GLOB', help: 'module paths or node names to leave alone' }),
    shard: (target: Path<R>, pieces: string): Declared<R> => ({
      flag: 'shard', kind: 'text', parse: parseShard, format: (v) => [`${(v as { index: number }).index}/${(v as { count: number }).count}`], valid: isShard, target, metavar: 'I/N',
      help: `compute only the I-th of N shares of the ${pieces} into a part file; quantlens merge combines the parts`,
    }),
    part: (target: Path<R>): Declared<R> => ({
      flag: 'part', kind: 'text', target, metavar: 'FILE', help: 'where --shard writes its part (default REPORT.part-I-of-N.json)',
      applies: (v) => v.shard === undefined && 'applies with --shard only',
    }),
    inputShape: (target: Path<R>): Declared<R> => ({
      flag: 'input-shape', kind: 'text', multiple: true, separator: ',', target, metavar: 'NAME=1x3x48x320',
      parse: parseInputShape, collect: (items) => Object.fromEntries(items as Array<[string, number[]]>), valid: isShapes,
      format: (v) => Object.entries(v as Record<string, number[]>).map(([name, dims]) => `${name}=${dims.join('x')}`),
      help: 'sizes for an input with dynamic dimensions (repeatable, or NAME=...,NAME=...); random samples take them, images are resized to them',
    }),
  };
}
