// Generates the protobufjs static codec for ONNX (src/core/onnx/generated/onnx.{js,d.ts}) from proto/onnx.proto.
// Runs before every build; skipped when the output is newer than the schema.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const schema = path.join(root, 'proto/onnx.proto');
const outDir = path.join(root, 'src/core/onnx/generated');
const js = path.join(outDir, 'onnx.js');
const dts = path.join(outDir, 'onnx.d.ts');

const fresh = (f) => fs.existsSync(f) && fs.statSync(f).mtimeMs >= fs.statSync(schema).mtimeMs;
if (fresh(js) && fresh(dts) && !process.argv.includes('--force')) process.exit(0);

fs.mkdirSync(outDir, { recursive: true });
const bin = (name) => path.join(root, 'node_modules/protobufjs-cli/bin', name);
// --force-number: int64 fields are plain numbers (dims, opset versions); the runtime also disables Long.
execFileSync(process.execPath, [bin('pbjs'), '-t', 'static-module', '-w', 'commonjs', '--force-number',
  '--keep-case', '--no-verify', '--no-delimited', '--no-beautify', '--no-service', '-o', js, schema], { stdio: 'inherit' });
execFileSync(process.execPath, [bin('pbts'), '--no-comments', '-o', dts, js], { stdio: 'inherit' });
console.log(`generated ${path.relative(root, js)} and ${path.relative(root, dts)}`);
