import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runUserEvaluator } from '../../src/core/eval/user-evaluator';
import { FIXTURES } from '../../src/core/fixtures';
import { saveModel } from '../../src/core/onnx/model-io';
import { quantizeModel } from '../../src/core/jobs/quantize-model';
import { tmpDir } from '../helpers/util';

describe('user evaluator (a command that prints a metric)', function () {
  this.timeout(120_000);

  it('reads a number or a one-number JSON object from the last line, with {model} replaced', async () => {
    assert.equal(await runUserEvaluator({ command: "echo evaluating {model} >&2; echo 0.75" }, '/x/m.onnx'), 0.75);
    assert.equal(await runUserEvaluator({ command: `: {model}; echo '{"accuracy": 0.91}'` }, '/x/m.onnx'), 0.91);
    assert.equal(await runUserEvaluator({ command: 'test {model} = "/x/it\'s.onnx" && echo 1' }, "/x/it's.onnx"), 1);
  });

  it('fails clearly: not a number, a crash (with the stderr tail), a hang (timeout)', async () => {
    await assert.rejects(runUserEvaluator({ command: ': {model}; echo accuracy is high' }, 'm.onnx'), /the evaluator printed 'accuracy is high', not a number/);
    await assert.rejects(runUserEvaluator({ command: ': {model}; echo boom >&2; exit 3' }, 'm.onnx'), /the evaluator exited with code 3: .*stderr: boom/);
    await assert.rejects(runUserEvaluator({ command: 'sleep 30 # {model}', timeoutSeconds: 1 }, 'm.onnx'), /the evaluator timed out after 1 s/);
  });

  it('drives --budget: the drop is measured by the user metric', async () => {
    const dir = tmpDir();
    const model = path.join(dir, 'transformer.onnx');
    saveModel(FIXTURES.transformer.build(), model);
    // The user's "evaluation": cosine of the candidate's logits against the float model, via our own CLI.
    const script = path.join(dir, 'eval.sh');
    fs.writeFileSync(script, `node ${path.resolve('bin/quantlens.js')} compare ${model} "$1" --samples 4 --json | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(JSON.stringify({cosine: JSON.parse(s).outputs.logits.cosine})))"\n`);
    const r = await quantizeModel(model, path.join(dir, 'q.onnx'), { mode: 'weight', bits: 4, calibration: 'random:4', budget: 0.001, evaluator: `bash ${script} {model}` });
    const report = JSON.parse(fs.readFileSync(r.report, 'utf8'));
    assert.equal(report.mixedPrecision.metric, 'evaluator');
    assert.ok(report.mixedPrecision.drop <= 0.001);
    assert.ok(report.mixedPrecision.evaluations.length >= 2);
  });
});
