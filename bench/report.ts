// Shared by the benchmark scripts: fixtures in a temp folder, the median of repeated runs, one output row.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIXTURES } from '../src/core/fixtures';
import { saveModel } from '../src/core/onnx/model-io';

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const row = (name: string, v: string) => console.log(`${name.padEnd(52)} ${v}`);

/** Writes each named fixture to a temp folder, runs `fn` on it in turn, and removes the folder. */
export async function forEachFixture(names: string[], fn: (name: string, model: string, dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-bench-'));
  try {
    for (const name of names) {
      const model = path.join(dir, `${name}.onnx`);
      saveModel(FIXTURES[name].build(), model);
      await fn(name, model, dir);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
