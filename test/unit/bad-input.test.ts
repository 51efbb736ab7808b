import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { main } from '../../src/cli/main';
import { FIXTURES } from '../../src/core/fixtures';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { shapesInferable } from '../../src/core/runtime/capture';
import { AttributeType, onnx, type ModelProto, type TensorProto } from '../../src/core/onnx/proto';
import { linearReluModel, vi } from '../helpers/models';
import { DataType } from '../../src/core/onnx/dtypes';
import { makeTensor } from '../../src/core/onnx/tensor';
import { runOrt, tmpDir } from '../helpers/util';
import { npy } from '../helpers/npy';
import * as ort from 'onnxruntime-node';
import { errorStats } from '../../src/core/quant/tensor-quant';

const write = (file: string, m: ModelProto) => fs.writeFileSync(file, onnx.ModelProto.encode(m).finish());
const withWeight = (edit: (w: TensorProto) => void) => {
  const m = linearReluModel(17);
  edit(m.graph!.initializer![0]);
  return m;
};
const external = (location: string, offset = 0, length = 48) => (w: TensorProto) => {
  w.raw_data = new Uint8Array(0);
  w.data_location = 1;
  w.external_data = [{ key: 'location', value: location }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(length) }];
};

/** Each bad input: how to make it, which command meets it, and the one-line error expected. */
const MANIFEST: Array<{ name: string; make: (dir: string) => string; cmd?: string; expect: RegExp }> = [
  { name: 'missing file', make: (d) => path.join(d, 'nope.onnx'), expect: /: no such file$/ },
  { name: 'a directory', make: (d) => fs.mkdirSync(path.join(d, 'dir.onnx')) ?? path.join(d, 'dir.onnx'), expect: /: is a directory/ },
  { name: 'empty file', make: (d) => (fs.writeFileSync(path.join(d, 'empty.onnx'), ''), path.join(d, 'empty.onnx')), expect: /: is empty, not an ONNX model$/ },
  { name: 'text file', make: (d) => (fs.writeFileSync(path.join(d, 'text.onnx'), 'name,value\nfoo,1\n'), path.join(d, 'text.onnx')), expect: /: is a text file, not an ONNX model$/ },
  {
    name: 'truncated model',
    make: (d) => {
      const bytes = onnx.ModelProto.encode(FIXTURES['tiny-vlm'].build()).finish();
      fs.writeFileSync(path.join(d, 'trunc.onnx'), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
      return path.join(d, 'trunc.onnx');
    },
    expect: /: is truncated or corrupt/,
  },
  { name: 'unknown data type', make: (d) => (write(path.join(d, 'dt.onnx'), withWeight((w) => (w.data_type = 99))), path.join(d, 'dt.onnx')), expect: /: tensor 'W' has unknown data type 99$/ },
  { name: 'raw_data shorter than its shape', make: (d) => (write(path.join(d, 'short.onnx'), withWeight((w) => (w.raw_data = w.raw_data!.subarray(0, 20)))), path.join(d, 'short.onnx')), expect: /: tensor 'W' raw_data holds 20 bytes but its shape \[4,3\] needs 48$/ },
  { name: 'negative dimension', make: (d) => (write(path.join(d, 'neg.onnx'), withWeight((w) => (w.dims = [-4, 3]))), path.join(d, 'neg.onnx')), expect: /: tensor 'W' has an invalid dimension -4$/ },
  { name: 'external data: absolute path', make: (d) => (write(path.join(d, 'abs.onnx'), withWeight(external('/etc/passwd'))), path.join(d, 'abs.onnx')), expect: /: external data location '\/etc\/passwd' is an absolute path/ },
  { name: "external data: '..'", make: (d) => (write(path.join(d, 'dots.onnx'), withWeight(external('../secret.bin'))), path.join(d, 'dots.onnx')), expect: /: external data location '..\/secret.bin' contains '..'/ },
  {
    name: 'external data: symlink leaving the folder',
    make: (d) => {
      const outside = tmpDir();
      fs.writeFileSync(path.join(outside, 'weights.bin'), Buffer.alloc(48));
      fs.symlinkSync(path.join(outside, 'weights.bin'), path.join(d, 'link.bin'));
      write(path.join(d, 'link.onnx'), withWeight(external('link.bin')));
      return path.join(d, 'link.onnx');
    },
    expect: /: external data location 'link.bin' resolves \(through a link\) outside the folder/,
  },
  { name: 'external data: missing file', make: (d) => (write(path.join(d, 'gone.onnx'), withWeight(external('gone.bin'))), path.join(d, 'gone.onnx')), expect: /: external data file 'gone.bin' does not exist$/ },
  {
    name: 'external data: range past the end',
    make: (d) => {
      fs.writeFileSync(path.join(d, 'small.bin'), Buffer.alloc(40));
      write(path.join(d, 'past.onnx'), withWeight(external('small.bin', 0, 48)));
      return path.join(d, 'past.onnx');
    },
    expect: /: tensor 'W' external data runs past the end of 'small.bin'$/,
  },
  {
    name: 'an operator onnxruntime does not know (run)',
    cmd: 'run',
    make: (d) => {
      const m = linearReluModel(17);
      m.graph!.node![2].op_type = 'NoSuchOp';
      write(path.join(d, 'op.onnx'), m);
      return path.join(d, 'op.onnx');
    },
    // (Its input's batch is open, but a model that does not load says nothing of what random inputs ran.)
    expect: /^(?!.*random inputs ran).*: onnxruntime cannot load the model: .*NoSuchOp/,
  },
  {
    name: 'an opset onnxruntime does not run yet (run): the reason, without its source file and C++ signature',
    cmd: 'run',
    make: (d) => {
      const m = linearReluModel(17);
      m.opset_import![0].version = 99;
      write(path.join(d, 'future.onnx'), m);
      return path.join(d, 'future.onnx');
    },
    expect: /^(?!.*(onnxruntime_src|onnxruntime::|ONNXRuntimeError)).*future\.onnx: onnxruntime cannot load the model: .*[Oo]pset 99/,
  },
];

async function cli(args: string[]) {
  let stdout = '', stderr = '';
  const code = await main(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

describe('bad input: one clear line naming the file, exit 1, nothing written', () => {
  for (const c of MANIFEST) {
    it(c.name, async () => {
      const dir = tmpDir();
      const file = c.make(dir);
      const before = fs.readdirSync(dir).sort();
      const r = await cli([c.cmd ?? 'inspect', file, '--device', 'cpu'].filter((a, i) => c.cmd === 'run' || i < 2));
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
      assert.ok(lines[0].startsWith(`quantlens: error: ${file}: `), lines[0]);
      assert.match(lines[0], c.expect);
      assert.deepEqual(fs.readdirSync(dir).sort(), before, 'files were written');
    });
  }

  it('fixture into a folder that does not exist fails cleanly and writes nothing', async () => {
    const r = await cli(['fixture', 'mlp', '-o', '/nonexistent-dir/x.onnx']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^quantlens: error: \/nonexistent-dir\/x.onnx: folder '\/nonexistent-dir' does not exist\n$/);
  });

  it('bad usage exits 2', async () => {
    assert.equal((await cli(['inspect'])).code, 2);
    assert.equal((await cli(['frobnicate'])).code, 2);
    assert.equal((await cli(['fixture', 'resnet', '-o', 'x.onnx'])).code, 2);
    assert.equal((await cli(['inspect', 'a.onnx', '--bogus'])).code, 2);
  });

  it('a failed save leaves neither the output nor a temp file behind', () => {
    const dir = tmpDir();
    const m = linearReluModel(17);
    m.graph!.initializer![1].raw_data = m.graph!.initializer![1].raw_data!.subarray(0, 4);
    assert.throws(() => saveModel(m, path.join(dir, 'out.onnx'), { externalData: 'always', sizeThreshold: 0 }), /raw_data holds 4 bytes/);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('a model that fails in onnxruntime on its own inputs: every command names that model, not the output it was making', async () => {
    // ids + 100 indexes a 10-row table: onnxruntime fails while running, not while loading.
    const dir = tmpDir();
    const file = path.join(dir, 'oob.onnx');
    write(file, onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: 13 }],
      graph: {
        name: 'g', input: [vi('ids', DataType.INT64, [1, 4])], output: [vi('y', DataType.FLOAT, [1, 4, 32])],
        node: [{ name: 'shift', op_type: 'Add', input: ['ids', 'hundred'], output: ['big'] }, { name: 'embed', op_type: 'Gather', input: ['table', 'big'], output: ['e'] }, { name: 'fc', op_type: 'MatMul', input: ['e', 'w'], output: ['y'] }],
        initializer: [makeTensor('hundred', DataType.INT64, [], BigInt64Array.of(100n)), makeTensor('table', DataType.FLOAT, [10, 64], new Float32Array(640).fill(0.5)), makeTensor('w', DataType.FLOAT, [64, 32], new Float32Array(2048).fill(0.25))],
      },
    }));
    for (const args of [['quantize', file, '-o', path.join(dir, 's.onnx'), '--mode', 'static', '--calibration', 'random:2'], ['quantize', file, '-o', path.join(dir, 'w.onnx'), '--mode', 'weight'],
      ['sensitivity', file, '--calibration', 'random:2'], ['prune', file, '-o', path.join(dir, 'p.onnx'), '--sparsity', '0.5']]) {
      const r = await cli([...args, '--device', 'cpu']);
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('quantlens: error:'));
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(errors.length, 1, r.stderr);
      assert.ok(errors[0].startsWith(`quantlens: error: ${file}: `), `${args.join(' ')}: ${errors[0]}`);
      assert.match(errors[0], /out of data bounds/);
      assert.deepEqual(fs.readdirSync(dir), ['oob.onnx'], `${args.join(' ')} wrote files`);
    }
  });

  /** A waveform [batch, samples] read by a conv `width` samples wide (stride 160), optionally after a reflect Pad of 96 each side. */
  const waveModel = (width: number, pad = false) => onnx.ModelProto.create({
    ir_version: 8, opset_import: [{ domain: '', version: 13 }],
    graph: {
      name: 'g', input: [vi('wave', DataType.FLOAT, ['batch', 'samples'])], output: [vi('y', DataType.FLOAT, ['batch', 8, 'frames'])],
      node: [
        { name: 'add_channel', op_type: 'Unsqueeze', input: ['wave', 'one'], output: ['w1'] },
        ...(pad ? [{ name: 'pad', op_type: 'Pad', input: ['w1', 'pads'], output: ['w2'], attribute: [{ name: 'mode', type: AttributeType.STRING, s: Buffer.from('reflect') }] }] : []),
        { name: 'frames', op_type: 'Conv', input: [pad ? 'w2' : 'w1', 'basis'], output: ['y'], attribute: [{ name: 'strides', type: AttributeType.INTS, ints: [160] }] },
      ],
      initializer: [
        makeTensor('one', DataType.INT64, [1], BigInt64Array.of(1n)), makeTensor('pads', DataType.INT64, [6], BigInt64Array.of(0n, 0n, 96n, 0n, 0n, 96n)),
        makeTensor('basis', DataType.FLOAT, [8, 1, width], Float32Array.from({ length: 8 * width }, (_, i) => Math.sin(i))),
      ],
    },
  });

  it('random inputs too short for the model: every command runs again at a length it takes, and says so', async () => {
    // A conv 600 samples wide: at random inputs' default 16 samples onnxruntime infers 1 - 3 = -2 frames, and
    // refuses a session pinned to them while loading it; static mode's capture variant at such sizes aborted
    // the process inside onnxruntime (an openWakeWord spectrogram, a 512-sample STFT conv, did).
    const dir = tmpDir();
    const file = path.join(dir, 'wave.onnx');
    write(file, waveModel(600));
    const note = "random inputs ran 'wave' [batch, samples] as 1x1024: at 1x16 onnxruntime's shape inference finds them too small for the model (--input-shape sets the sizes)";
    for (const args of [['quantize', file, '-o', path.join(dir, 's.onnx'), '--mode', 'static', '--calibration', 'random:2'], ['quantize', file, '-o', path.join(dir, 'w.onnx'), '--mode', 'weight'],
      ['sensitivity', file, '--calibration', 'random:2', '-o', path.join(dir, 's.json')], ['prune', file, '-o', path.join(dir, 'p.onnx'), '--sparsity', '0.5'],
      // (Its shape probe's session refuses the pinned sizes while loading: still the inputs' fault, refitted.)
      ['prune', file, '-o', path.join(dir, 'ps.onnx'), '--method', 'structured', '--sparsity', '0.25']]) {
      const r = await cli([...args, '--device', 'cpu']);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.stderr.includes(note), `${args.join(' ')}: ${r.stderr}`);
    }
    // What was written runs at the length the note names, in onnxruntime, near the float model (static mode
    // calibrated on two random samples, so only loosely: garbage would be near 0 dB).
    const x = new ort.Tensor('float32', Float32Array.from({ length: 1024 }, (_, i) => Math.sin(i * 0.05)), [1, 1024]);
    const ref = (await runOrt(file, { wave: x })).y;
    for (const [out, db] of [['s.onnx', 10], ['w.onnx', 25]] as const) {
      const y = (await runOrt(path.join(dir, out), { wave: x })).y;
      assert.equal(y.length, ref.length);
      assert.ok(errorStats(ref, y).sqnr > db, `${out}: ${errorStats(ref, y).sqnr} dB`);
    }
    const run = await cli(['run', file, '--device', 'cpu']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /wave \[1, 1024\]/);
    // Without running it (a large model is not run at each length): at 64 samples a size comes out
    // negative, at 512 shape inference truncates (512 − 600) / 160 + 1 to one frame, but the window does not fit.
    const loaded = loadModel(file);
    assert.deepEqual(await Promise.all([64, 512, 600, 1024].map((n) => shapesInferable(loaded, { wave: [1, n] }, 'cpu'))), [false, false, true, true]);
  });

  it('a length only a run rejects (a reflect Pad wider than the signal) is found by running a small model', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'padded.onnx');
    write(file, waveModel(200, true));
    const r = await cli(['quantize', file, '-o', path.join(dir, 'w.onnx'), '--mode', 'weight', '--device', 'cpu']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stderr.includes("random inputs ran 'wave' [batch, samples] as 1x256: at 1x16 onnxruntime could not run it"), r.stderr);
  });

  it('inputs too short, given or at every length tried: one line naming the model and the sizes, no abort and no file', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'wave.onnx');
    write(file, waveModel(600));
    // Given too short: static mode's capture refuses them before a variant onnxruntime would abort on (the
    // CLI runs in this process: an abort would end the test run).
    const given = await cli(['quantize', file, '-o', path.join(dir, 's.onnx'), '--mode', 'static', '--calibration', 'random:2', '--input-shape', 'wave=1x64', '--device', 'cpu']);
    assert.equal(given.code, 1, given.stderr);
    assert.equal(given.stderr.trim().split('\n').filter((l) => l.startsWith('quantlens: error:')).length, 1, given.stderr);
    assert.match(given.stderr, new RegExp(`quantlens: error: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: onnxruntime infers a negative size inside the model for inputs of 'wave' 1x64: they are too small for it`));
    assert.deepEqual(fs.readdirSync(dir), ['wave.onnx']);
    // A kernel longer than every length tried: the error says what random inputs ran and how to set them.
    const wide = path.join(dir, 'wide.onnx');
    write(wide, waveModel(20000));
    for (const args of [['run', wide], ['quantize', wide, '-o', path.join(dir, 'w.onnx'), '--mode', 'weight']]) {
      const r = await cli([...args, '--device', 'cpu']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr.trim(), /^quantlens: error: .*wide\.onnx: .*\(random inputs ran 'wave' \[batch, samples\] as 1x16; if the model takes other sizes, pass --input-shape wave=1x16 with them, or real data\)$/);
    }
    const ok = await cli(['run', wide, '--input-shape', 'wave=1x20000', '--device', 'cpu']);
    assert.equal(ok.code, 0, ok.stderr);
    // The user's own data too short (run --data): one line naming the model and onnxruntime's reason, with
    // no word of random inputs.
    const data = path.join(dir, 'clips');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'clip.npy'), npy('<f4', [1, 100], new Float32Array(100)));
    const own = await cli(['run', file, '--data', data, '--device', 'cpu']);
    assert.equal(own.code, 1, own.stdout);
    assert.match(own.stderr.trim(), /^quantlens: error: .*wave\.onnx: (?!.*random inputs)[^\n]*$/);
  });

  it('an input that is not a tensor (a sequence) is refused in one line naming the model', async () => {
    const dir = tmpDir();
    const m = linearReluModel(17);
    m.graph!.input!.push({ name: 'history', type: { sequence_type: { elem_type: { tensor_type: { elem_type: DataType.FLOAT } } } } });
    write(path.join(dir, 'seq.onnx'), m);
    const r = await cli(['run', path.join(dir, 'seq.onnx')]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trimEnd(), `quantlens: error: ${path.join(dir, 'seq.onnx')}: input 'history' is a sequence, not a tensor: onnxruntime-node feeds tensors only`);
  });

  it('an output that declares no type is a tensor to run and compare (onnxruntime infers it), not a sequence or map', async () => {
    const dir = tmpDir();
    const m = linearReluModel(17);
    const out = m.graph!.output![0];
    m.graph!.output = [{ name: out.name }];
    const file = path.join(dir, 'untyped.onnx');
    write(file, m);
    const run = await cli(['run', file]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`${out.name}: float32\\[`));
    assert.doesNotMatch(run.stdout, /not a tensor/);
    const c = await cli(['compare', file, file, '--json']);
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(Object.keys(JSON.parse(c.stdout).outputs), [out.name]);
  });

  it('a scikit-learn style classifier whose probabilities are a ZipMap (a sequence of maps): run, quantize and sensitivity work on its tensor outputs', async () => {
    // onnxruntime-node cannot return a sequence: every run that fetched it failed ("Non tensor type is temporarily not supported").
    const dir = tmpDir();
    const file = path.join(dir, 'classifier.onnx');
    write(file, onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: 13 }, { domain: 'ai.onnx.ml', version: 1 }],
      graph: {
        name: 'g', input: [vi('x', DataType.FLOAT, [1, 16])],
        output: [vi('label', DataType.INT64, [1]), { name: 'output_probability', type: { sequence_type: { elem_type: { map_type: { key_type: DataType.INT64, value_type: { tensor_type: { elem_type: DataType.FLOAT } } } } } } }],
        node: [
          { name: 'fc', op_type: 'MatMul', input: ['x', 'w'], output: ['h'] },
          { name: 'relu', op_type: 'Relu', input: ['h'], output: ['r'] },
          { name: 'linear', op_type: 'LinearClassifier', domain: 'ai.onnx.ml', input: ['r'], output: ['label', 'probabilities'], attribute: [
            { name: 'coefficients', type: AttributeType.FLOATS, floats: Array.from({ length: 96 }, (_, i) => Math.sin(i)) }, { name: 'intercepts', type: AttributeType.FLOATS, floats: [0.1, 0.2, 0.3] },
            { name: 'classlabels_ints', type: AttributeType.INTS, ints: [0, 1, 2] }, { name: 'post_transform', type: AttributeType.STRING, s: new TextEncoder().encode('SOFTMAX') }] },
          { name: 'zipmap', op_type: 'ZipMap', domain: 'ai.onnx.ml', input: ['probabilities'], output: ['output_probability'], attribute: [{ name: 'classlabels_int64s', type: AttributeType.INTS, ints: [0, 1, 2] }] },
        ],
        initializer: [makeTensor('w', DataType.FLOAT, [16, 32], Float32Array.from({ length: 512 }, (_, i) => Math.cos(i * 0.7) * 0.3))],
      },
    }));
    const run = await cli(['run', file]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /label: int64\[1\]/);
    assert.match(run.stdout, /output_probability: not a tensor \(a sequence, map or optional, which onnxruntime-node cannot return\): not fetched/);
    const q = await cli(['quantize', file, '-o', path.join(dir, 'q.onnx'), '--mode', 'weight', '--bits', '8']);
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout, /label: .*cosine/);
    const s = await cli(['sensitivity', file, '--calibration', 'random:2', '--json']);
    assert.equal(s.code, 0, s.stderr);
    const layer = JSON.parse(s.stdout).layers[0];
    // The region past the layer ends in an integer label and a map: the noise is measured at the layer's output.
    assert.ok(layer.sensitivityDb > -100 && layer.sensitivityDb < 0, JSON.stringify(layer));
    // End to end there is only the integer label to compare: it says so instead of ranking every layer at −200 dB.
    const e2e = await cli(['sensitivity', file, '--calibration', 'random:2', '--method', 'end-to-end']);
    assert.equal(e2e.code, 1);
    assert.equal(e2e.stderr.split('\n').filter((l) => l.startsWith('quantlens: error:')).join('\n'), `quantlens: error: ${file}: has no float output to measure the noise at end to end; --method local measures it at each layer`);
    // With the map as its only output there is nothing onnxruntime-node can return: one line says so.
    const m = onnx.ModelProto.decode(fs.readFileSync(file));
    m.graph!.output = m.graph!.output!.slice(1);
    write(path.join(dir, 'map-only.onnx'), m);
    const r = await cli(['run', path.join(dir, 'map-only.onnx')]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trimEnd(), `quantlens: error: ${path.join(dir, 'map-only.onnx')}: has no tensor output (output_probability: sequences, maps or optionals, which onnxruntime-node cannot return)`);
  });

  it('compare of two models that take different inputs says so in one line', async () => {
    const dir = tmpDir();
    const a = linearReluModel(17), b = linearReluModel(17);
    b.graph!.input![0].name = 'pixels';
    b.graph!.node![0].input![0] = 'pixels';
    write(path.join(dir, 'a.onnx'), a);
    write(path.join(dir, 'b.onnx'), b);
    const r = await cli(['compare', path.join(dir, 'a.onnx'), path.join(dir, 'b.onnx')]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('quantlens: error:')).join('\n'), `quantlens: error: ${path.join(dir, 'b.onnx')}: takes different inputs than ${path.join(dir, 'a.onnx')} (pixels against ${a.graph!.input![0].name}): compare a model with one made from it`);
  });

  it('the installed bin prints the same single line, with no stack trace', () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'bad.onnx'), Buffer.from([0x08, 0x07, 0x12, 0xff, 0xff]));
    const r = spawnSync(process.execPath, ['bin/quantlens.js', 'inspect', path.join(dir, 'bad.onnx')], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/);
  });
});
