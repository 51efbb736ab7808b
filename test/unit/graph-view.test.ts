import assert from 'node:assert/strict';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { FIXTURES } from '../../src/core/fixtures';
import { summarizeModel } from '../../src/core/inspect';
import { DataType } from '../../src/core/onnx/dtypes';
import { GraphView } from '../../src/core/onnx/graph';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { AttributeType, onnx } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { walkGraphs, walkTensors } from '../../src/core/onnx/walk';
import { vi } from '../helpers/models';
import { runOrt, tmpDir } from '../helpers/util';


describe('graph view', () => {
  it('finds producers, consumers and weights (initializers and Constant outputs) by value name', () => {
    const g = new GraphView(FIXTURES['tiny-vlm'].build().graph!);
    const qName = '/vision_model/encoder/layers.0/self_attn/q_proj/MatMul';
    const q = g.graph.node!.find((n) => n.name === qName)!;
    assert.equal(g.producer.get(q.output![0]), q);
    assert.ok(g.constant(q.input![1]), 'MatMul weight is found as a constant');
    assert.equal(g.consumersOf(q.output![0])[0].op_type, 'Add');
    const scale = g.graph.node!.find((n) => n.op_type === 'Constant')!;
    assert.ok(g.constant(scale.output![0]), 'Constant node values are weights too');
    assert.deepEqual([...g.graphInputs], ['pixel_values', 'input_ids']);
  });

  it('orders nodes topologically even when the file lists them backwards, and reports cycles', () => {
    const m = FIXTURES.transformer.build();
    const shuffled = { ...m.graph!, node: [...m.graph!.node!].reverse() };
    const { order, cyclic } = new GraphView(shuffled).topologicalOrder();
    assert.equal(cyclic.length, 0);
    assert.equal(order.length, m.graph!.node!.length);
    const seen = new Set<string>(['inputs_embeds', ...m.graph!.initializer!.map((t) => t.name!)]);
    for (const n of order) {
      for (const i of n.input ?? []) assert.ok(!i || seen.has(i), `${n.name} runs before its input ${i}`);
      for (const o of n.output ?? []) seen.add(o);
    }
    const loop = { node: [
      { name: 'a', op_type: 'Relu', input: ['y'], output: ['x'] },
      { name: 'b', op_type: 'Relu', input: ['x'], output: ['y'] },
      { name: 'c', op_type: 'Relu', input: ['in'], output: ['out'] },
    ] };
    const r = new GraphView(loop).topologicalOrder();
    assert.deepEqual(r.order.map((n) => n.name), ['c']);
    assert.deepEqual(r.cyclic.map((n) => n.name).sort(), ['a', 'b']);
  });

  it('walks a Loop body (a Constant inside it), preserves it on save, and onnxruntime runs it', async () => {
    const body = {
      name: 'body',
      node: [
        { name: 'inc', op_type: 'Constant', output: ['one'], attribute: [{ name: 'value', type: AttributeType.TENSOR, t: makeTensor('', DataType.FLOAT, [2], new Float32Array([1, 0.5])) }] },
        { name: 'add', op_type: 'Add', input: ['v_in', 'one'], output: ['v_out'] },
        { name: 'keep', op_type: 'Identity', input: ['cond_in'], output: ['cond_out'] },
      ],
      input: [vi('iter', DataType.INT64, []), vi('cond_in', DataType.BOOL, []), vi('v_in', DataType.FLOAT, [2])],
      output: [vi('cond_out', DataType.BOOL, []), vi('v_out', DataType.FLOAT, [2])],
    };
    const model = onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'g',
        node: [{ name: 'loop', op_type: 'Loop', input: ['M', 'cond', 'v0'], output: ['v'], attribute: [{ name: 'body', type: AttributeType.GRAPH, g: body }] }],
        input: [vi('M', DataType.INT64, []), vi('cond', DataType.BOOL, []), vi('v0', DataType.FLOAT, [2])],
        output: [vi('v', DataType.FLOAT, [2])],
      },
    });
    const file = path.join(tmpDir(), 'loop.onnx');
    saveModel(model, file);
    const loaded = loadModel(file);
    assert.equal([...walkGraphs(loaded.model.graph!)].length, 2);
    assert.equal([...walkTensors(loaded.model.graph!)].filter((s) => s.kind === 'constant').length, 1);
    assert.equal(summarizeModel(loaded).parameters, 2);
    const out = await runOrt(file, {
      M: new ort.Tensor('int64', BigInt64Array.from([3n]), []),
      cond: new ort.Tensor('bool', Uint8Array.from([1]), []),
      v0: new ort.Tensor('float32', Float32Array.from([0, 0]), [2]),
    });
    assert.deepEqual([...out.v], [3, 1.5]);
  });
});
