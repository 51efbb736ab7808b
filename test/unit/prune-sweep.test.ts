import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { EngineClient } from '../../src/engine/client';
import { compareModels } from '../../src/core/compare';
import { FIXTURES } from '../../src/core/fixtures';
import { saveModel } from '../../src/core/onnx/model-io';
import { sweepModel, type SweepPoint } from '../../src/core/prune/sweep';
import { tmpDir } from '../helpers/util';

function saved(name: keyof typeof FIXTURES): { dir: string; input: string } {
  const dir = tmpDir();
  const input = path.join(dir, `${name}.onnx`);
  saveModel(FIXTURES[name].build(), input);
  return { dir, input };
}

describe('pruning sweeps', function () {
  this.timeout(180_000);

  it('tiny-vlm, 5 sparsities through the engine: 5 points stream as they finish, the report holds the chart', async () => {
    const { dir, input } = saved('tiny-vlm');
    const client = new EngineClient({ enginePath: path.resolve('dist/engine.js') });
    const streamed: SweepPoint[] = [];
    try {
      const r = await client.run('sweep', { model: input, sweep: { sparsities: [0.1, 0.3, 0.5, 0.7, 0.9], output: path.join(dir, 'sweep.json') }, options: { method: 'structured' } }, {
        onProgress: (p) => {
          if (p.partial) streamed.push(p.partial as SweepPoint);
        },
      });
      // All five points arrived as progress events, before the job's result.
      assert.equal(streamed.length, 5);
      assert.deepEqual(streamed.map((p) => p.sparsity), [0.1, 0.3, 0.5, 0.7, 0.9]);
      const file = JSON.parse(fs.readFileSync(r.report, 'utf8'));
      assert.deepEqual(file.points.map((p: SweepPoint) => p.sparsity), [0.1, 0.3, 0.5, 0.7, 0.9]);
      for (const p of file.points as SweepPoint[]) {
        for (const k of ['sparsity', 'sizeBytes', 'latencyMs', 'cosine', 'sqnr', 'parameters'] as const) assert.equal(typeof p[k], 'number', k);
        assert.ok(fs.existsSync(p.model), p.model);
      }
      // More pruning, fewer parameters and a smaller file, all below the float baseline.
      const params = file.points.map((p: SweepPoint) => p.parameters);
      assert.ok(params.every((v: number, i: number) => i === 0 || v < params[i - 1]), JSON.stringify(params));
      assert.ok(file.points[0].parameters < file.baseline.parameters);
      assert.ok(file.points[4].sizeBytes < file.points[0].sizeBytes);
      assert.ok(file.points[0].cosine > file.points[4].cosine);
    } finally {
      client.dispose();
    }
  });

  it('resumes after a cancel without pruning the finished points again; iterative steps build on each other', async () => {
    const { dir, input } = saved('transformer');
    const output = path.join(dir, 'sweep.json');
    const ac = new AbortController();
    let seen = 0;
    await assert.rejects(sweepModel(input, { sparsities: [0.2, 0.4, 0.6], output }, { method: 'magnitude' }, { signal: ac.signal, onProgress: (p) => { if (p.partial && ++seen === 2) ac.abort(); } }));
    assert.ok(fs.existsSync(`${output}.partial.json`));
    assert.ok(!fs.existsSync(output), 'no report from a cancelled sweep');
    const stamps = fs.readdirSync(path.join(dir, 'sweep')).filter((f) => f.endsWith('.onnx')).map((f) => [f, fs.statSync(path.join(dir, 'sweep', f)).mtimeMs] as const);
    assert.equal(stamps.length, 2);
    let pruned = 0;
    const r = await sweepModel(input, { sparsities: [0.2, 0.4, 0.6], output }, { method: 'magnitude' }, { onProgress: (p) => { if (p.stage === 'prune') pruned++; } });
    assert.equal(pruned, 1, 'only the missing point is pruned');
    for (const [f, t] of stamps) assert.equal(fs.statSync(path.join(dir, 'sweep', f)).mtimeMs, t, `${f} was rewritten`);
    assert.equal(r.points.length, 3);
    assert.equal(r.reused, 2);
    assert.ok(!fs.existsSync(`${output}.partial.json`));
    // A finished sweep run again: nothing pruned, every point from the report; one more sparsity: only it.
    pruned = 0;
    const again = await sweepModel(input, { sparsities: [0.2, 0.4, 0.6], output }, { method: 'magnitude' }, { onProgress: (p) => { if (p.stage === 'prune') pruned++; } });
    assert.equal(pruned, 0);
    assert.equal(again.reused, 3);
    assert.deepEqual(again.points.map((p) => p.cosine), r.points.map((p) => p.cosine));
    const more = await sweepModel(input, { sparsities: [0.2, 0.4, 0.6, 0.7], output }, { method: 'magnitude' }, { onProgress: (p) => { if (p.stage === 'prune') pruned++; } });
    assert.equal(pruned, 1);
    assert.equal(more.reused, 3);
    // Other options: measured afresh.
    const other = await sweepModel(input, { sparsities: [0.2], output }, { method: 'magnitude', scope: 'layer' });
    assert.equal(other.reused, 0);

    const it = await sweepModel(input, { sparsities: [0.25, 0.5], iterative: true, output: path.join(dir, 'iter.json') }, { method: 'structured' });
    assert.ok(it.iterative);
    assert.ok(it.points[1].parameters < it.points[0].parameters);
    // Measured against the original model, not the previous step.
    const direct = await compareModels(input, it.points[1].model, { data: 'random:4', samples: 4, latencyRuns: 1 });
    assert.ok(Math.abs(Object.values(direct.outputs)[0].cosine - it.points[1].cosine) < 1e-9);
    assert.ok(Math.abs(it.points[1].achieved - (1 - it.points[1].parameters / it.baseline.parameters)) < 1e-9);
  });

  it('refuses N:M sweeps and empty or bad sparsity lists', async () => {
    const { input } = saved('mlp');
    await assert.rejects(sweepModel(input, { sparsities: [0.5] }, { method: 'nm' }), /N:M has a fixed one/);
    await assert.rejects(sweepModel(input, { sparsities: [] }, {}), /at least one value/);
    await assert.rejects(sweepModel(input, { sparsities: [0.5, 1.2] }, {}), /--sparsity must be in \[0, 1\)/);
  });
});
