import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { assignShards, parseShard } from '../../src/core/cluster/shard';
import { analyzeSensitivity, type SensitivityReport } from '../../src/core/sensitivity/analyze';
import { assertSameSensitivity } from '../helpers/sensitivity';
import { sweepModel, type SweepReport } from '../../src/core/prune/sweep';
import { writeFixture } from '../../src/core/jobs/fixture';
import { cli } from '../helpers/cli';
import { tmpDir } from '../helpers/util';

describe('sharded jobs: --shard I/N parts and quantlens merge', function () {
  this.timeout(300_000);
  let dir = '', model = '';
  before(() => {
    dir = tmpDir();
    model = path.join(dir, 't.onnx');
    writeFixture('transformer', model);
  });

  it('splits pieces so every shard gets its share of the cost, the same way in every process', () => {
    assert.deepEqual(assignShards([1, 1, 1, 1, 1], 2), [1, 2, 1, 2, 1]);
    // One costly piece alone on a shard; the cheap ones go to the other.
    assert.deepEqual(assignShards([10, 1, 1, 1, 1, 1], 2), [1, 2, 2, 2, 2, 2]);
    assert.deepEqual(parseShard('3/4'), { index: 3, count: 4 });
    for (const bad of ['0/4', '5/4', '1', 'a/b', '2/0']) assert.throws(() => parseShard(bad), /--shard must be I\/N/);
  });

  for (const method of ['end-to-end', 'local'] as const) {
    it(`${method} sensitivity in 3 shards merges into the report one run writes`, async () => {
      const single = await analyzeSensitivity(model, { calibration: 'random:4', method, output: path.join(dir, `${method}.single.json`) });
      const report = path.join(dir, `${method}.merged.json`);
      const parts: string[] = [];
      for (let i = 1; i <= 3; i++) {
        const r = await cli(['sensitivity', model, '--calibration', 'random:4', '--method', method, '-o', report, '--shard', `${i}/3`]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`shard ${i}/3: \\d+ layers measured`));
        parts.push(path.join(dir, `${method}.merged.part-${i}-of-3.json`));
        assert.ok(fs.existsSync(parts.at(-1)!));
      }
      assert.ok(!fs.existsSync(report), 'the shards write parts, not the report');
      const m = await cli(['merge', ...parts.reverse()]);
      assert.equal(m.code, 0, m.stderr);
      assert.match(m.stdout, new RegExp(`wrote ${report.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: sensitivity of ${single.layers.length} layers from 3 shards`));
      const merged: SensitivityReport = JSON.parse(fs.readFileSync(report, 'utf8'));
      assertSameSensitivity(merged, single, 0.01);
      assert.equal(merged.shards, 3);
    });
  }

  it('refuses parts of another model or options, a missing shard, and a shard given twice', async () => {
    const report = path.join(dir, 'refuse.json');
    for (const i of [1, 2]) assert.equal((await cli(['sensitivity', model, '--calibration', 'random:4', '-o', report, '--shard', `${i}/2`])).code, 0);
    const other = await cli(['sensitivity', model, '--calibration', 'random:4', '--bits', '4', '--mode', 'weight', '-o', path.join(dir, 'other.json'), '--shard', '2/2']);
    assert.equal(other.code, 0, other.stderr);
    const p1 = path.join(dir, 'refuse.part-1-of-2.json'), p2 = path.join(dir, 'refuse.part-2-of-2.json'), o2 = path.join(dir, 'other.part-2-of-2.json');
    const mixed = await cli(['merge', p1, o2]);
    assert.equal(mixed.code, 1);
    assert.match(mixed.stderr, /other\.part-2-of-2\.json: belongs to another job .*different model or options/);
    const missing = await cli(['merge', p1]);
    assert.match(missing.stderr, /missing shard 2 \(rerun it with --shard 2\/2\)/);
    const twice = await cli(['merge', p1, p1, p2]);
    assert.match(twice.stderr, /is shard 1\/2 again/);
    const notPart = await cli(['merge', model]);
    assert.match(notPart.stderr, /t\.onnx: is not a part file/);
    assert.ok(!fs.existsSync(report), 'a refused merge writes nothing');
    const usage = await cli(['sensitivity', model, '--calibration', 'random:4', '--shard', '5/4']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--shard must be I\/N/);
  });

  it('a sweep in 2 shards merges into the report of one run; an iterative sweep cannot be split', async () => {
    const so = { sparsities: [0.2, 0.4, 0.6] };
    const single = await sweepModel(model, { ...so, output: path.join(dir, 'sweep.single.json') }, { method: 'magnitude', calibration: 'random:4' });
    const report = path.join(dir, 'sweep.merged.json');
    for (const index of [1, 2]) await sweepModel(model, { ...so, output: report, shard: { index, count: 2 } }, { method: 'magnitude', calibration: 'random:4' });
    const m = await cli(['merge', path.join(dir, 'sweep.merged.part-1-of-2.json'), path.join(dir, 'sweep.merged.part-2-of-2.json')]);
    assert.equal(m.code, 0, m.stderr);
    const merged: SweepReport = JSON.parse(fs.readFileSync(report, 'utf8'));
    assert.deepEqual(merged.points.map((p) => p.sparsity), single.points.map((p) => p.sparsity));
    merged.points.forEach((p, i) => {
      assert.equal(p.parameters, single.points[i].parameters);
      assert.ok(Math.abs(p.cosine - single.points[i].cosine) < 1e-6, `cosine at ${p.sparsity}`);
      assert.ok(fs.existsSync(p.model));
    });
    assert.equal(merged.report, report);
    const it = await cli(['sweep', model, '--sparsities', '0.2,0.4', '--iterative', '--shard', '1/2']);
    assert.equal(it.code, 2);
    assert.match(it.stderr, /cannot split an --iterative sweep/);
  });

  it('submit --dry-run writes readable sbatch scripts without a cluster; kubernetes writes an Indexed Job', async () => {
    const report = path.join(dir, 'dry.json');
    const r = await cli(['submit', 'slurm', 'sensitivity', model, '--calibration', 'random:4', '-o', report, '--array', '3', '--partition', 'gpu', '--gpus-per-task', '1', '--time', '01:00:00', '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    const jobDir = path.join(dir, 'dry.slurm');
    const shards = fs.readFileSync(path.join(jobDir, 'shards.sbatch'), 'utf8');
    for (const line of ['#SBATCH --array=1-3', '#SBATCH --partition=gpu', '#SBATCH --gpus-per-task=1', '#SBATCH --time=01:00:00', `--shard "$SLURM_ARRAY_TASK_ID/3"`]) assert.ok(shards.includes(line), `shards.sbatch has ${line}`);
    assert.ok(shards.includes(`sensitivity ${model} --calibration random:4 -o ${report}`));
    assert.match(fs.readFileSync(path.join(jobDir, 'merge.sbatch'), 'utf8'), /merge \S+\/parts\/part-\{1\.\.3\}\.json -o \S+dry\.json/);
    assert.match(r.stdout, /not submitted \(--dry-run\)/);
    assert.equal((await cli(['submit', 'slurm', 'sensitivity', model, '--shard', '1/2', '--dry-run'])).code, 2);

    const k = await cli(['submit', 'kubernetes', 'sensitivity', model, '--calibration', 'random:4', '-o', report, '--array', '3', '--image', 'registry.example/quantlens:0.1', '--gpus-per-task', '1']);
    assert.equal(k.code, 0, k.stderr);
    const docs = YAML.parseAllDocuments(fs.readFileSync(path.join(dir, 'dry.k8s', 'job.yaml'), 'utf8')).map((d) => d.toJS());
    assert.equal(docs.length, 2);
    assert.equal(docs[0].spec.completionMode, 'Indexed');
    assert.equal(docs[0].spec.completions, 3);
    const cmd = docs[0].spec.template.spec.containers[0].command.join(' ');
    assert.match(cmd, /--shard "\$\(\(JOB_COMPLETION_INDEX \+ 1\)\)\/3"/);
    assert.equal(docs[0].spec.template.spec.containers[0].resources.limits['nvidia.com/gpu'], 1);
    assert.match(docs[1].spec.template.spec.containers[0].command.join(' '), /quantlens merge \S+\/parts\/part-\{1\.\.3\}\.json -o \S+dry\.json/);
    assert.equal(docs[1].spec.template.spec.containers[0].resources, undefined, 'the merge needs no GPU');
  });
});
