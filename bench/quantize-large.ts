// One weight-INT8 quantization of a large model in a fresh process: prints the result's timings and peak RSS.
import { quantizeModel } from '../src/core/quant/quantize-model';
import fs from 'node:fs';

const [input, output] = process.argv.slice(2);
(async () => {
  const t0 = performance.now();
  const r = await quantizeModel(input, output, { mode: 'weight', bits: 8, maxSamples: 1});
  const seconds = (performance.now() - t0) / 1000;
  const report = JSON.parse(fs.readFileSync(r.report, 'utf8'));
  process.stdout.write(JSON.stringify({ seconds, timings: report.timings, peakRssBytes: process.resourceUsage().maxRSS * 1024, cosine: Object.values(r.fidelity)[0].cosine }) + '\n');
})();
