import assert from 'node:assert/strict';
import { FIXTURES } from '../../src/core/fixtures';
import { DataType } from '../../src/core/onnx/dtypes';
import { onnx, type ModelProto, type NodeProto } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import path from 'node:path';
import { saveModel } from '../../src/core/onnx/model-io';
import { analyzeSensitivity } from '../../src/core/sensitivity/analyze';
import { downstreamRegion } from '../../src/core/sensitivity/region';
import { vi } from '../helpers/models';
import { tmpDir } from '../helpers/util';

/** Eight 3×3 convs with a ReLU after each and no skip connection: a plain conv stack; `stored`: float weights, or int8 ones behind a DequantizeLinear (a Q/DQ export). */
function convStack(stored: 'float' | 'int8' = 'float'): ModelProto {
  const nodes: NodeProto[] = [];
  const inits = [];
  let x = 'x';
  for (let k = 0; k < 8; k++) {
    if (stored === 'float') inits.push(makeTensor(`w${k}`, DataType.FLOAT, [4, 4, 3, 3], Float32Array.from({ length: 144 }, (_, i) => Math.sin(i + k) / 6)));
    else {
      inits.push(makeTensor(`q${k}`, DataType.INT8, [4, 4, 3, 3], Int8Array.from({ length: 144 }, (_, i) => Math.round(Math.sin(i + k) * 100))), makeTensor(`s${k}`, DataType.FLOAT, [], Float32Array.of(0.002)));
      nodes.push({ name: `dq${k}`, op_type: 'DequantizeLinear', input: [`q${k}`, `s${k}`], output: [`w${k}`] });
    }
    nodes.push({ name: `conv${k}`, op_type: 'Conv', input: [x, `w${k}`], output: [`c${k}`], attribute: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }] });
    nodes.push({ name: `relu${k}`, op_type: 'Relu', input: [`c${k}`], output: [`r${k}`] });
    x = `r${k}`;
  }
  const vi = (name: string) => ({ name, type: { tensor_type: { elem_type: 1, shape: { dim: [1, 4, 8, 8].map((d) => ({ dim_value: d })) } } } });
  return onnx.ModelProto.create({ ir_version: 8, opset_import: [{ domain: '', version: 17 }], graph: { name: 'stack', node: nodes, initializer: inits, input: [vi('x')], output: [vi(x)] } });
}

describe('local sensitivity: regions and copies', function () {
  this.timeout(300_000);

  it('a plain conv stack: the error is carried through two more layers and measured where it enters the third (float weights, or int8 behind DequantizeLinear)', () => {
    for (const stored of ['float', 'int8'] as const) {
      const r = downstreamRegion(convStack(stored), new Set(['conv0']));
      assert.deepEqual([...r.nodes].filter((n) => !n.startsWith('dq')).sort(), ['conv1', 'conv2', 'relu0', 'relu1', 'relu2'], stored);
      assert.deepEqual(r.boundary, ['r2'], stored);
    }
    const m = convStack();
    // Near the end the model's output ends it first.
    assert.deepEqual(downstreamRegion(m, new Set(['conv6'])).boundary, ['r7']);
    // Without the cap it ran to the output through every layer.
    const uncapped = downstreamRegion(m, new Set(['conv0']), 64, Infinity);
    assert.equal([...uncapped.nodes].filter((n) => n.startsWith('conv')).length, 7);
  });

  it('a transformer\'s projections still reach their block\'s residual Add (through o_proj and fc2)', () => {
    const m = FIXTURES.transformer.build();
    const add = (n: NodeProto) => n.op_type === 'Add' && (n.input ?? []).every((i) => !m.graph!.initializer!.some((t) => t.name === i));
    for (const [layer, via] of [['/layers.0/self_attn/q_proj/MatMul', '/layers.0/self_attn/out_proj/MatMul'], ['/layers.0/mlp/fc1/MatMul', '/layers.0/mlp/fc2/MatMul']]) {
      const r = downstreamRegion(m, new Set([layer]));
      assert.ok(r.nodes.has(via), `${layer}: region holds ${via}`);
      const ends = m.graph!.node!.filter((n) => (n.output ?? []).some((o) => r.boundary.includes(o)));
      assert.ok(ends.length && ends.every(add), `${layer} ends at ${ends.map((n) => n.name).join()}`);
      // The residual Add is a join: the error can be measured at its input from the region, with the signal of its output.
      assert.deepEqual(r.joins.map((j) => [j.op, j.output]), ends.map((n) => ['Add', n.output![0]]));
      for (const j of r.joins) assert.ok(r.nodes.has(j.node) && ends.some((n) => n.name === j.node && n.input!.includes(j.input)), JSON.stringify(j));
    }
  });

  // A detector's post-processing: which rows pass a threshold (NonZero) depends on the values, so a copy
  // that carried a layer's error through it kept other rows than the float model, and its tensors no longer
  // matched the float ones it was compared with or indexed by (torchvision Mask R-CNN: 'indices element out
  // of data bounds', and the whole analysis failed). Copies stop before such ops.
  it('a copy stops before ops whose output size depends on the values (NonZero, TopK, NMS...): the analysis runs where the kept rows differ', async () => {
    const w = (name: string, dims: number[], seed: number) => makeTensor(name, DataType.FLOAT, dims, Float32Array.from({ length: dims[0] * dims[1] }, (_, i) => Math.sin(i * 1.3 + seed) * 0.4));
    const m = onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'g',
        node: [
          { name: '/score/MatMul', op_type: 'MatMul', input: ['x', 'score.weight'], output: ['s'] },
          { name: '/boxes/MatMul', op_type: 'MatMul', input: ['x', 'boxes.weight'], output: ['b'] },
          { name: '/max/ReduceMax', op_type: 'ReduceMax', input: ['s'], output: ['smax'], attribute: [{ name: 'axes', type: 7, ints: [1] }, { name: 'keepdims', type: 2, i: 0 }] },
          { name: '/keep/Greater', op_type: 'Greater', input: ['smax', 'zero'], output: ['mask'] },
          { name: '/keep/NonZero', op_type: 'NonZero', input: ['mask'], output: ['nz'] },
          { name: '/keep/Squeeze', op_type: 'Squeeze', input: ['nz', 'axis0'], output: ['idx'] },
          { name: '/keep/Gather', op_type: 'Gather', input: ['b', 'idx'], output: ['kept'] },
        ],
        initializer: [w('score.weight', [16, 8], 1), w('boxes.weight', [16, 4], 2), makeTensor('zero', DataType.FLOAT, [], Float32Array.of(1.2)), makeTensor('axis0', DataType.INT64, [1], BigInt64Array.of(0n))],
        input: [vi('x', DataType.FLOAT, [512, 16])], output: [vi('kept', DataType.FLOAT, ['k', 4]), vi('s', DataType.FLOAT, [512, 8])],
      },
    });
    const region = downstreamRegion(m, new Set(['/score/MatMul']));
    assert.ok(!region.nodes.has('/keep/NonZero') && !region.nodes.has('/keep/Gather'), [...region.nodes].join(', '));
    const dir = tmpDir();
    const file = path.join(dir, 'keep.onnx');
    saveModel(m, file);
    const r = await analyzeSensitivity(file, { mode: 'static', calibration: 'random:4', output: null });
    assert.deepEqual(r.layers.map((l) => l.name).sort(), ['boxes', 'score']);
    assert.ok(r.layers.every((l) => Number.isFinite(l.sensitivity) && !l.failed), JSON.stringify(r.layers));
  });
});
