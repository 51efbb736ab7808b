// One weight-INT8 quantization (or, with `prune` as third argument, one global magnitude pruning at 50%;
// with `structured`, structured pruning at 50% with bias compensation) of a large model in a fresh
// process: prints the result's timings and peak memory.
import { quantizeModel } from '../src/core/jobs/quantize-model';
import { pruneModel } from '../src/core/prune/prune-model';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';

const [input, output, job] = process.argv.slice(2);
(async () => {
  // A separate process samples this one's anonymous and file-backed memory (this one's event loop is busy).
  const peaksFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-rss-')), 'peaks.json');
  const poller = spawn(process.execPath, [path.join(__dirname, 'rss-poller.js'), String(process.pid), peaksFile], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 200));
  const t0 = performance.now();
  const r = job === 'prune' || job === 'structured'
    ? await pruneModel(input, output, { method: job === 'prune' ? 'magnitude' : 'structured', sparsity: 0.5, maxSamples: 1 })
    : await quantizeModel(input, output, { mode: 'weight', bits: 8, maxSamples: 1 });
  const seconds = (performance.now() - t0) / 1000;
  const report = JSON.parse(fs.readFileSync(r.report, 'utf8'));
  await new Promise((r) => setTimeout(r, 100));
  poller.kill();
  const peaks = fs.existsSync(peaksFile) ? JSON.parse(fs.readFileSync(peaksFile, 'utf8')) : {};
  fs.rmSync(path.dirname(peaksFile), { recursive: true, force: true });
  process.stdout.write(JSON.stringify({ seconds, timings: report.timings, peakRssBytes: process.resourceUsage().maxRSS * 1024, ...peaks, streamed: report.streamed, cosine: Object.values(r.fidelity)[0].cosine }) + '\n');
})();
