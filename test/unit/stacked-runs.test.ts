import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { openCalibration } from '../../src/core/calib/data';
import { writeFixture } from '../../src/core/jobs/fixture';
import { DataType } from '../../src/core/onnx/dtypes';
import { GraphView } from '../../src/core/onnx/graph';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { onnx, type ModelProto, type NodeProto, type TensorProto } from '../../src/core/onnx/proto';
import { int64Tensor, makeTensor } from '../../src/core/onnx/tensor';
import { captureMinMax, captureTensors } from '../../src/core/runtime/capture';
import { stackFeeds, stackable } from '../../src/core/runtime/stacked-runs';
import { IR_FOR_OPSET, linearReluModel, vi } from '../helpers/models';
import { tmpDir } from '../helpers/util';

/** X[n, 4] -> `nodes` -> Y[n, 4] at `opset`. */
function batchModel(opset: number, node: NodeProto[], initializer: TensorProto[]): ModelProto {
  return onnx.ModelProto.create({
    ir_version: IR_FOR_OPSET(opset), opset_import: [{ domain: '', version: opset }], producer_name: 'test',
    graph: { name: 'g', node, initializer, input: [vi('X', DataType.FLOAT, ['n', 4])], output: [vi('Y', DataType.FLOAT, ['n', 4])] },
  });
}

/** X minus the mean of the whole input: a model that mixes the samples of a stack. */
const mixingModel = () => batchModel(13, [
  { name: 'flat', op_type: 'Reshape', input: ['X', 'minus1'], output: ['f'] },
  { name: 'mean', op_type: 'ReduceMean', input: ['f'], output: ['m'] },
  { name: 'sub', op_type: 'Sub', input: ['X', 'm'], output: ['Y'] },
], [int64Tensor('minus1', [-1])]);

/** X summed cumulatively along its first axis: the first sample of a stack is its own, the later ones are not. */
const forwardMixingModel = () => batchModel(14, [
  { name: 'cum', op_type: 'CumSum', input: ['X', 'axis0'], output: ['c'] },
  { name: 'relu', op_type: 'Relu', input: ['c'], output: ['Y'] },
], [makeTensor('axis0', DataType.INT64, [], BigInt64Array.of(0n))]);

/** Every float tensor's extremes over the samples of `spec`, copied out one sample at a time. */
async function copiedRanges(file: string, spec: string): Promise<Map<string, [number, number]>> {
  const loaded = loadModel(file);
  const view = new GraphView(loaded.model.graph!);
  const names = [...new Set((loaded.model.graph!.node ?? []).flatMap((n) => n.output ?? []))].filter((o) => o && !view.constant(o));
  const full = new Map<string, [number, number]>();
  await captureTensors(loaded, names, openCalibration(spec, loaded.model.graph!), 'cpu', (values) => {
    for (const n of names) {
      const t = values[n];
      if (t?.type !== 'float32') continue;
      let [lo, hi] = full.get(n) ?? [Infinity, -Infinity];
      for (const v of t.data as Float32Array) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      full.set(n, [lo, hi]);
    }
  });
  return full;
}

async function minMaxRuns(file: string, spec: string) {
  const loaded = loadModel(file);
  const names = [...(await copiedRanges(file, spec)).keys()];
  let runs = 0;
  const r = await captureMinMax(loaded, names, openCalibration(spec, loaded.model.graph!), 'cpu', { onProgress: () => runs++ });
  assert.ok(r, 'onnxruntime ran the MinMax variant');
  return { r, runs };
}

describe('small samples run stacked along the batch axis', function () {
  this.timeout(300_000);

  it('MinMax on the transformer fixture: 40 samples in 4 runs, every range as copied out sample by sample, counted per sample', async () => {
    const file = path.join(tmpDir(), 't.onnx');
    writeFixture('transformer', file);
    const { r, runs } = await minMaxRuns(file, 'random:40');
    // The first alone, then stacks of 16, 16 and 7 (the runs of the 2nd and 17th alone check the first).
    assert.equal(runs, 4);
    assert.equal(r.samples, 40);
    const copied = await copiedRanges(file, 'random:40');
    let compared = 0;
    for (const [n, [lo, hi]] of copied) {
      const got = r.ranges.get(n);
      if (!got) continue;
      compared++;
      assert.ok(Math.abs(got.min - lo) <= 1e-6 * Math.max(1, Math.abs(lo)) && Math.abs(got.max - hi) <= 1e-6 * Math.max(1, Math.abs(hi)), `${n}: [${got.min}, ${got.max}] stacked, [${lo}, ${hi}] copied`);
      assert.equal(got.count, 40, n);
    }
    assert.ok(compared >= 20, `${compared} ranges compared`);
  });

  it('a model that mixes the samples of a stack (a mean over its whole input) runs one sample at a time, with the same ranges', async () => {
    const file = path.join(tmpDir(), 'mix.onnx');
    saveModel(mixingModel(), file);
    const { r, runs } = await minMaxRuns(file, 'random:20');
    assert.equal(runs, 20, 'one run per sample after the stack was checked');
    const copied = await copiedRanges(file, 'random:20');
    for (const n of ['f', 'Y']) {
      const [lo, hi] = copied.get(n)!, got = r.ranges.get(n)!;
      assert.ok(Math.abs(got.min - lo) <= 1e-6 && Math.abs(got.max - hi) <= 1e-6, `${n}: [${got.min}, ${got.max}] against [${lo}, ${hi}]`);
      assert.equal(got.count, 20);
    }
  });

  it('a model that mixes them only forward along the stack (a cumulative sum over it) runs one sample at a time: the last of a stack shows it', async () => {
    const file = path.join(tmpDir(), 'cum.onnx');
    saveModel(forwardMixingModel(), file);
    const { r, runs } = await minMaxRuns(file, 'random:20');
    assert.equal(runs, 20);
    const copied = await copiedRanges(file, 'random:20');
    for (const n of ['c', 'Y']) {
      const [lo, hi] = copied.get(n)!, got = r.ranges.get(n)!;
      assert.ok(Math.abs(got.min - lo) <= 1e-6 && Math.abs(got.max - hi) <= 1e-6, `${n}: [${got.min}, ${got.max}] against [${lo}, ${hi}]`);
    }
  });

  it('linear + Relu: 20 samples in 3 runs, every range as copied out sample by sample', async () => {
    const file = path.join(tmpDir(), 'lin.onnx');
    saveModel(linearReluModel(13), file);
    const { r, runs } = await minMaxRuns(file, 'random:20');
    assert.equal(runs, 3);
    const copied = await copiedRanges(file, 'random:20');
    for (const [n, [lo, hi]] of copied) assert.ok(Math.abs(r.ranges.get(n)!.min - lo) <= 1e-6 && Math.abs(r.ranges.get(n)!.max - hi) <= 1e-6, n);
  });

  // What torch.onnx writes with a dynamic batch axis (test/python/torch_models.py, Debian's python3-torch,
  // random weights: ranges only need to agree): BatchNorm'd ResNet blocks, MobileNet with squeeze-excite, a
  // ViT whose attention reshapes by the batch it computes, a YOLO-style neck with chunk and Upsample.
  it('torch.onnx exports (ResNet, MobileNet, ViT, YOLO-style): 20 samples in 3 runs, every range as copied out sample by sample', async function () {
    if (spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0) this.skip();
    const dir = tmpDir();
    const r = spawnSync('/usr/bin/python3', [path.resolve('test/python/torch_models.py'), dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    const files = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, string>;
    for (const [name, file] of Object.entries(files)) {
      const { r: got, runs } = await minMaxRuns(file, 'random:20');
      assert.equal(runs, 3, name);
      let compared = 0;
      for (const [n, [lo, hi]] of await copiedRanges(file, 'random:20')) {
        const g = got.ranges.get(n);
        if (!g) continue;
        compared++;
        const tol = 1e-5 * Math.max(1, Math.abs(lo), Math.abs(hi));
        assert.ok(Math.abs(g.min - lo) <= tol && Math.abs(g.max - hi) <= tol, `${name} ${n}: [${g.min}, ${g.max}] stacked, [${lo}, ${hi}] copied`);
      }
      assert.ok(compared >= 10, `${name}: ${compared} ranges compared`);
    }
  });

  it('only a free first axis, one sample deep, small and numeric, is stacked', () => {
    const graph = (dims: Array<number | string>) => onnx.GraphProto.create({ input: [vi('X', DataType.FLOAT, dims)] });
    const x = (dims: number[]) => ({ X: new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims) });
    assert.equal(stackable(graph(['n', 4]), x([1, 4]), 16), true);
    assert.equal(stackable(graph([0, 4]), x([1, 4]), 16), true, 'a dim of 0 is unknown');
    assert.equal(stackable(graph([1, 4]), x([1, 4]), 16), false, 'a fixed batch of one');
    assert.equal(stackable(graph(['n', 4]), x([2, 4]), 16), false, 'samples of two');
    assert.equal(stackable(graph(['n', 4]), x([1, 4]), 2), false, 'too few samples to gain');
    assert.equal(stackable(graph(['n', 3, 'h', 'w']), x([1, 3, 96, 96]), 16), false, 'an image sample (108 KB) is not small');
    assert.equal(stackable(onnx.GraphProto.create({ input: [{ name: 'X', type: { tensor_type: { elem_type: DataType.FLOAT } } }] }), x([1, 4]), 16), false, 'a rank the graph does not declare');
  });

  it('feeds stack along their first axis in order, and feeds of different shapes do not', () => {
    const t = (v: number[], dims: number[]) => new ort.Tensor('float32', Float32Array.from(v), dims);
    const s = stackFeeds([{ X: t([1, 2], [1, 2]) }, { X: t([3, 4], [1, 2]) }, { X: t([5, 6], [1, 2]) }])!;
    assert.deepEqual(s.X.dims, [3, 2]);
    assert.deepEqual([...(s.X.data as Float32Array)], [1, 2, 3, 4, 5, 6]);
    assert.equal(stackFeeds([{ X: t([1, 2], [1, 2]) }, { X: t([3, 4, 5], [1, 3]) }]), undefined);
  });
});
