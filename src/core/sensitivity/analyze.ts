import * as ort from 'onnxruntime-node';
import fs from 'node:fs';
import { QuantLensError, CancelledError } from '../base/errors';
import type { JobContext } from '../base/jobs';
import { writeJsonAtomic } from '../fs/json';
import { checkReportPath } from '../fs/output-path';
import { loadModel } from '../onnx/model-io';
import { analysisLevel, tensorShapes, tensorTypes } from '../runtime/capture';
import { startSessionWorker, variantRunner, wantsWorker } from '../runtime/threaded-session';
import { pipelineSamples } from '../runtime/sample-pipeline';
import { collectGarbage } from '../base/gc';
import { withoutKeptSamples } from '../calib/kept-samples';
import { defaultWorkers, mapLimit } from '../runtime/session-pool';
import type { Provider } from '../runtime/session';
import { DEFAULT_QUANTIZE_OPTIONS, type QuantizeOptions } from '../quant/options';
import { QuantPolicy } from '../quant/policy';
import { applyQuantization, modesUsed, modulePathOfNode, prepareQuantization, type PreparedQuantization } from '../quant/prepare';
import type { LoadedModel } from '../onnx/model-io';
import { openCalibration, type CalibrationData } from '../calib/data';
import { tensorNumel } from '../onnx/tensor';
import { DataType } from '../onnx/dtypes';
import { GraphView } from '../onnx/graph';
import { NsrAccumulator, nsrDb } from '../eval/stats';
import { externalInputs, layerSubModel } from './submodel';
import { rankLayers, type SensitivityTreeNode } from './tree';
import { downstreamRegion } from './region';
import { cropModel, cropWindows, readingInstead, windowable, type Crop } from './crop';
import { FLOAT_TYPES, isStoredWeight } from './stored-weight';
import { interleaveCopies, keepOutputs, mergeSideBySide, reduceToNsr } from './merge';
import { SPLIT_SAMPLES } from './split';
import { weightErrorPart } from './weight-error';
import { VariantScorer } from '../quant/variant-scorer';
import type { ModelProto } from '../onnx/proto';
import { jobKey, shareOf, type Shard } from '../cluster/shard';
import { partPath, writePart } from '../cluster/parts';
import { writtenFrom } from '../onnx/batchnorm-as-conv';

export type SensitivityMethod = 'local' | 'end-to-end';

export interface SensitivityOptions extends Partial<QuantizeOptions> {
  method?: SensitivityMethod;
  /** Worker threads for the end-to-end method (default: one per core, at most 4). */
  workers?: number;
  /** Where to write the report (default `<model>.sensitivity.json`); null writes none. */
  output?: string | null;
  /** Compute only this share of the layers, into a part file that `quantlens merge` combines. */
  shard?: Shard;
  /** The part file (default `<report>.part-I-of-N.json`). */
  part?: string;
  /** A report of an earlier run of this model whose per-layer `seconds` split the layers between shards. */
  costs?: string;
  /** Local, static: samples the split is measured on (default SPLIT_SAMPLES; 0: every one). */
  splitSamples?: number;
  /** Local, static: whether the samples after the split's run a second graph without its copies (default: where that pays for its set-up, see LIGHTER_GRAPH). */
  secondGraph?: boolean;
  /** Local: whether conv layers' copies run on a window of their maps beside a float copy on it (default; see crop.ts), or on the whole map. */
  windows?: boolean;
}

/** One layer (module path) of the report. See docs/sensitivity-schema.md. */
export interface LayerSensitivity {
  name: string;
  opType: string;
  nodes: string[];
  parameters: number;
  /** Noise-to-signal ratio Σ(y−ŷ)²/Σy² caused by quantizing this layer alone: at the model's outputs (end-to-end) or the layer's own outputs (local). Higher is more sensitive. */
  sensitivity: number;
  sensitivityDb: number;
  /** Local method, static mode: the share of the layer's own output noise from its weights and from its activations (they need not sum to 1). */
  split?: { weight: number; activation: number };
  /** End-to-end only: output NSR with every other layer quantized and this one float. */
  reverse?: number;
  /** Local: the window [height, width] of the map (at the first sample's size) the layer's copies ran on, beside a float copy on it; absent: the whole map. */
  window?: [number, number];
  /** Why this layer could not be measured (its variant failed in onnxruntime); it ranks last. */
  failed?: string;
  /** End-to-end only: seconds spent measuring this layer (what `--costs` balances shards by). */
  seconds?: number;
  rank: number;
  ranges?: { input?: [number, number]; output?: [number, number] };
}

export interface SensitivityReport {
  model: string;
  method: SensitivityMethod;
  scheme: { mode: QuantizeOptions['mode']; bits: number; calibrationMethod: string };
  metric: 'nsr';
  device: Provider;
  fallbackReason?: string;
  samples: number;
  /** Local, static: the first this many samples measured each layer's split. */
  splitSamples?: number;
  data: string;
  warning?: string;
  /** Output NSR with every planned layer quantized (end-to-end), for scale. */
  allQuantized?: number;
  seconds: number;
  layers: LayerSensitivity[];
  tree: SensitivityTreeNode;
  skipped: Array<{ node: string; reason: string }>;
  /** A sharded run: this report holds shard `index` of `count` only, written to `part`; merged: the shard count. */
  shard?: { index: number; count: number; part: string };
  shards?: number;
}

/** What a layer costs to measure, for splitting layers between shards: an earlier run's seconds when given. */
function layerCosts(layers: Array<{ name: string; nodes: string[] }>, loaded: LoadedModel, method: SensitivityMethod, costsFile?: string): number[] {
  if (costsFile) {
    let prior: SensitivityReport;
    try {
      prior = JSON.parse(fs.readFileSync(costsFile, 'utf8'));
    } catch (e) {
      throw new QuantLensError(costsFile, `cannot be read as a sensitivity report (${e instanceof Error ? e.message.split('\n')[0] : e})`);
    }
    const seconds = new Map((prior.layers ?? []).map((l) => [l.name, Number(l.seconds)]));
    const known = layers.map((l) => seconds.get(l.name)).filter((v): v is number => Number.isFinite(v));
    const mean = known.length ? known.reduce((a, b) => a + b, 0) / known.length : 1;
    return layers.map((l) => { const v = seconds.get(l.name); return v !== undefined && Number.isFinite(v) ? v : mean; });
  }
  // End-to-end runs the whole model twice per layer whatever the layer: equal costs. Local runs each
  // layer's own stretch of graph: its weights are the estimate.
  return layers.map((l) => (method === 'end-to-end' ? 1 : 1 + parametersOf(loaded, new Set(l.nodes))));
}

/** Planned nodes grouped by module path, in graph order. */
export function layersOf(prep: PreparedQuantization): Array<{ name: string; opType: string; nodes: string[] }> {
  const groups = new Map<string, { name: string; opType: string; nodes: string[] }>();
  const view = new GraphView(prep.loaded.model.graph!);
  for (const n of prep.loaded.model.graph!.node ?? []) {
    if (!prep.plan.has(n.name ?? '')) continue;
    const path = modulePathOfNode(n, view) || n.name!;
    const g = groups.get(path);
    if (g) g.nodes.push(n.name!);
    else groups.set(path, { name: path, opType: writtenFrom(n), nodes: [n.name!] });
  }
  return [...groups.values()];
}

/**
 * Each tensor's element type and, where onnxruntime infers it for inputs shaped like `feeds`, its element
 * count; the types alone where that inference fails (no sizes: no join is measured before itself).
 */
async function typesAndSizes(loaded: LoadedModel, names: string[], feeds: Record<string, ort.Tensor>, device: QuantizeOptions['device']): Promise<{ types: Map<string, string | undefined>; sizes: Map<string, number | undefined>; dims: Map<string, number[] | undefined> }> {
  try {
    const meta = await tensorShapes(loaded, names, feeds, device);
    return { types: new Map(names.map((n, i) => [n, meta[i].type])), sizes: new Map(names.map((n, i) => [n, meta[i].size])), dims: new Map(names.map((n, i) => [n, meta[i].dims])) };
  } catch (e) {
    if (e instanceof CancelledError) throw e;
    return { types: await tensorTypes(loaded, names, device), sizes: new Map(), dims: new Map() };
  }
}

/**
 * Local sensitivity runs the samples after the split's in a second merged graph, without the split's
 * copies, when the first graph would take more than this many times its own set-up over them: the
 * second's set-up costs about half the first's, and each of its runs about a fifth less (PaddleOCR det
 * 320x640, in a worker, scratch: set-up 310-330 against 140-150 ms, runs 143 against 116 ms; from 6 later
 * samples on). On a small model a run is a sliver of a set-up, and one graph runs them all.
 */
const LIGHTER_GRAPH = 3;

/** At most `n` items of `it`, advancing it no further (the rest stay for the next reader). */
function take<T>(it: Iterator<T>, n: number): Iterator<T> {
  let left = n;
  return { next: () => (left-- > 0 ? it.next() : { done: true, value: undefined }) };
}

// LSTM and the fused Attention and EmbedLayerNormalization carry weights too (dynamic mode quantizes them).
const WEIGHT_OPS = new Set(['Conv', 'ConvTranspose', 'MatMul', 'Gemm', 'Gather', 'LSTM', 'GRU', 'RNN', 'Attention', 'EmbedLayerNormalization']);

/** Planned nodes that hold a layer's weight: a Conv/MatMul/Gemm/Gather reading a stored (or stored and dequantized) tensor. */
function weightBearingNodes(prep: PreparedQuantization): Set<string> {
  const view = new GraphView(prep.loaded.model.graph!);
  return new Set((prep.loaded.model.graph!.node ?? [])
    .filter((n) => prep.plan.has(n.name ?? '') && WEIGHT_OPS.has(n.op_type ?? '') && (n.input ?? []).some((i) => isStoredWeight(view, i)))
    .map((n) => n.name!));
}

function parametersOf(loaded: LoadedModel, nodes: Set<string>): number {
  const view = new GraphView(loaded.model.graph!);
  let p = 0;
  for (const n of loaded.model.graph!.node!) {
    if (!nodes.has(n.name ?? '')) continue;
    for (const i of n.input ?? []) {
      const t = view.constant(i);
      if (t && t.data_type === 1) p += tensorNumel(t);
    }
  }
  return p;
}


/**
 * Per-layer sensitivity: how far the outputs move when only that layer is quantized with the chosen
 * scheme. `end-to-end` quantizes one layer at a time and runs the whole model (exact, one model run per
 * layer per sample); `local` captures every layer's inputs in one pass and measures each layer's own
 * output error on a model of that layer alone (cost: one pass plus the layers' own compute).
 */
export function analyzeSensitivity(modelPath: string, opts: SensitivityOptions = {}, ctx: JobContext = {}): Promise<SensitivityReport> {
  // Decoded images are not kept between its two passes: see withoutKeptSamples.
  return withoutKeptSamples(() => analyze(modelPath, opts, ctx));
}

async function analyze(modelPath: string, opts: SensitivityOptions, ctx: JobContext): Promise<SensitivityReport> {
  const t0 = performance.now();
  const method = opts.method ?? 'local';
  const own = new Set(['method', 'output', 'workers', 'shard', 'part', 'costs', 'splitSamples', 'secondGraph', 'windows']);
  // Smoothing decided in a pass of its own (MinMax's channel extremes) before the histograms, not from
  // values held through the histogram pass: those held values grow with the samples, and sensitivity's
  // peak memory is meant to stay within twice one inference's (PaddleOCR det 320x640, random:64: peak RSS
  // 437 MiB one pass against 327 MiB, one inference 182 MiB; 13.1 s against 14.0 s, scratch).
  const options: QuantizeOptions = { ...DEFAULT_QUANTIZE_OPTIONS, mode: 'static', smoothing: 'separate', ...Object.fromEntries(Object.entries(opts).filter(([k, v]) => v !== undefined && !own.has(k))) };
  if (!options.calibration) throw new QuantLensError(undefined, 'sensitivity needs --calibration DIR (or random:N for seeded random data)', 'usage');
  if (method !== 'local' && method !== 'end-to-end') throw new QuantLensError(undefined, `--method must be local or end-to-end, not '${method}'`, 'usage');
  const loaded = loadModel(modelPath);
  const target = opts.output === undefined ? `${modelPath}.sensitivity.json` : opts.output;
  if (target) checkReportPath(target);
  const prep = await prepareQuantization(loaded, options, new QuantPolicy(options), modesUsed(options), ctx);
  // A sensitivity report lists layers with weights: not Identity (torch's shared-weight copies), pooling or shape ops.
  const bearing = weightBearingNodes(prep);
  const all = layersOf(prep).filter((l) => l.nodes.some((n) => bearing.has(n)));
  if (!all.length) {
    // Layers inside If/Loop/Scan bodies are quantized, but not ranked: say so rather than "none".
    const main = new Set((loaded.model.graph!.node ?? []).map((n) => n.name));
    const inBodies = [...prep.plan.keys()].filter((n) => !main.has(n)).length;
    // Static mode plans none there (no calibrated ranges): counted from why they were skipped.
    const uncalibrated = prep.skipped.filter((d) => d.skipped?.startsWith('inside a subgraph')).length;
    const where = inBodies ? ` in its main graph (${inBodies} inside If/Loop/Scan bodies, which quantize takes but sensitivity does not rank)`
      : uncalibrated ? ` in its main graph (${uncalibrated} inside Loop/Scan bodies or the If branch fewer calibration samples take, where static mode has no calibrated ranges; --mode weight or dynamic quantizes them)` : '';
    throw new QuantLensError(modelPath, `has no layer that ${options.mode}-mode quantization applies to${where}`);
  }
  const shard = opts.shard;
  const pieces = shard ? shareOf(layerCosts(all, loaded, method, opts.costs), shard) : [...all.keys()];
  const layers = pieces.map((i) => all[i]);
  const part = shard ? opts.part ?? partPath(target ?? `${modelPath}.sensitivity.json`, shard) : undefined;
  if (part) checkReportPath(part);
  const data = prep.data ?? openCalibration(options.calibration, loaded.model.graph!, { maxSamples: options.maxSamples, inputShapes: options.inputShapes });
  const out = part ?? target;
  const checkpoint = out && method === 'end-to-end' ? `${out}.partial.json` : undefined;
  // The whole-model reference (every layer quantized) is measured once, by the first shard.
  const splitSamples = opts.splitSamples ?? SPLIT_SAMPLES;
  const measured = await measureLayers(prep, layers, data, method, ctx, checkpoint, opts.workers, !shard || shard.index === 1, splitSamples, opts.secondGraph, opts.windows ?? true);
  const { results, allQuantized } = measured;
  const provider = measured.provider;
  const fallbackReason = measured.fallbackReason;

  const byTensor = new Map((prep.calibration?.tensors ?? []).map((t) => [t.tensor, t]));
  const graph = loaded.model.graph!;
  const unranked: LayerSensitivity[] = results.map((r) => {
    const first = graph.node!.find((n) => n.name === r.nodes[0]);
    const last = graph.node!.find((n) => n.name === r.nodes[r.nodes.length - 1]);
    const inT = byTensor.get(first?.input?.[0] ?? '');
    const outT = byTensor.get(last?.output?.[0] ?? '');
    return {
      name: r.name, opType: r.opType, nodes: r.nodes, parameters: r.parameters, sensitivity: r.nsr, sensitivityDb: nsrDb(r.nsr),
      ...(r.split ? { split: r.split } : {}), ...(r.reverse !== undefined ? { reverse: r.reverse } : {}), ...(r.window ? { window: r.window } : {}), rank: 0,
      ...(r.failed ? { failed: r.failed } : {}), ...(r.seconds !== undefined ? { seconds: r.seconds } : {}),
      ...(inT || outT ? { ranges: { ...(inT ? { input: [inT.min, inT.max] as [number, number] } : {}), ...(outT ? { output: [outT.min, outT.max] as [number, number] } : {}) } } : {}),
    };
  });
  const ranked = rankLayers(unranked);
  const report: SensitivityReport = {
    model: modelPath, method, scheme: { mode: options.mode, bits: options.bits, calibrationMethod: options.calibrationMethod }, metric: 'nsr',
    device: provider, ...(fallbackReason ? { fallbackReason } : {}), samples: data.count,
    ...(method === 'local' && options.mode === 'static' ? { splitSamples: Math.min(data.count, splitSamples || data.count) } : {}), data: data.source, ...(data.warning ? { warning: data.warning } : {}),
    ...(allQuantized !== undefined ? { allQuantized } : {}), seconds: (performance.now() - t0) / 1000,
    layers: ranked.layers, tree: ranked.tree, skipped: prep.skipped.map((s) => ({ node: s.node, reason: s.skipped! })),
    ...(shard && part ? { shard: { ...shard, part } } : {}),
  };
  if (shard && part) {
    const { output: _o, workers: _w, shard: _s, part: _p, costs: _c, device: _d, ...keyed } = opts;
    writePart(part, { job: 'sensitivity', key: jobKey(modelPath, { ...keyed, method }, loaded.externalFiles ?? []), shard, report: target ?? `${modelPath}.sensitivity.json`, total: all.length, pieces, result: report });
  } else if (out) writeJsonAtomic(out, report);
  if (checkpoint) fs.rmSync(checkpoint, { force: true });
  return report;
}

export interface MeasuredLayer {
  failed?: string;
  name: string;
  opType: string;
  nodes: string[];
  parameters: number;
  nsr: number;
  reverse?: number;
  split?: LayerSensitivity['split'];
  seconds?: number;
  window?: [number, number];
}

/** Sensitivity of each layer (NSR), by the local or the end-to-end method, from a prepared quantization. */
export async function measureLayers(prep: PreparedQuantization, layers: Array<{ name: string; opType: string; nodes: string[] }>, data: CalibrationData, method: SensitivityMethod, ctx: JobContext = {}, checkpoint?: string, workers?: number, measureAll = true, splitSamples = SPLIT_SAMPLES, secondGraph?: boolean, windows = true): Promise<{ results: MeasuredLayer[]; provider: Provider; fallbackReason?: string; allQuantized?: number }> {
  const loaded = prep.loaded;
  const options = prep.options;
  const results: MeasuredLayer[] = layers.map((l) => ({ ...l, parameters: parametersOf(loaded, new Set(l.nodes)), nsr: 0 }));
  let provider: Provider = prep.provider ?? 'cpu';
  let fallbackReason = prep.fallbackReason;
  let allQuantized: number | undefined;

  if (method === 'end-to-end') {
    // Noise is measured on float outputs: a model that gives only integers (a classifier's label) has none.
    const floatOut = (loaded.model.graph!.output ?? []).some((v) => { const t = v.type?.tensor_type?.elem_type ?? 0; return FLOAT_TYPES.has(t) || t === DataType.DOUBLE; });
    if (!floatOut) throw new QuantLensError(loaded.loc.file, 'has no float output to measure the noise at end to end; --method local measures it at each layer');
    // Reference outputs once; then one model variant per layer (and per layer left out).
    const scorer = await VariantScorer.create(prep, data, 'cosine');
    provider = scorer.provider;
    fallbackReason ??= scorer.fallbackReason;
    const samples = scorer.samples;
    const measure = async (select: (n: string) => boolean) => (await scorer.score(select, ctx.signal)).nsr;
    // Resumable: layers measured by an interrupted run with the same model and options are not redone.
    const key = JSON.stringify({ model: loaded.fileBytes, nodes: loaded.model.graph!.node!.length, options: { ...options, device: undefined }, samples: samples.length });
    const done: Record<string, Pick<MeasuredLayer, 'nsr' | 'reverse' | 'failed' | 'seconds'>> = {};
    if (checkpoint && fs.existsSync(checkpoint)) {
      try {
        const c = JSON.parse(fs.readFileSync(checkpoint, 'utf8'));
        if (c.key === key) Object.assign(done, c.done);
      } catch { /* unreadable checkpoint: start over */ }
    }
    // Variants load and run side by side in worker threads; each layer's pair is checkpointed as it ends.
    scorer.startWorkers(workers ?? defaultWorkers());
    let finished = 0;
    try {
      await mapLimit(results, scorer.workers, async (r) => {
        const set = new Set(r.nodes);
        const prior = done[r.name];
        if (prior) {
          // The checkpoint stores non-finite numbers as strings (JSON has none).
          Object.assign(r, prior, { nsr: Number(prior.nsr), reverse: prior.reverse === undefined ? undefined : Number(prior.reverse) });
        } else {
          const started = performance.now();
          try {
            [r.nsr, r.reverse] = await Promise.all([measure((n) => set.has(n)), measure((n) => !set.has(n))]);
          } catch (e) {
            if (e instanceof CancelledError) throw e;
            // One variant onnxruntime refuses must not sink the whole analysis: report it on the layer.
            r.nsr = NaN;
            r.reverse = undefined;
            r.failed = e instanceof Error ? e.message.split('\n')[0] : String(e);
          }
          r.seconds = (performance.now() - started) / 1000;
          if (checkpoint) {
            done[r.name] = { nsr: r.nsr, reverse: r.reverse, seconds: r.seconds, ...(r.failed ? { failed: r.failed } : {}) };
            writeJsonAtomic(checkpoint, { key, done });
          }
        }
        ctx.onProgress?.({ stage: 'sensitivity', fraction: ++finished / results.length, message: prior ? `${r.name} (from checkpoint)` : r.name });
      });
      if (measureAll) allQuantized = await measure(() => true);
    } finally {
      await scorer.close();
    }
  } else {
    // One model holds the float graph and, beside it, each layer's stretch of graph (the region its error
    // crosses before joining the residual stream) quantized, reading the float values where the float graph
    // computes them; the noise at each region's end is summed inside onnxruntime. One run per sample, and
    // no activation leaves onnxruntime (PaddleOCR det 320x640: peak memory 1.7x one inference's, was 7.8x;
    // `node out/bench/sensitivity-speed.js`).
    const regions = results.map((l) => downstreamRegion(loaded.model, new Set(l.nodes)));
    const producedBy = (l: { nodes: string[] }) => { const own = new Set(l.nodes); return (loaded.model.graph!.node ?? []).filter((n) => own.has(n.name ?? '')).flatMap((n) => n.output ?? []).filter(Boolean); };
    const layerOutputs = results.map(producedBy);
    const reads = results.map((l, i) => externalInputs(loaded.model, new Set([...l.nodes, ...regions[i].nodes])));
    const names = [...new Set([...regions.flatMap((r) => [...r.boundary, ...r.joins.map((j) => j.input)]), ...layerOutputs.flat(), ...reads.flat()])];
    // total: the quantized copy at its region's end; own/weight: the quantized and the weight-only copy at
    // the layer's own outputs, whose ratio is the split.
    const acc = results.map(() => ({ total: new NsrAccumulator(), own: new NsrAccumulator(), weight: new NsrAccumulator() }));
    const weightPlan = new Map([...prep.plan].map(([k, o]) => [k, { ...o, mode: 'weight' as const, bits: o.mode === 'weight' ? o.bits : 8 as const }]));
    const samples = data.samples()[Symbol.iterator]();
    const next = samples.next();
    if (next.done) throw new QuantLensError(data.source, 'gave no samples');
    const { types, sizes, dims } = await typesAndSizes(loaded, names, next.value, options.device);
    // A region that ends in no float tensor (a classifier's label and its ZipMap of probabilities): the
    // error is measured at the layer's own outputs instead.
    regions.forEach((r, l) => { if (!r.boundary.some((o) => types.get(o) === 'float32')) regions[l] = { nodes: new Set(), boundary: layerOutputs[l], joins: [] }; });
    // Layers whose copies run on a window of the map, beside a float copy on the same window (see crop.ts).
    // PaddleOCR det 320x640, the later samples' graph alone against the float model, interleaved, scratch:
    // 3.0x -> 2.1x one inference (49 of 65 layers windowed); its ranking against end-to-end on 8 rendered
    // pages Spearman 0.875 -> 0.879, PaddleOCR rec on 16 rendered lines 0.726 -> 0.729. Windows down to
    // side 16 (maps of 20x40 windowed too) ran 1.9x but ranked worse: 0.866 and 0.714.
    const windowsOf = results.map((r, l) => {
      // (Cutting out each layer's copy to look costs a transformer's analysis 5-10 ms: only where a map is large enough.)
      if (!windows || !reads[l].some((i) => windowable(dims.get(i)))) return undefined;
      const sub = layerSubModel(loaded.model, new Set([...r.nodes, ...regions[l].nodes]), regions[l].boundary);
      const cut = sub.inputs.every((i) => types.get(i) === 'float32') ? cropWindows(sub.model, sub.inputs, (n) => dims.get(n)) : undefined;
      // The copy cut out here is the one the layer's parts are made from below (its region keeps its joins).
      return cut && { windows: cut, sub };
    });
    const crops = new Map<string, Crop>();
    const windowOf = (tensor: string, size: [number, number]) => {
      const name = `${tensor}@${size[0]}x${size[1]}`;
      if (!crops.has(name)) crops.set(name, { tensor, size, name, grid: `${dims.get(tensor)!.slice(2).join('x')}@${size.join('x')}` });
      return `window/${name}`;
    };
    // Where the error joins the residual stream, measured at the join's input with the signal of its output
    // (the same sums, see RegionJoin): the copy no longer runs the join, nor reads the stream for it
    // (PaddleOCR det 320x640, the merged graph's run, alternated, scratch: 2.4% less time).
    const signalOf = regions.map((r, l) => {
      const signals = new Map<string, string>();
      // A windowed copy measures against its own float copy, which runs the join.
      if (windowsOf[l]) return signals;
      for (const j of r.joins) {
        const exact = j.op === 'Concat' || (sizes.get(j.input) !== undefined && sizes.get(j.input) === sizes.get(j.output));
        if (!exact || types.get(j.input) !== 'float32' || types.get(j.output) !== 'float32' || r.boundary.includes(j.input) || signals.has(j.input)) continue;
        r.nodes.delete(j.node);
        r.boundary = r.boundary.map((b) => (b === j.output ? j.input : b));
        signals.set(j.input, j.output);
      }
      return signals;
    });
    const parts: Array<{ prefix: string; model: ModelProto }> = [];
    const compared: Array<{ layer: number; into: 'total' | 'own' | 'weight'; reference: string; copy: string; isError?: boolean; signal?: string }> = [];
    const baseView = new GraphView(loaded.model.graph!);
    const baseNode = new Map((loaded.model.graph!.node ?? []).map((n) => [n.name ?? '', n]));
    const floatOnes = (tensors: string[]) => tensors.filter((o) => types.get(o) === 'float32'); // not shape arithmetic
    for (let l = 0; l < results.length; l++) {
      const own = new Set(results[l].nodes);
      const sub = windowsOf[l]?.sub ?? layerSubModel(loaded.model, new Set([...own, ...regions[l].nodes]), regions[l].boundary);
      const win = windowsOf[l]?.windows;
      // The window on the layer's finest map (a pyramid's coarser inputs get it scaled by their stride).
      if (win) results[l].window = [...win.values()].reduce((a, b) => (b[0] > a[0] ? b : a));
      // Windowed: the copies read windows of the float model's tensors, and the reference is the float copy.
      const renames = new Map(win ? [...win].map(([i, size]) => [i, windowOf(i, size)]) : []);
      const windowed = (m: ModelProto) => (win ? readingInstead(m, renames) : m);
      const ref = (o: string) => (win ? `${l}f/${o}` : o);
      parts.push({ prefix: `${l}q`, model: windowed((await applyQuantization({ ...prep, loaded: { ...loaded, model: sub.model } }, (n) => own.has(n))).model) });
      if (win) parts.push({ prefix: `${l}f`, model: windowed(sub.model) });
      for (const o of floatOnes(sub.outputs)) compared.push({ layer: l, into: 'total', reference: ref(o), copy: `${l}q/${o}`, ...(signalOf[l].has(o) ? { signal: signalOf[l].get(o) } : {}) });
      if (options.mode !== 'static') continue;
      // The weight-only copy runs the layer alone: the split is a ratio at the layer's outputs, where the
      // quantized copy's values are at hand too, and carrying a second copy through the region doubled
      // each sample's cost.
      const mine = floatOnes(layerOutputs[l]);
      if (!mine.length) continue;
      const alone = layerSubModel(loaded.model, own, mine);
      const weightOnly = windowed((await applyQuantization({ ...prep, loaded: { ...loaded, model: alone.model }, plan: weightPlan }, (n) => own.has(n))).model);
      const layerNode = baseNode.get(results[l].nodes[0]);
      const floatWeight = results[l].nodes.length === 1 ? layerNode?.input?.[1] : undefined;
      const direct = floatWeight && baseView.constant(floatWeight)?.data_type === DataType.FLOAT ? weightErrorPart(weightOnly, floatWeight) : undefined;
      parts.push({ prefix: `${l}w`, model: direct ?? weightOnly });
      for (const o of mine) {
        compared.push({ layer: l, into: 'own', reference: ref(o), copy: `${l}q/${o}` });
        compared.push({ layer: l, into: 'weight', reference: ref(o), copy: `${l}w/${o}`, ...(direct ? { isError: true } : {}) });
      }
    }
    if (crops.size) {
      const made = new Map((loaded.model.graph!.node ?? []).flatMap((n, i) => (n.output ?? []).map((o) => [o, i] as const)));
      parts.push({ prefix: 'window', model: cropModel(loaded.model, [...crops.values()], (t) => made.get(t) ?? -1) });
    }
    if (!compared.some((c) => c.into === 'total')) throw new QuantLensError(loaded.loc.file, 'has no float output near any layer to measure the noise at');
    const model = mergeSideBySide(loaded.model, parts);
    // A layer whose region is itself compares the same copy twice: reduced once.
    const keyOf = (c: { copy: string; signal?: string }) => `${c.copy}|${c.signal ?? ''}`;
    const byKey = new Map(compared.map((c) => [keyOf(c), { reference: c.reference, copies: [c.copy], ...(c.isError ? { errors: new Set([c.copy]) } : {}), ...(c.signal ? { signal: c.signal } : {}) }]));
    const reduced = reduceToNsr(model, [...byKey.values()]);
    const sumOf = new Map([...byKey.keys()].map((k, i) => [k, { sig: reduced[i].sig, err: reduced[i].err[0] }]));
    interleaveCopies(model, loaded.model.graph!.node?.length ?? 0);
    // The parts' encoded copies are garbage now: collected before onnxruntime allocates, not after.
    parts.length = 0;
    collectGarbage();
    // A conv net at every optimisation but Q/DQ fusion (the copies emulate quantization; see noQdqFusion):
    // the float model keeps its own conv layouts and fusions (else 'basic', see analysisLevel). PaddleOCR
    // det 320x640, 12 samples, three runs each, alternated: each sample's run 311-407 ms against 443-608 ms
    // at 'basic', layer NSRs within 0.1%, peak RSS 331-338 MiB against 304-307 (DequantizeLinear of the
    // copies' weights folded to float at load).
    // The arena without a planned pattern (see noMemPattern): without an arena every activation was a
    // fresh allocation, its pages faulted in again each run (det 320x640 on rendered pages, alternated:
    // 210-248 ms per sample against 131-134 ms).
    // Samples large enough to take time to make (decoded images, drawn random values) run in a worker
    // while this thread makes the next (see wantsWorker): PaddleOCR det 320x640, random samples, a run
    // took 94 ms and drawing the next sample 24 ms more.
    const open = async (m: ModelProto, first: Record<string, ort.Tensor>, count: number) => {
      const t = performance.now();
      // The model's inputs the merged graph reads (a copy may leave one unread), at the data's shapes.
      const wanted = new Set((m.graph!.input ?? []).map((v) => v.name ?? ''));
      const inputsOf = (feeds: Record<string, ort.Tensor>) => Object.fromEntries(Object.entries(feeds).filter(([k]) => wanted.has(k)));
      const worker = wantsWorker(first, count) ? startSessionWorker(options.device, loaded.loc.file) : undefined;
      const r = await variantRunner(worker, m, loaded, options.device, inputsOf(first), analysisLevel(loaded.model), { noMemPattern: true, noQdqFusion: true });
      provider = r.provider;
      fallbackReason ??= r.fallbackReason;
      return { ...r, inputsOf, ahead: worker !== undefined, seconds: (performance.now() - t) / 1000 };
    };
    let merged: Awaited<ReturnType<typeof open>> | undefined = await open(model, next.value, data.count);
    let sums = compared.map((c) => ({ c, ...sumOf.get(keyOf(c))! }));
    let done = 0;
    // `count` samples through the graph in hand (the first already drawn); seconds they took.
    const run = async (first: IteratorResult<Record<string, ort.Tensor>>, count: number) => {
      const t = performance.now(), m = merged!, s = sums;
      await pipelineSamples(take(samples, count - 1), m.ahead, (feeds) => m.run(m.inputsOf(feeds)), (out, _feeds, k) => {
        const i = done + k;
        const scalarOf = (name: string) => Number((out[name].data as Float32Array)[0]);
        // The split counts only its first samples, whichever graph runs the later ones.
        for (const { c, err, sig } of s) if (c.into === 'total' || !splitSamples || i < splitSamples) acc[c.layer][c.into].addSums(scalarOf(err), scalarOf(sig));
        ctx.onProgress?.({ stage: 'sensitivity', fraction: (i + 1) / data.count, message: `sample ${i + 1}/${data.count}` });
      }, { signal: ctx.signal, first });
      done += count;
      return (performance.now() - t) / 1000;
    };
    try {
      // The split's copies and comparisons run on the first `splitSamples` samples only: a ratio, it
      // settles within a few samples. The samples after run a graph without them where that pays for its
      // set-up (see LIGHTER_GRAPH); a switch inside one graph (an If per layer) cost more than it saved:
      // PaddleOCR det 320x640, runs alone, alternated: 119 ms gated, 102 ms without the split's nodes,
      // against 35 ms for the float model (scratch). The branches read the float model's conv outputs,
      // which kept onnxruntime from fusing those convs with what follows them.
      // (Outside static mode there is no split: every sample runs the one graph.)
      const first = splitSamples && data.count > splitSamples && sums.some((x) => x.c.into !== 'total') ? splitSamples : data.count;
      const seconds = await run(next, first);
      const rest = data.count - first, after = rest > 0 ? samples.next() : undefined;
      if (after && !after.done) {
        if (secondGraph ?? rest * (seconds / first) > LIGHTER_GRAPH * merged.seconds) {
          const light = keepOutputs(model, new Set(sums.filter((x) => x.c.into === 'total').flatMap((x) => [x.err, x.sig])));
          const heavy = merged;
          merged = undefined;
          await heavy.release();
          merged = await open(light, after.value, rest);
          sums = sums.filter((x) => x.c.into === 'total');
        }
        await run(after, rest);
      }
    } finally {
      await merged?.release();
    }
    results.forEach((r, l) => {
      r.nsr = acc[l].total.value;
      const [w, q] = options.mode === 'static' ? [acc[l].weight.value, acc[l].own.value] : [r.nsr, r.nsr];
      r.split = { weight: q > 0 ? Math.min(1, w / q) : 0, activation: q > 0 ? Math.max(0, 1 - w / q) : 0 };
    });
  }

  return { results, provider, fallbackReason, allQuantized };
}
