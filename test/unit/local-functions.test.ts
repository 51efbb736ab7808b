import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { compareModels } from '../../src/core/compare';
import { quantizeModel, type QuantizeReport } from '../../src/core/jobs/quantize-model';
import { DataType } from '../../src/core/onnx/dtypes';
import { ModelEditor } from '../../src/core/onnx/editor';
import { inlineLocalFunctions } from '../../src/core/onnx/inline-functions';
import { summarizeModel } from '../../src/core/inspect';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { AttributeType, onnx } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { pruneModel } from '../../src/core/prune/prune-model';
import { analyzeSensitivity } from '../../src/core/sensitivity/analyze';
import { vi } from '../helpers/models';
import { tmpDir } from '../helpers/util';

const w = (name: string, dims: number[], seed: number, scale = 0.3) => makeTensor(name, DataType.FLOAT, dims, Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 1.7 + seed) * scale));

/**
 * What torch.onnx writes with export_modules_as_functions: the blocks are calls of a local function
 * (`local::Block`) whose body holds the Conv; its weights are the call's inputs. Here the body also calls
 * a nested function (`local::Act`, LeakyRelu with alpha from the call or the function's default) and
 * hands its input back as a second output, which the second call leaves out.
 */
function functionModel() {
  const act = { domain: 'local', name: 'Act', input: ['v'], output: ['a'], attribute: [], attribute_proto: [{ name: 'alpha', type: AttributeType.FLOAT, f: 0.2 }], opset_import: [{ domain: '', version: 15 }],
    node: [{ op_type: 'LeakyRelu', name: 'LeakyRelu_0', input: ['v'], output: ['a'], attribute: [{ name: 'alpha', type: AttributeType.FLOAT, ref_attr_name: 'alpha' }] }] };
  const block = { domain: 'local', name: 'Block', input: ['x', 'w', 'b'], output: ['y', 'skip'], attribute: ['alpha'], opset_import: [{ domain: '', version: 15 }, { domain: 'local', version: 1 }],
    node: [
      { op_type: 'Conv', name: '/conv/Conv', input: ['x', 'w', 'b'], output: ['c'], attribute: [{ name: 'pads', type: AttributeType.INTS, ints: [1, 1, 1, 1] }] },
      { op_type: 'Act', name: 'Act_1', domain: 'local', input: ['c'], output: ['h'], attribute: [{ name: 'alpha', type: AttributeType.FLOAT, ref_attr_name: 'alpha' }] },
      { op_type: 'Add', name: 'Add_2', input: ['h', 'x'], output: ['y'] },
      { op_type: 'Identity', name: 'Identity_3', input: ['x'], output: ['skip'] },
    ] };
  return onnx.ModelProto.create({
    ir_version: 8, opset_import: [{ domain: '', version: 15 }, { domain: 'local', version: 1 }], functions: [act, block],
    graph: {
      name: 'g', input: [vi('image', DataType.FLOAT, [1, 3, 16, 16])], output: [vi('logits', DataType.FLOAT, [1, 4])],
      node: [
        { name: '/stem/Conv', op_type: 'Conv', input: ['image', 'stem.weight'], output: ['x'], attribute: [{ name: 'pads', type: AttributeType.INTS, ints: [1, 1, 1, 1] }] },
        { name: '/b1/Block', op_type: 'Block', domain: 'local', input: ['x', 'b1.w', 'b1.b'], output: ['y1', 'x1'], attribute: [{ name: 'alpha', type: AttributeType.FLOAT, f: 0.1 }] },
        { name: '/b2/Block', op_type: 'Block', domain: 'local', input: ['y1', 'b2.w', 'b2.b'], output: ['y2', ''] },
        { name: '/pool', op_type: 'GlobalAveragePool', input: ['y2'], output: ['p'] },
        { name: '/flat', op_type: 'Flatten', input: ['p'], output: ['f'] },
        { name: '/head/Gemm', op_type: 'Gemm', input: ['f', 'head.weight', 'head.bias'], output: ['logits'], attribute: [{ name: 'transB', type: AttributeType.INT, i: 1 }] },
      ],
      initializer: [w('stem.weight', [8, 3, 3, 3], 7), w('b1.w', [8, 8, 3, 3], 1), w('b1.b', [8], 2, 0.1), w('b2.w', [8, 8, 3, 3], 3), w('b2.b', [8], 4, 0.1), w('head.weight', [4, 8], 5), w('head.bias', [4], 6, 0.1)],
    },
  });
}

describe('models with local functions (export_modules_as_functions, the dynamo exporter)', () => {
  it('inlining gives the same outputs in onnxruntime, with no call left and names in the call\'s scope', async () => {
    const dir = tmpDir();
    saveModel(functionModel(), path.join(dir, 'fn.onnx'));
    const loaded = loadModel(path.join(dir, 'fn.onnx'));
    assert.deepEqual(summarizeModel(loaded).functions, [{ name: 'local.Act', calls: 0 }, { name: 'local.Block', calls: 2 }]);
    const editor = new ModelEditor(loaded.model);
    assert.equal(inlineLocalFunctions(editor), 4); // two Blocks, each with an Act inside
    const nodes = editor.graph.node ?? [];
    assert.deepEqual(nodes.filter((n) => n.domain === 'local'), []);
    assert.deepEqual(loaded.model.functions, []);
    assert.ok(nodes.some((n) => n.op_type === 'Conv' && n.name === '/b1/conv/Conv'), nodes.map((n) => n.name).join(', '));
    // alpha from the first call (0.1), the function's default for the second (0.2).
    assert.deepEqual(nodes.filter((n) => n.op_type === 'LeakyRelu').map((n) => Math.round(n.attribute![0].f! * 100) / 100), [0.1, 0.2]);
    saveModel(loaded.model, path.join(dir, 'inlined.onnx'));
    const c = await compareModels(path.join(dir, 'fn.onnx'), path.join(dir, 'inlined.onnx'), { data: 'random:2', samples: 2, latencyRuns: 1 });
    assert.equal(c.outputs.logits.maxAbsError, 0);
  });

  it('quantize, prune and sensitivity reach the layers inside the functions', async () => {
    const dir = tmpDir();
    const input = path.join(dir, 'fn.onnx');
    saveModel(functionModel(), input);
    const before = fs.readFileSync(input);
    const q = await quantizeModel(input, path.join(dir, 'q.onnx'), { mode: 'weight', bits: 8, calibration: 'random:4' });
    const report = JSON.parse(fs.readFileSync(q.report, 'utf8')) as QuantizeReport;
    const quantized = report.nodes.filter((d) => d.how).map((d) => d.node).sort();
    assert.deepEqual(quantized, ['/b1/conv/Conv', '/b2/conv/Conv', '/head/Gemm', '/stem/Conv']);
    assert.ok(q.fidelity.logits.cosine > 0.999, JSON.stringify(q.fidelity));
    const p = await pruneModel(input, path.join(dir, 'p.onnx'), { method: 'structured', sparsity: 0.5, calibration: 'random:4' });
    assert.ok(p.sparsity > 0.2, `pruned ${p.sparsity}`);
    const s = await analyzeSensitivity(input, { mode: 'static', calibration: 'random:2', output: null });
    assert.deepEqual(s.layers.filter((l) => l.opType === 'Conv').map((l) => l.name).sort(), ['b1.conv', 'b2.conv', 'stem']);
    assert.ok(fs.readFileSync(input).equals(before), 'the input model was modified');
  });
});
