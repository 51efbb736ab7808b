import assert from 'node:assert/strict';
import { FIXTURES } from '../../src/core/fixtures';
import { DataType } from '../../src/core/onnx/dtypes';
import { onnx, type ModelProto, type NodeProto } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { downstreamRegion } from '../../src/core/sensitivity/region';

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
    }
  });

});
