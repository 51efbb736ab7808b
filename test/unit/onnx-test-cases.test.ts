import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { openCalibration } from '../../src/core/calib/data';
import { compareModels } from '../../src/core/compare';
import { QuantLensError } from '../../src/core/base/errors';
import { quantizeModel } from '../../src/core/jobs/quantize-model';
import { loadModel } from '../../src/core/onnx/model-io';
import { onnx } from '../../src/core/onnx/proto';
import { makeTensor, readTensor } from '../../src/core/onnx/tensor';
import { DataType } from '../../src/core/onnx/dtypes';
import { main } from '../../src/cli/main';
import { createSession } from '../../src/core/runtime/session';
import { tmpDir } from '../helpers/util';

// onnx's own test cases (Debian's libonnx-testdata): single PyTorch layers and operators exported by
// PyTorch 0.3-0.4 (opsets 6-9, tensors without names, every initializer also a graph input), each with
// its inputs and the outputs PyTorch computed, in the test_data_set_N layout. Third-party files written
// by another tool, checked against someone else's answers.
const ROOT = '/usr/share/libonnx-testdata/data';
const cases = () => ['pytorch-converted', 'pytorch-operator'].flatMap((d) => fs.readdirSync(path.join(ROOT, d)).map((c) => path.join(ROOT, d, c)))
  .filter((c) => fs.existsSync(path.join(c, 'model.onnx')) && fs.existsSync(path.join(c, 'test_data_set_0')));

/** The case's expected outputs, in output order (their tensors carry no names). */
function expected(dir: string): number[][] {
  return fs.readdirSync(dir).filter((f) => /^output_\d+\.pb$/.test(f)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    .map((f) => Array.from(readTensor(onnx.TensorProto.decode(fs.readFileSync(path.join(dir, f)))).data as ArrayLike<number | bigint>, Number));
}

describe('onnx\'s own test cases (libonnx-testdata): PyTorch-exported layers with their expected outputs', function () {
  this.timeout(600_000);
  before(function () {
    if (!fs.existsSync(path.join(ROOT, 'pytorch-converted'))) this.skip();
  });

  it('each case runs through QuantLens\'s session (opsets below 7 read at 7) and gives the outputs PyTorch computed', async () => {
    const wrong: string[] = [];
    const all = cases();
    assert.ok(all.length >= 100, `${all.length} cases`);
    for (const c of all) {
      const model = path.join(c, 'model.onnx');
      const graph = loadModel(model).model.graph!;
      const s = await createSession(model, { device: 'cpu' });
      try {
        // The data set as calibration reads it: output_0.pb beside input_0.pb is not an input.
        for (const set of fs.readdirSync(c).filter((d) => d.startsWith('test_data_set_'))) {
          const [feeds] = openCalibration(path.join(c, set), graph).samples();
          const got = await s.session.run(feeds);
          expected(path.join(c, set)).forEach((want, k) => {
            const out = Array.from(got[s.session.outputNames[k]].data as ArrayLike<number | bigint>, Number);
            const bad = out.length !== want.length ? 0 : want.findIndex((w, i) => !(Math.abs(out[i] - w) <= 1e-4 + 1e-3 * Math.abs(w)) && !(Number.isNaN(w) && Number.isNaN(out[i])));
            if (out.length !== want.length || bad >= 0) wrong.push(`${path.basename(c)} output ${k}${bad >= 0 ? `[${bad}]: ${out[bad]} vs ${want[bad]}` : `: ${out.length} values vs ${want.length}`}`);
          });
        }
      } finally {
        await s.session.release();
      }
    }
    assert.deepEqual(wrong, []);
  });

  // Weighted layers of every kind the cases hold: 1-D, grouped, depthwise with a multiplier, dilated and
  // strided 3-D convs, a transposed conv, Linear and Conv without bias.
  const LAYERS = ['test_Conv1d_dilated', 'test_Conv2d_groups', 'test_Conv2d_depthwise_with_multiplier', 'test_Conv3d_dilated_strided', 'test_ConvTranspose2d', 'test_Linear', 'test_Linear_no_bias', 'test_Conv2d_no_bias', 'test_operator_conv'];

  it('weight, dynamic and static INT8 (calibrated on the case\'s own data set) stay within cosine 0.995 of float on it; a layer a mode does not take is one line, not a model', async () => {
    const dir = tmpDir();
    const found = cases().filter((c) => LAYERS.includes(path.basename(c)));
    assert.equal(found.length, LAYERS.length);
    const seen: string[] = [];
    for (const c of found) {
      const model = path.join(c, 'model.onnx');
      for (const mode of ['weight', 'dynamic', 'static'] as const) {
        const out = path.join(dir, `${path.basename(c)}-${mode}.onnx`);
        try {
          const r = await quantizeModel(model, out, { mode, ...(mode === 'static' ? { calibration: c, objective: 'size' as const } : {}) });
          assert.ok(r.quantized.length > 0);
        } catch (e) {
          // ConvTranspose has no dynamic form in onnxruntime: refused by name, nothing written.
          assert.ok(e instanceof QuantLensError && /nothing was quantized/.test(e.message) && !e.message.includes('\n'), `${path.basename(c)} ${mode}: ${e}`);
          assert.ok(!fs.existsSync(out));
          seen.push(`${path.basename(c)} ${mode}: none`);
          continue;
        }
        const cmp = await compareModels(model, out, { data: c, latencyRuns: 0 });
        const cos = Math.min(...Object.values(cmp.outputs).map((o) => o.cosine));
        assert.ok(cos >= 0.995, `${path.basename(c)} ${mode}: cosine ${cos}`);
        seen.push(`${path.basename(c)} ${mode}: ${cos.toFixed(4)}`);
      }
    }
    // Every mode quantized most of the layers (the list shows which did not).
    assert.ok(seen.filter((s) => !s.endsWith('none')).length >= 3 * LAYERS.length - 3, seen.join('\n'));
  });

  it('run --data on a case says whether its expected outputs came out; an altered expected value is found', async () => {
    const c = path.join(ROOT, 'pytorch-converted', 'test_Conv2d_groups');
    const run = async (data: string) => {
      let stdout = '';
      const code = await main(['run', path.join(c, 'model.onnx'), '--data', data, '--json'], { stdout: (s) => (stdout += s), stderr: () => {} });
      return { code, report: JSON.parse(stdout) };
    };
    const ok = await run(c);
    assert.equal(ok.code, 0);
    assert.deepEqual([ok.report.inputs, ok.report.expected.matches, Object.keys(ok.report.expected.outputs).length], ['data', true, 1]);
    // The same case with one expected value moved by 0.01.
    const copy = tmpDir();
    fs.cpSync(path.join(c, 'test_data_set_0'), copy, { recursive: true });
    const t = onnx.TensorProto.decode(fs.readFileSync(path.join(copy, 'output_0.pb')));
    const values = readTensor(t).data as Float32Array;
    values[5] += 0.01;
    fs.writeFileSync(path.join(copy, 'output_0.pb'), onnx.TensorProto.encode(makeTensor(t.name ?? '', DataType.FLOAT, t.dims!.map(Number), values)).finish());
    const off = (await run(copy)).report.expected;
    const [only] = Object.values(off.outputs) as Array<{ maxAbsError: number; matches: boolean }>;
    assert.equal(off.matches, false);
    assert.ok(Math.abs(only.maxAbsError - 0.01) < 1e-4, String(only.maxAbsError));
  });

  // Node cases: Cast of strings ("NaN", "INF", "-INF") to float, where an infinity is the right answer; and
  // a string output, shown and compared as strings (as numbers every one was NaN: 'has NaN/Inf').
  it('run --data: infinities that agree match, and string outputs are shown and compared as strings', async () => {
    const node = path.join(ROOT, 'node');
    const run = async (name: string, json: boolean) => {
      let stdout = '';
      const c = path.join(node, name);
      const code = await main(['run', path.join(c, 'model.onnx'), '--data', path.join(c, 'test_data_set_0'), ...(json ? ['--json'] : [])], { stdout: (s) => (stdout += s), stderr: () => {} });
      assert.equal(code, 0, stdout);
      return stdout;
    };
    const cast = JSON.parse(await run('test_cast_STRING_to_FLOAT', true));
    assert.equal(cast.outputs.output.finite, false, 'the case has infinities');
    assert.equal(cast.expected.matches, true);
    const text = await run('test_strnormalizer_nostopwords_nochangecase', false);
    assert.match(text, /y: string\[2\] "monday", "tuesday"\n/);
    assert.match(text, /y: matches, 0 strings differ/);
    assert.doesNotMatch(text, /NaN\/Inf/);
  });

  it('its unnamed output tensors are never read as inputs, so loose and nested data sets agree', () => {
    const c = path.join(ROOT, 'pytorch-converted', 'test_Conv2d');
    const graph = loadModel(path.join(c, 'model.onnx')).model.graph!;
    const [nested] = openCalibration(c, graph).samples();
    const [loose] = openCalibration(path.join(c, 'test_data_set_0'), graph).samples();
    const name = Object.keys(nested)[0];
    assert.deepEqual(nested[name].dims, loose[name].dims);
    assert.ok(nested[name] instanceof ort.Tensor && (nested[name].data as Float32Array).every((v, i) => v === (loose[name].data as Float32Array)[i]));
  });
});
