import assert from 'node:assert/strict';
import path from 'node:path';
import { FIXTURES } from '../../src/core/fixtures';
import { quantizeModel } from '../../src/core/jobs/quantize-model';
import { DataType } from '../../src/core/onnx/dtypes';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { linearReluModel, toHalfModel } from '../helpers/models';
import { tmpDir } from '../helpers/util';

// float16 exports through the integer modes: float32 inside between the int8 kernels, float16 at the edges.
describe('float16 models in static and dynamic INT8', function () {
  this.timeout(120_000);
  const io = (file: string) => {
    const g = loadModel(file).model.graph!;
    return [...(g.input ?? []), ...(g.output ?? [])].map((v) => v.type?.tensor_type?.elem_type);
  };

  for (const [fixture, mode] of [['cnn', 'static'], ['transformer', 'dynamic'], ['transformer', 'static']] as const) {
    it(`${fixture} in float16, ${mode} INT8: loads, keeps float16 inputs and outputs, stays close to the float16 model`, async () => {
      const dir = tmpDir();
      const input = path.join(dir, `${fixture}-fp16.onnx`);
      saveModel(toHalfModel(FIXTURES[fixture].build()), input);
      assert.ok(io(input).every((t) => t === DataType.FLOAT16 || t === DataType.INT64));
      const r = await quantizeModel(input, path.join(dir, `${fixture}-${mode}.onnx`), { mode, ...(mode === 'static' ? { calibration: 'random:8', objective: 'size' as const } : {}) });
      assert.ok(r.quantized.length >= 2, `${r.quantized.length} nodes quantized: ${JSON.stringify(r.skipped.slice(0, 3))}`);
      assert.ok(r.warnings.some((w) => /float16 model: computed in float32 between the int8 kernels/.test(w)), r.warnings.join('\n'));
      assert.deepEqual(io(r.output), io(input), 'the float16 interface is kept');
      const [f] = Object.values(r.fidelity);
      assert.ok(f.cosine > 0.98, `cosine ${f.cosine}`);
      assert.ok(r.sizeAfter < r.sizeBefore, `${r.sizeAfter} vs ${r.sizeBefore}`);
    });
  }

  it('dynamic INT8 of an opset-9 and -10 model: the fused contrib op (DynamicQuantizeLinear is opset 11), no upgrade', async () => {
    for (const opset of [9, 10]) {
      const dir = tmpDir();
      const input = path.join(dir, `mm-${opset}.onnx`);
      saveModel(linearReluModel(opset), input);
      const r = await quantizeModel(input, path.join(dir, 'dyn.onnx'), { mode: 'dynamic' });
      assert.deepEqual(r.quantized, ['mm']);
      const m = loadModel(r.output).model;
      assert.deepEqual((m.graph!.node ?? []).map((n) => n.op_type), ['DynamicQuantizeMatMul', 'Add', 'Relu']);
      assert.equal(m.opset_import!.find((o) => !o.domain)!.version, opset);
      assert.ok(Object.values(r.fidelity)[0].cosine > 0.99);
    }
  });
});
