import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { randomFeeds } from '../../src/core/calib/random-feeds';
import { DataType } from '../../src/core/onnx/dtypes';
import { AttributeType, onnx, type NodeProto } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { quantizeModel } from '../../src/core/jobs/quantize-model';
import { buildTransformer } from '../../src/core/fixtures/transformer';
import { main } from '../../src/cli/main';
import { vi } from '../helpers/models';
import { tmpDir } from '../helpers/util';

// --mode weight --weight-format: int8 weights dequantized every run, as MatMulNBits 8-bit with int8
// compute, or expanded to float once when onnxruntime loads the model; 'auto' times them beside float.
const rnd = (n: number, seed: number, scale: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * scale);
const w = (name: string, dims: number[], seed: number, scale = 0.2) => makeTensor(name, DataType.FLOAT, dims, rnd(dims.reduce((a, b) => a * b, 1), seed, scale));

/** Conv, a Gemm with transB, a MatMul and an embedding Gather: every op weight mode takes. */
function mixedModel() {
  const nodes: NodeProto[] = [
    { name: '/conv/Conv', op_type: 'Conv', input: ['x', 'conv.weight', 'conv.bias'], output: ['c'], attribute: [{ name: 'kernel_shape', type: AttributeType.INTS, ints: [3, 3] }, { name: 'pads', type: AttributeType.INTS, ints: [1, 1, 1, 1] }] },
    { name: '/pool/GlobalAveragePool', op_type: 'GlobalAveragePool', input: ['c'], output: ['p'] },
    { name: '/flat/Flatten', op_type: 'Flatten', input: ['p'], output: ['f'] },
    { name: '/fc/Gemm', op_type: 'Gemm', input: ['f', 'fc.weight', 'fc.bias'], output: ['g'], attribute: [{ name: 'transB', type: AttributeType.INT, i: 1 }] },
    { name: '/proj/MatMul', op_type: 'MatMul', input: ['g', 'proj.weight'], output: ['y'] },
    { name: '/embed/Gather', op_type: 'Gather', input: ['embed.weight', 'ids'], output: ['e'] },
  ];
  const inits = [w('conv.weight', [16, 3, 3, 3], 1), w('conv.bias', [16], 2, 0.05), w('fc.weight', [64, 16], 3), w('fc.bias', [64], 4, 0.05), w('proj.weight', [64, 32], 5), w('embed.weight', [50, 16], 6, 1)];
  return onnx.ModelProto.create({
    ir_version: 8, opset_import: [{ domain: '', version: 13 }],
    graph: { name: 'g', node: nodes, initializer: inits, input: [vi('x', 1, [1, 3, 16, 16]), vi('ids', DataType.INT64, [1, 4])], output: [vi('y', 1, [1, 32]), vi('e', 1, [1, 4, 16])] },
  });
}

const opTypes = (file: string) => (loadModel(file).model.graph!.node ?? []).map((n) => n.op_type!);

/** Outputs with onnxruntime's graph optimizations off: its kernels then see the same weights either way. */
async function outputs(file: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], graphOptimizationLevel: 'disabled' });
  try {
    const r = await s.run(feeds);
    return Object.fromEntries(Object.entries(r).map(([k, t]) => [k, t.data as Float32Array]));
  } finally {
    await s.release();
  }
}

/** The graph onnxruntime runs after its basic optimizations (constant folding among them), as op types. */
async function optimizedOps(file: string, dir: string): Promise<string[]> {
  const optimized = path.join(dir, `${path.basename(file, '.onnx')}.optimized.onnx`);
  const s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], graphOptimizationLevel: 'basic', optimizedModelFilePath: optimized });
  await s.release();
  return opTypes(optimized);
}

describe('weight INT8 formats (--weight-format)', function () {
  this.timeout(300_000);
  let dir = '', input = '';
  before(() => {
    dir = tmpDir();
    input = path.join(dir, 'mixed.onnx');
    saveModel(mixedModel(), input);
  });

  it('expand: int8 in the file, the same weights as DequantizeLinear makes (outputs bit for bit), and onnxruntime folds the expansion away at load', async () => {
    const dq = await quantizeModel(input, path.join(dir, 'dq.onnx'), { mode: 'weight', weightFormat: 'dequantize' });
    const ex = await quantizeModel(input, path.join(dir, 'ex.onnx'), { mode: 'weight', weightFormat: 'expand' });
    assert.equal(ex.quantized.length, 4);
    assert.ok(!opTypes(ex.output).includes('DequantizeLinear'));
    assert.equal(opTypes(ex.output).filter((o) => o === 'Cast').length, 4, opTypes(ex.output).join());
    const int8 = loadModel(ex.output).model.graph!.initializer!.filter((t) => t.data_type === DataType.INT8);
    assert.equal(int8.length, 4, 'each weight stored as int8');
    assert.ok(Math.abs(ex.sizeAfter - dq.sizeAfter) < 256, `sizes ${ex.sizeAfter} vs ${dq.sizeAfter}`);
    assert.ok(dq.sizeBefore / ex.sizeAfter > 2.5, `${dq.sizeBefore} -> ${ex.sizeAfter}`);
    const feeds = randomFeeds(loadModel(input).model.graph!, { seed: 7 });
    const [a, b] = [await outputs(dq.output, feeds), await outputs(ex.output, feeds)];
    for (const k of Object.keys(a)) assert.deepEqual(Array.from(b[k]), Array.from(a[k]), `${k}: expand and DequantizeLinear disagree`);
    // What onnxruntime runs: the float layers on folded weights, no Cast or Mul left; DequantizeLinear is kept.
    const folded = await optimizedOps(ex.output, dir);
    assert.deepEqual(folded.filter((o) => o === 'Cast' || o === 'Mul' || o === 'DequantizeLinear'), [], folded.join());
    assert.equal((await optimizedOps(dq.output, dir)).filter((o) => o === 'DequantizeLinear').length, 4);
    const report = JSON.parse(fs.readFileSync(ex.report, 'utf8'));
    assert.ok(report.nodes.filter((n: { how?: string }) => n.how).every((n: { how: string }) => /expanded to float when onnxruntime loads it/.test(n.how)));
  });

  it('nbits: 2-D MatMul and Gemm weights become MatMulNBits 8-bit with int8 compute, embedding tables GatherBlockQuantized, the other layers dequantize', async () => {
    const r = await quantizeModel(input, path.join(dir, 'nb.onnx'), { mode: 'weight', weightFormat: 'nbits' });
    const nodes = loadModel(r.output).model.graph!.node!;
    // The MatMul and the Gemm (its C the bias MatMulNBits adds).
    const nb = nodes.filter((n) => n.op_type === 'MatMulNBits');
    assert.equal(nb.length, 2);
    const of = (op: string) => nb.find((n) => n.name!.includes(op))!;
    const attr = (n: NodeProto, k: string) => Number(n.attribute!.find((a) => a.name === k)!.i);
    for (const [op, kn, inputs] of [['MatMul', [64, 32], 3], ['Gemm', [16, 64], 6]] as const) {
      const n = of(op);
      assert.deepEqual([attr(n, 'bits'), attr(n, 'accuracy_level'), attr(n, 'K'), attr(n, 'N'), attr(n, 'block_size')], [8, 4, ...kn, kn[0]], op);
      assert.equal(n.input!.length, inputs, `${op}: ${n.input!.join(', ')}`);
    }
    // The table stays int8 in memory and only the gathered rows are dequantized (a DequantizeLinear would expand all of it every run).
    const gbq = nodes.filter((n) => n.op_type === 'GatherBlockQuantized');
    assert.equal(gbq.length, 1);
    const gattr = (k: string) => Number(gbq[0].attribute!.find((a) => a.name === k)!.i);
    assert.deepEqual([gattr('bits'), gattr('block_size'), gattr('gather_axis'), gattr('quantize_axis')], [8, 16, 0, 1]);
    assert.equal(loadModel(r.output).model.graph!.initializer!.find((t) => t.name === gbq[0].input![0])!.data_type, DataType.UINT8);
    assert.equal(nodes.filter((n) => n.op_type === 'DequantizeLinear').length, 1, 'the Conv');
    assert.ok(r.fidelity.y.cosine > 0.999, `cosine ${r.fidelity.y.cosine}`);
    assert.ok(r.fidelity.e.sqnr > 40, `embedding rows SQNR ${r.fidelity.e.sqnr} dB`);
  });

  it('auto: each form timed beside float and scored; the one written is a faithful candidate; size keeps int8 in memory, accuracy leaves out nbits', async () => {
    const wide = path.join(dir, 'wide.onnx');
    saveModel(buildTransformer(2, { dim: 128, heads: 4, mlp: 256 }), wide);
    const r = await quantizeModel(wide, path.join(dir, 'auto.onnx'), { mode: 'weight' });
    const wf = r.weightFormat!;
    assert.ok(wf, 'the default measured the formats');
    assert.deepEqual(wf.candidates.map((c) => c.format).filter((f) => f === 'dequantize' || f === 'expand'), ['dequantize', 'expand']);
    const chosen = wf.candidates.find((c) => c.format === wf.chosen)!;
    assert.ok(chosen.faithful && chosen.latencyMs > 0 && wf.floatMs > 0);
    const ops = opTypes(r.output);
    assert.equal(ops.includes('MatMulNBits'), wf.chosen.startsWith('nbits'), `${wf.chosen}: ${ops.join()}`);
    assert.equal(ops.includes('DequantizeLinear'), wf.chosen === 'dequantize', `${wf.chosen}: ${ops.join()}`);
    const size = await quantizeModel(wide, path.join(dir, 'size.onnx'), { mode: 'weight', objective: 'size' });
    assert.deepEqual(size.weightFormat!.candidates.map((c) => c.format), ['dequantize', 'nbits'], 'size: only the forms with int8 in memory');
    assert.ok(size.weightFormat!.candidates.every((c) => c.int8InMemory));
    assert.ok(!opTypes(size.output).includes('Cast'), 'nothing expanded at load');
    const accuracy = await quantizeModel(wide, path.join(dir, 'accuracy.onnx'), { mode: 'weight', objective: 'accuracy' });
    assert.deepEqual(accuracy.weightFormat!.candidates.map((c) => c.format), ['dequantize', 'expand'], 'MatMulNBits int8 compute quantizes activations: not under accuracy');
  });

  it('auto left unmeasured (an external-data model, written as it streams): DequantizeLinear weights, but embedding tables GatherBlockQuantized', async () => {
    const external = path.join(dir, 'ext', 'mixed.onnx');
    fs.mkdirSync(path.dirname(external), { recursive: true });
    saveModel(mixedModel(), external, { externalData: 'always', sizeThreshold: 64 });
    for (const d of ['ext-q', 'ext-d']) fs.mkdirSync(path.join(dir, d), { recursive: true });
    const r = await quantizeModel(external, path.join(dir, 'ext-q', 'q.onnx'), { mode: 'weight' });
    assert.equal(r.weightFormat, undefined, 'not measured');
    const ops = opTypes(r.output);
    assert.equal(ops.filter((o) => o === 'GatherBlockQuantized').length, 1, ops.join());
    assert.equal(ops.filter((o) => o === 'DequantizeLinear').length, 3, 'Conv, Gemm and MatMul');
    assert.ok(r.fidelity.e.sqnr > 40 && r.fidelity.y.cosine > 0.999, JSON.stringify(r.fidelity));
    // Asked for explicitly, dequantize means a DequantizeLinear before the Gather too.
    const d = await quantizeModel(external, path.join(dir, 'ext-d', 'q.onnx'), { mode: 'weight', weightFormat: 'dequantize' });
    assert.equal(opTypes(d.output).filter((o) => o === 'DequantizeLinear').length, 4);
  });

  it('the CLI prints the format written and why', async () => {
    const out: string[] = [];
    const io = { stdout: (s: string) => out.push(s), stderr: (s: string) => out.push(s) };
    assert.equal(await main(['quantize', input, '-o', path.join(dir, 'cli.onnx'), '--mode', 'weight'], io), 0);
    assert.match(out.join(''), /weight format: (dequantize|nbits|expand|nbits\+expand) \((int8 in memory|int8 in the file, float once loaded)\) \((fastest faithful|within the noise of the fastest \([a-z+]+\)): dequantize [\d.]+ ms/);
  });
});
