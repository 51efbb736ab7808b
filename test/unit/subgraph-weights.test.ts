import assert from 'node:assert/strict';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { quantizeModel } from '../../src/core/jobs/quantize-model';
import { analyzeSensitivity } from '../../src/core/sensitivity/analyze';
import { DataType } from '../../src/core/onnx/dtypes';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { AttributeType, onnx, type GraphProto, type ModelProto } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { walkGraphs } from '../../src/core/onnx/walk';
import { errorStats } from '../../src/core/quant/tensor-quant';
import { QuantLensError } from '../../src/core/base/errors';
import { vi } from '../helpers/models';
import { runOrt, tmpDir } from '../helpers/util';

const weights = (name: string, dims: number[], seed: number) => makeTensor(name, DataType.FLOAT, dims, Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37 + seed) * 0.2));
const graphAttr = (name: string, g: GraphProto) => ({ name, type: AttributeType.GRAPH, g });

/**
 * If(cond): the then branch multiplies X by its own initializer `w`, the else branch by another of the
 * same name (scopes allow it) and then, one If deeper, a Gemm whose weight `G` is the main graph's.
 */
function branchedModel(): ModelProto {
  const inner: GraphProto = {
    name: 'inner', node: [{ name: 'gemm', op_type: 'Gemm', input: ['e1', 'G'], output: ['e2'], attribute: [{ name: 'transB', type: AttributeType.INT, i: 1 }] }],
    output: [vi('e2', DataType.FLOAT, ['n', 24])],
  };
  const innerElse: GraphProto = { name: 'inner_else', node: [{ name: 'id', op_type: 'Identity', input: ['e1'], output: ['e3'] }], output: [vi('e3', DataType.FLOAT, ['n', 24])] };
  const thenG: GraphProto = {
    name: 'then', node: [{ name: 'then_mm', op_type: 'MatMul', input: ['X', 'w'], output: ['t1'] }, { name: 'then_relu', op_type: 'Relu', input: ['t1'], output: ['t2'] }],
    initializer: [weights('w', [32, 24], 1)], output: [vi('t2', DataType.FLOAT, ['n', 24])],
  };
  const elseG: GraphProto = {
    name: 'else',
    node: [
      { name: 'else_mm', op_type: 'MatMul', input: ['X', 'w'], output: ['e1'] },
      { name: 'inner_if', op_type: 'If', input: ['cond'], output: ['e4'], attribute: [graphAttr('then_branch', innerElse), graphAttr('else_branch', inner)] },
    ],
    initializer: [weights('w', [32, 24], 2)], output: [vi('e4', DataType.FLOAT, ['n', 24])],
  };
  return onnx.ModelProto.create({
    ir_version: 8, opset_import: [{ domain: '', version: 17 }], producer_name: 'test',
    graph: {
      name: 'g', node: [{ name: 'if', op_type: 'If', input: ['cond'], output: ['Y'], attribute: [graphAttr('then_branch', thenG), graphAttr('else_branch', elseG)] }],
      initializer: [weights('G', [24, 24], 3)], input: [vi('cond', DataType.BOOL, []), vi('X', DataType.FLOAT, ['n', 32])], output: [vi('Y', DataType.FLOAT, ['n', 24])],
    },
  });
}

// Layers inside If branches and Loop/Scan bodies (Silero VAD, merged decoders): weight and dynamic mode
// quantize them whether their weights are the main graph's or the body's own initializers (moved to the main graph).
describe('weight and dynamic mode inside subgraphs', function () {
  this.timeout(120_000);
  const dir = tmpDir();
  const input = path.join(dir, 'branched.onnx');
  saveModel(branchedModel(), input);
  const X = new ort.Tensor('float32', Float32Array.from({ length: 4 * 32 }, (_, i) => Math.cos(i * 0.91)), [4, 32]);
  const feeds = (c: boolean) => ({ cond: new ort.Tensor('bool', [c], []), X });

  for (const format of ['dequantize', 'expand'] as const) {
    it(`weight INT8 (${format}): every branch's layer quantized, each branch still reading its own weight`, async () => {
      const output = path.join(dir, `q-${format}.onnx`);
      const r = await quantizeModel(input, output, { mode: 'weight', bits: 8, weightFormat: format, calibration: 'random:4' });
      assert.deepEqual([...r.quantized].sort(), ['else_mm', 'gemm', 'then_mm']);
      // No float weight is left in the file: the bodies' own ones were moved out, and all three replaced.
      const q = loadModel(output).model;
      for (const { graph } of walkGraphs(q.graph!)) assert.ok(!(graph.initializer ?? []).some((t) => t.data_type === DataType.FLOAT && (t.dims ?? []).reduce((a, d) => a * Number(d), 1) >= 24 * 24), graph.name ?? '');
      // Both branches, the nested one too: as the float model computes them (a branch reading the other's
      // `w` after the move would be far off).
      for (const c of [true, false]) {
        const [f, g] = [await runOrt(input, feeds(c)), await runOrt(output, feeds(c))];
        const sqnr = errorStats(f.Y, g.Y).sqnr;
        assert.ok(sqnr > 25, `cond ${c}: ${sqnr.toFixed(1)} dB`);
      }
    });
  }

  it('dynamic INT8: the activations quantized inside the branches, where they are', async () => {
    const output = path.join(dir, 'dynamic.onnx');
    const r = await quantizeModel(input, output, { mode: 'dynamic', calibration: 'random:4' });
    assert.deepEqual([...r.quantized].sort(), ['else_mm', 'gemm', 'then_mm']);
    // Each DynamicQuantizeLinear sits in the body that reads its activation (the main graph cannot see it).
    const q = loadModel(output).model;
    const bodies = [...walkGraphs(q.graph!)].filter(({ depth }) => depth > 0);
    assert.equal(bodies.reduce((a, { graph }) => a + (graph.node ?? []).filter((n) => n.op_type === 'DynamicQuantizeLinear').length, 0), 3);
    assert.ok(!(q.graph!.node ?? []).some((n) => n.op_type === 'DynamicQuantizeLinear'));
    for (const c of [true, false]) {
      const sqnr = errorStats((await runOrt(input, feeds(c))).Y, (await runOrt(output, feeds(c))).Y).sqnr;
      assert.ok(sqnr > 25, `cond ${c}: ${sqnr.toFixed(1)} dB`);
    }
  });

  it('sensitivity ranks main-graph layers only, and says so when every layer is in a body', async () => {
    await assert.rejects(analyzeSensitivity(input, { mode: 'weight', calibration: 'random:2', output: null }), /has no layer that weight-mode quantization applies to in its main graph \(3 inside If\/Loop\/Scan bodies, which quantize takes but sensitivity does not rank\)/);
  });

  it('static mode says why it leaves layers inside subgraphs float', async () => {
    await assert.rejects(quantizeModel(input, path.join(dir, 'static.onnx'), { mode: 'static', calibration: 'random:4' }), (e: unknown) => {
      assert.ok(e instanceof QuantLensError);
      assert.match(e.message, /nothing was quantized in static mode: 3 nodes skipped \(3: inside a subgraph \(If\/Loop\/Scan\): static mode needs calibrated ranges there.*--mode weight or dynamic quantizes it\)/);
      return true;
    });
  });
});
