// npm run bench: performance measured side by side in one run, printed as ratios.
//   load+save of a >= 1 GB generated model ÷ `cp` of the same file; peak RSS ÷ file size.
// QUANTLENS_BENCH_GB sets the model size (default 1.05).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'out/bench');
const dir = fs.mkdtempSync(path.join(process.env.QUANTLENS_BENCH_DIR ?? os.tmpdir(), 'quantlens-bench-'));
const gb = process.env.QUANTLENS_BENCH_GB ?? '1.05';
const reps = 3;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = (fn) => { const t = process.hrtime.bigint(); fn(); return Number(process.hrtime.bigint() - t) / 1e9; };

/**
 * Extension activation time in a real VS Code (code-server, as the integration tests run it): the suite's
 * activation test alone, five times; it writes the time `extension.activate()` took.
 */
function activation() {
  const setup = spawnSync('bash', [path.join(root, 'test/integration/setup-vscode.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  if (setup.status !== 0) return console.log('extension activation: skipped (VS Code server not installed; npm test installs it)');
  const env = { ...process.env, QUANTLENS_SUITE_GREP: 'lazy activation' };
  for (const line of setup.stdout.split('\n')) {
    const m = line.match(/^(NODE24|CODE_SERVER_DIR)=(.*)$/);
    if (m) env[m[1]] = m[2];
  }
  const ws = fs.mkdtempSync(path.join(dir, 'ws-'));
  const times = [], own = [];
  for (let i = 0; i < 5; i++) {
    env.QUANTLENS_ACTIVATION_OUT = path.join(dir, `activation-${i}.json`);
    spawnSync(process.execPath, [path.join(root, 'test/integration/vscode-server-harness.mjs'), `--extensionDevelopmentPath=${root}`,
      `--extensionTestsPath=${path.join(out, '../test/integration/suite/index.js')}`, ws, '--timeout=120'], { stdio: 'ignore', env });
    if (fs.existsSync(env.QUANTLENS_ACTIVATION_OUT)) {
      const m = JSON.parse(fs.readFileSync(env.QUANTLENS_ACTIVATION_OUT, 'utf8'));
      times.push(m.activationMs);
      own.push(m.activateMs);
    }
  }
  if (!times.length) return console.log('extension activation: no measurement (the harness did not run)');
  console.log(`${'extension activation in VS Code (code-server)'.padEnd(52)} ${median(times).toFixed(1)} ms median of ${times.length} (goal ≤ 50 ms), of which activate() itself ${median(own).toFixed(1)} ms`);
}

/** Peak memory of a quantize run ÷ model size: all resident memory, and its private and file-backed parts. */
function printPeaks(m, size, pad) {
  const r = (b) => (b / size).toFixed(2);
  console.log(`${'  peak RSS ÷ model size'.padEnd(pad)} ${r(m.peakRssBytes)}  (goal ≤ 0.5; ${(m.peakRssBytes / 2 ** 30).toFixed(2)} GiB)`);
  if (m.anonBytes !== undefined) {
    console.log(`${'    of which anonymous (private) at its peak'.padEnd(pad)} ${r(m.anonBytes)}  (${(m.anonBytes / 2 ** 30).toFixed(2)} GiB)`);
    console.log(`${'    file-backed at its peak (mapped weights, page cache)'.padEnd(pad)} ${r(m.fileBytes)}${m.streamed ? `  (streamed: ${m.streamed.tensors} tensors, ${(m.streamed.bytes / 2 ** 30).toFixed(2)} GiB)` : ''}`);
  }
}

/**
 * Issue 7's row: weight INT8 quantization of a model of several GB with external data (default 4.2 GiB,
 * QUANTLENS_BENCH_HUGE_GB; 0 skips): time ÷ `cp` of its files, and peak RSS ÷ model size (goal ≤ 0.5).
 */
function huge() {
  const gbHuge = process.env.QUANTLENS_BENCH_HUGE_GB ?? '4.2';
  if (gbHuge === '0') return;
  const folder = path.join(dir, 'huge');
  fs.mkdirSync(folder);
  const model = path.join(folder, 'huge.onnx');
  const made = JSON.parse(execFileSync(process.execPath, ['--max-old-space-size=8192', path.join(out, 'make-large-model.js'), model, gbHuge, 'external'], { encoding: 'utf8' }));
  const size = made.bytes;
  execFileSync('cp', ['-r', folder, path.join(dir, 'huge-warm')]); // page cache warm
  fs.rmSync(path.join(dir, 'huge-warm'), { recursive: true, force: true });
  const cpT = time(() => execFileSync('cp', ['-r', folder, path.join(dir, 'huge-copy')]));
  fs.rmSync(path.join(dir, 'huge-copy'), { recursive: true, force: true });
  const label = `${(size / 2 ** 30).toFixed(2)} GiB external-data model`;
  for (const [job, what] of [['quantize', 'weight INT8 quantize'], ['prune', 'magnitude 50% prune'], ['structured', 'structured 50% prune']]) {
    const q = spawnSync(process.execPath, ['--max-old-space-size=16384', path.join(out, 'large-job.js'), model, path.join(dir, 'huge-q.onnx'), job], { encoding: 'utf8' });
    if (q.status !== 0) throw new Error(q.stderr);
    const m = JSON.parse(q.stdout.trim().split('\n').pop());
    console.log(`${`${what} of a ${label} ÷ cp`.padEnd(52)} ${(m.seconds / cpT).toFixed(2)}x  (${m.seconds.toFixed(1)} s vs cp ${cpT.toFixed(2)} s; verify ${m.timings.verify.toFixed(1)} s)`);
    printPeaks(m, size, 52);
    fs.rmSync(path.join(dir, 'huge-q.onnx'), { force: true });
    fs.rmSync(path.join(dir, 'huge-q.onnx.data'), { force: true });
  }
  fs.rmSync(folder, { recursive: true, force: true });
  fs.rmSync(path.join(dir, 'huge-q.onnx'), { force: true });
  fs.rmSync(path.join(dir, 'huge-q.onnx.data'), { force: true });
}

if (process.env.QUANTLENS_BENCH_ONLY === 'huge') {
  huge();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

if (process.env.QUANTLENS_BENCH_ONLY === 'editor') {
  // The editor's rows alone (no large model): QUANTLENS_BENCH_ONLY=editor npm run bench
  execFileSync(process.execPath, [path.join(out, 'editor-speed.js')], { stdio: 'inherit' });
  activation();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

try {
  const model = path.join(dir, 'large.onnx');
  const made = JSON.parse(execFileSync(process.execPath, ['--max-old-space-size=8192', path.join(out, 'make-large-model.js'), model, gb], { encoding: 'utf8' }));
  const size = fs.statSync(model).size;
  console.log(`model: ${made.layers} MatMul layers of 4096x4096 float32, ${(size / 2 ** 30).toFixed(2)} GiB (${size} bytes)`);
  execFileSync('cp', [model, path.join(dir, 'warm.onnx')]); // page cache warm for both sides
  const cp = [], ours = [], rss = [];
  for (let i = 0; i < reps; i++) {
    cp.push(time(() => execFileSync('cp', [model, path.join(dir, 'copy.onnx')])));
    fs.rmSync(path.join(dir, 'copy.onnx'));
    const r = spawnSync(process.execPath, ['--max-old-space-size=16384', path.join(out, 'load-save.js'), model, path.join(dir, 'resaved.onnx')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    const m = JSON.parse(r.stdout);
    ours.push(m.seconds);
    rss.push(m.peakRssBytes);
    fs.rmSync(path.join(dir, 'resaved.onnx'));
  }
  const row = (name, v) => console.log(`${name.padEnd(44)} ${v}`);
  row('cp (median of 3)', `${median(cp).toFixed(3)} s`);
  row('quantlens load+save (median of 3)', `${median(ours).toFixed(3)} s`);
  row('load+save time ÷ cp time', `${(median(ours) / median(cp)).toFixed(2)}x`);
  row('peak RSS of load+save', `${(median(rss) / 2 ** 20).toFixed(0)} MiB`);
  row('peak RSS ÷ model file size', `${(median(rss) / size).toFixed(2)}`);

  // Weight INT8 quantization of the same model (verification in onnxruntime included), then of an
  // external-data copy of it.
  const external = path.join(dir, 'ext', 'large.onnx');
  fs.mkdirSync(path.dirname(external));
  for (const [label, src] of [['inline', model], ['external data', external]]) {
    if (src === external) {
      const r = spawnSync(process.execPath, ['--max-old-space-size=16384', path.join(out, 'to-external.js'), model, external], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(r.stderr);
    }
    const q = spawnSync(process.execPath, ['--max-old-space-size=16384', path.join(out, 'large-job.js'), src, path.join(dir, 'q.onnx')], { encoding: 'utf8' });
    if (q.status !== 0) throw new Error(q.stderr);
    const m = JSON.parse(q.stdout.trim().split('\n').pop());
    const t = m.timings;
    const srcSize = size;
    row(`weight INT8 quantize (${label}), all ÷ cp`, `${(m.seconds / median(cp)).toFixed(2)}x  (${m.seconds.toFixed(2)} s; verify ${t.verify.toFixed(2)} s)`);
    row(`  load+quantize+save only ÷ cp`, `${((m.seconds - t.verify) / median(cp)).toFixed(2)}x`);
    printPeaks(m, srcSize, 44);
    row('  cosine to the float model', m.cosine.toFixed(5));
    fs.rmSync(path.join(dir, 'q.onnx'), { force: true });
  }
  huge();
  execFileSync(process.execPath, [path.join(out, 'calibration-speed.js')], { stdio: 'inherit' });
  execFileSync(process.execPath, [path.join(out, 'sensitivity-speed.js')], { stdio: 'inherit' });
  execFileSync(process.execPath, [path.join(out, 'prune-speed.js')], { stdio: 'inherit' });
  execFileSync(process.execPath, [path.join(out, 'int8-latency.js')], { stdio: 'inherit' });
  execFileSync(process.execPath, [path.join(out, 'editor-speed.js')], { stdio: 'inherit' });
  activation();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
