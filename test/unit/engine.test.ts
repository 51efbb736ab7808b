import assert from 'node:assert/strict';
import path from 'node:path';
import { EngineClient } from '../../src/engine/client';
import { CancelledError, QuantLensError } from '../../src/core/base/errors';
import type { Progress } from '../../src/core/base/jobs';
import { tmpDir } from '../helpers/util';

describe('engine process (real child process, JSON lines)', function () {
  let client: EngineClient;
  beforeEach(() => {
    client = new EngineClient({ enginePath: path.resolve('dist/engine.js'), cancelGraceMs: 1500 });
  });
  afterEach(() => client.dispose());

  it('runs fixture, inspect and run jobs and streams progress', async () => {
    const out = path.join(tmpDir(), 'vlm.onnx');
    const f = await client.run('fixture', { name: 'tiny-vlm', output: out });
    assert.equal(f.output, out);
    const s = await client.run('inspect', { model: out });
    assert.ok(!('kind' in s));
    assert.equal(s.inputs.map((i) => i.name).join(','), 'pixel_values,input_ids');
    const progress: Progress[] = [];
    const r = await client.run('run', { model: out, device: 'cpu', runs: 2 }, { onProgress: (p) => progress.push(p) });
    assert.equal(r.device, 'cpu');
    assert.deepEqual(r.outputs.logits.shape, [1, 24, 128]);
    assert.ok(progress.some((p) => p.stage === 'run'));
  });

  it('quantizes and compares in the engine, streaming progress', async () => {
    const dir = tmpDir();
    const model = path.join(dir, 'mlp.onnx');
    await client.run('fixture', { name: 'mlp', output: model });
    const stages = new Set<string>();
    const q = await client.run('quantize', { model, output: path.join(dir, 'q.onnx'), options: { mode: 'static', calibration: 'random:8' } }, { onProgress: (p) => stages.add(p.stage) });
    assert.ok(!('kind' in q) && q.quantized.length > 0);
    assert.ok(stages.has('calibration') && stages.has('compare'), [...stages].join(','));
    const c = await client.run('compare', { reference: model, candidate: (q as { output: string }).output, options: { samples: 2 } });
    assert.ok(!('kind' in c) && c.outputs.logits.cosine > 0.99);
  });

  it('reports a bad model as an error event with the one-line message', async () => {
    await assert.rejects(client.run('inspect', { model: '/no/such/model.onnx' }), (e: unknown) => e instanceof QuantLensError && e.message === '/no/such/model.onnx: no such file');
  });

  it('cancels a job cooperatively, and the engine keeps serving', async () => {
    const ac = new AbortController();
    const job = client.run('sleep', { ms: 20_000 }, { signal: ac.signal, onProgress: () => ac.abort() });
    await assert.rejects(job, CancelledError);
    const pid = client.pid;
    assert.deepEqual(await client.run('sleep', { ms: 10 }), { sleptMs: 10 });
    assert.equal(client.pid, pid, 'same engine process');
  });

  it('a kill -9 mid-job becomes an error, and the next job gets a fresh engine', async () => {
    let killed = false;
    const job = client.run('sleep', { ms: 20_000 }, {
      onProgress: () => {
        if (!killed) {
          killed = true;
          process.kill(client.pid!, 'SIGKILL');
        }
      },
    });
    await assert.rejects(job, /the QuantLens engine stopped unexpectedly \(signal SIGKILL\)/);
    assert.deepEqual(await client.run('sleep', { ms: 10 }), { sleptMs: 10 });
  });
});
