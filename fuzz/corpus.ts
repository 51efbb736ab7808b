// Writes the fuzz regression corpus (test/fuzz-corpus/): one small damaged model per kind of damage the
// fuzzer makes, and manifest.json with what each must give: it loads (and the passes run), or this error.
// Run `node out/fuzz/corpus.js` after `npm run build` to regenerate; test/unit/fuzz-corpus.test.ts checks it.
import fs from 'node:fs';
import path from 'node:path';
import * as $protobuf from 'protobufjs/minimal';
import { QuantLensError } from '../src/core/base/errors';
import { ModelBuilder } from '../src/core/fixtures/model-builder';
import { DataType } from '../src/core/onnx/dtypes';
import { onnx, type ModelProto } from '../src/core/onnx/proto';
import { exercise } from './exercise';

const dir = path.resolve('test/fuzz-corpus');

function base(): ModelProto {
  const b = new ModelBuilder(17);
  const x = b.input('x', DataType.FLOAT, [1, 4]);
  const w = b.initializer('fc.weight', DataType.FLOAT, [4, 4], Float32Array.from({ length: 16 }, (_, i) => (i % 5) / 4 - 0.5));
  const y = b.op('/fc', 'Relu', [b.op('/fc', 'MatMul', [x, w])]);
  b.rename(b.op('/out', 'Add', [y, b.constant('/out', DataType.FLOAT, [4], Float32Array.from([0.1, 0.2, 0.3, 0.4]))]), 'y');
  b.output('y', DataType.FLOAT, [1, 4]);
  return b.build();
}

const enc = (m: ModelProto) => {
  const limit = $protobuf.util.recursionLimit;
  $protobuf.util.recursionLimit = 100_000;
  try { return onnx.ModelProto.encode(m).finish(); } finally { $protobuf.util.recursionLimit = limit; }
};
const weight = (m: ModelProto) => m.graph!.initializer![0];
function nested(m: ModelProto, depth: number): ModelProto {
  const leaf = (name: string): onnx.IGraphProto => ({ name, node: [], output: [] });
  let g = leaf('leaf');
  for (let d = 0; d < depth; d++) g = { name: `g${d}`, node: [{ op_type: 'If', input: ['c'], output: [`o${d}`], attribute: [{ name: 'then_branch', type: 5, g }, { name: 'else_branch', type: 5, g: leaf(`e${d}`) }] }], output: [{ name: `o${d}` }] };
  m.graph!.node!.push({ op_type: 'If', name: 'deep', input: ['x'], output: ['deep'], attribute: [{ name: 'then_branch', type: 5, g }, { name: 'else_branch', type: 5, g: leaf('else') }] });
  return m;
}
function external(location: string, extra: Array<[string, string]> = []): ModelProto {
  const m = base();
  Object.assign(weight(m), { raw_data: new Uint8Array(0), data_location: 1, external_data: [{ key: 'location', value: location }, ...extra.map(([key, value]) => ({ key, value }))] });
  return m;
}

const cases: Array<[string, () => Uint8Array]> = [
  ['empty.onnx', () => new Uint8Array(0)],
  ['text.onnx', () => new TextEncoder().encode('this is not a model\n')],
  ['truncated.onnx', () => enc(base()).subarray(0, 140)],
  ['length-field.onnx', () => {
    // The graph's length prefix (field 7, wire type 2: tag 0x3a) claims 2 GB.
    const b = Array.from(enc(base()));
    const at = b.indexOf(0x3a);
    let end = at + 1;
    while (b[end] & 0x80) end++;
    b.splice(at + 1, end - at, 0xff, 0xff, 0xff, 0xff, 0x07);
    return Uint8Array.from(b);
  }],
  ['absurd-dims.onnx', () => { const m = base(); weight(m).dims = [2 ** 20, 2 ** 20]; return enc(m); }],
  ['too-many-elements.onnx', () => { const m = base(); Object.assign(weight(m), { dims: [2 ** 40, 2 ** 20], raw_data: new Uint8Array(0) }); return enc(m); }],
  ['negative-dim.onnx', () => { const m = base(); weight(m).dims = [-4, 4]; return enc(m); }],
  ['dtype-tag.onnx', () => { const m = base(); weight(m).data_type = 99; return enc(m); }],
  ['short-raw-data.onnx', () => { const m = base(); weight(m).raw_data = weight(m).raw_data!.subarray(0, 6); return enc(m); }],
  ['nesting-too-deep.onnx', () => enc(nested(base(), 60))],
  ['nesting-ok.onnx', () => enc(nested(base(), 10))],
  ['duplicate-names.onnx', () => { const m = base(); m.graph!.node![1].output![0] = m.graph!.node![0].output![0]; return enc(m); }],
  ['cycle.onnx', () => { const m = base(); m.graph!.node![0].input!.push(m.graph!.node![2].output![0]); return enc(m); }],
  ['dangling-input.onnx', () => { const m = base(); m.graph!.node![1].input!.push('nowhere'); return enc(m); }],
  ['external-absolute.onnx', () => enc(external('/etc/passwd'))],
  ['external-dotdot.onnx', () => enc(external('../../etc/shadow'))],
  ['external-missing.onnx', () => enc(external('missing.bin'))],
  ['external-past-end.onnx', () => enc(external('data.bin', [['offset', '8'], ['length', '64']]))],
  ['external-bad-offset.onnx', () => enc(external('data.bin', [['offset', '-5']]))],
];

(async () => {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'data.bin'), new Uint8Array(16));
  const manifest: Array<{ file: string; expect: 'loads' } | { file: string; error: string }> = [];
  for (const [file, make] of cases) {
    const f = path.join(dir, file);
    fs.writeFileSync(f, make());
    try {
      await exercise(f);
      manifest.push({ file, expect: 'loads' });
    } catch (e) {
      if (!(e instanceof QuantLensError)) throw new Error(`${file}: not a clean error: ${(e as Error).stack}`);
      manifest.push({ file, error: e.message.replace(f, '<file>') });
    }
  }
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  console.log(manifest.map((m) => `${m.file}: ${'error' in m ? m.error : 'loads'}`).join('\n'));
})();
