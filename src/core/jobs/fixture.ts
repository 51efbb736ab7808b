import path from 'node:path';
import fs from 'node:fs';
import { QuantLensError } from '../base/errors';
import { FIXTURES, FIXTURE_NAMES } from '../fixtures';
import { saveModel } from '../onnx/model-io';
import { checkWritable } from '../fs/output-path';

/** `fixture NAME -o OUT` for the CLI and the engine alike: writes a built-in sample model. */
export function writeFixture(name: string, output: string): { output: string; sizeBytes: number; fixture: string; description: string } {
  const f = FIXTURES[name];
  if (!f) throw new QuantLensError(undefined, `unknown fixture '${name}'; choose one of: ${FIXTURE_NAMES.join(', ')}`, 'usage');
  const dir = path.dirname(path.resolve(output));
  if (!fs.existsSync(dir)) throw new QuantLensError(output, `folder '${dir}' does not exist`);
  checkWritable(output, dir);
  const r = saveModel(f.build(), output);
  return { output: r.output, sizeBytes: r.bytes, fixture: name, description: f.description };
}
