import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { ModelBuilder } from '../../src/core/fixtures/model-builder';
import { DataType } from '../../src/core/onnx/dtypes';
import { ModelEditor } from '../../src/core/onnx/editor';
import { fuseHardActivations } from '../../src/core/onnx/fuse-hard-activations';
import { onnx, type ModelProto } from '../../src/core/onnx/proto';
import { runOrt } from '../helpers/util';

/**
 * Paddle2ONNX's decomposed activations on a [1, 8, 6, 6] input: HardSwish as Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)
 * and HardSigmoid as Mul(Clip(Add(x, 3), 0, 6), 1/6), Clip with attributes (opset 9) or inputs (opset 11);
 * and two look-alikes that must stay: a Clip to [0, 5], and an Add whose output is also read elsewhere.
 */
function model(opset: number): ModelProto {
  const b = new ModelBuilder(opset);
  const x = b.input('x', DataType.FLOAT, [1, 8, 6, 6]);
  const k = (v: number) => b.initializer(`k${b.initializers.length}`, DataType.FLOAT, [], Float32Array.of(v));
  const clip = (scope: string, t: string, lo: number, hi: number) =>
    opset < 11 ? b.op(scope, 'Clip', [t], { min: { float: lo }, max: { float: hi } }) : b.op(scope, 'Clip', [t, k(lo), k(hi)]);
  const swish = (scope: string, t: string) => b.op(scope, 'Div', [b.op(scope, 'Mul', [t, clip(scope, b.op(scope, 'Add', [t, k(3)]), 0, 6)]), k(6)]);
  const h1 = swish('/a', x);
  const h2 = b.op('/b', 'Mul', [clip('/b', b.op('/b', 'Add', [h1, k(3)]), 0, 6), k(1 / 6)]);
  const notSix = b.op('/c', 'Div', [b.op('/c', 'Mul', [h2, clip('/c', b.op('/c', 'Add', [h2, k(3)]), 0, 5)]), k(6)]);
  const shared = b.op('/d', 'Add', [notSix, k(3)]);
  const d = b.op('/d', 'Div', [b.op('/d', 'Mul', [notSix, clip('/d', shared, 0, 6)]), k(6)]);
  b.rename(b.op('/e', 'Add', [d, shared]), 'y');
  b.output('y', DataType.FLOAT, [1, 8, 6, 6]);
  return b.build();
}

describe('decomposed HardSwish / HardSigmoid rewritten to HardSigmoid', () => {
  for (const opset of [9, 11, 13]) {
    it(`opset ${opset}: the same outputs in onnxruntime, fewer ops, look-alikes left alone`, async () => {
      const m = model(opset);
      const before = onnx.ModelProto.encode(m).finish();
      const r = fuseHardActivations(new ModelEditor(m), { dir: '.', file: 'm.onnx' });
      assert.deepEqual(r, { hardSwish: 1, hardSigmoid: 1 });
      const ops = (m.graph!.node ?? []).map((n) => n.op_type);
      assert.equal(ops.filter((o) => o === 'HardSigmoid').length, 2);
      assert.equal(ops.filter((o) => o === 'Clip').length, 2, 'the [0, 5] clip and the shared Add\'s clip stay');
      const data = Float32Array.from({ length: 288 }, (_, i) => Math.sin(i * 0.37) * 8);
      const feeds = { x: new ort.Tensor('float32', data, [1, 8, 6, 6]) };
      const [a, c] = [await runOrt(before, feeds), await runOrt(onnx.ModelProto.encode(m).finish(), feeds)];
      let maxErr = 0;
      for (let i = 0; i < a.y.length; i++) maxErr = Math.max(maxErr, Math.abs(a.y[i] - c.y[i]));
      assert.ok(maxErr < 1e-5, `max error ${maxErr}`);
      assert.ok(a.y.some((v) => v !== 0));
    });
  }
});
