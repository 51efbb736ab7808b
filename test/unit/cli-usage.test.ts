import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cli } from '../helpers/cli';
import { FIXTURES } from '../../src/core/fixtures';
import { saveModel } from '../../src/core/onnx/model-io';
import { tmpDir } from '../helpers/util';
import { JOB_HANDLERS, JOB_KINDS } from '../../src/core/jobs/handlers';
import pkg from '../../package.json';


// Flags that would be accepted and ignored, given twice, or out of range are usage errors (exit 2) that
// name the flags, before any work and without writing anything.
describe('CLI usage: help, version, and flags that cannot apply', function () {
  this.timeout(60_000);
  const dir = tmpDir();
  const model = path.join(dir, 'cnn.onnx');
  before(() => saveModel(FIXTURES.cnn.build(), model));

  it('--version, and per-command --help / help CMD exit 0 with that command\'s options', async () => {
    const v = await cli(['--version']);
    assert.equal(v.code, 0);
    assert.equal(v.stdout.trim(), `quantlens ${pkg.version}`);
    for (const cmd of ['quantize', 'prune', 'sweep', 'sensitivity', 'compare', 'inspect', 'run', 'qat-plan', 'fixture']) {
      const h = await cli([cmd, '--help']);
      assert.equal(h.code, 0, `${cmd}: ${h.stderr}`);
      assert.match(h.stdout, new RegExp(`^usage: quantlens ${cmd}\\b`), h.stdout);
      assert.equal(h.stdout.match(/^usage:/gm)?.length, 1, h.stdout);
      assert.ok(!/exit status/.test(h.stdout), 'its own block, not the whole usage');
    }
    assert.match((await cli(['prune', '-h'])).stdout, /--method magnitude\|nm\|structured/);
    assert.match((await cli(['help', 'sweep'])).stdout, /^usage: quantlens sweep MODEL --sparsities/);
  });

  const cases: Array<[string, string[], RegExp]> = [
    ['dynamic mode with 4 bits', ['quantize', model, '-o', 'OUT', '--mode', 'dynamic', '--bits', '4'], /--bits 4 applies to --mode weight only.*--mode dynamic is 8-bit/],
    ['a mode given twice', ['quantize', model, '-o', 'OUT', '--mode', 'weight', '--mode', 'static'], /--mode given twice \('weight' and 'static'\)/],
    ['a calibration method in weight mode', ['quantize', model, '-o', 'OUT', '--mode', 'weight', '--calibration-method', 'mse'], /--calibration-method applies to --mode static only/],
    ['gptq with 8 bits', ['quantize', model, '-o', 'OUT', '--mode', 'weight', '--algorithm', 'gptq'], /--algorithm gptq applies to --mode weight --bits 4 only/],
    ['--percentile without the percentile method', ['quantize', model, '-o', 'OUT', '--mode', 'static', '--calibration', 'random:2', '--percentile', '99.9'], /--percentile applies to --calibration-method percentile only/],
    ['--histogram-values with MinMax', ['quantize', model, '-o', 'OUT', '--mode', 'static', '--calibration', 'random:2', '--calibration-method', 'minmax', '--histogram-values', '4096'], /--histogram-values applies to the histogram methods \(percentile, entropy, mse\)/],
    ['--histogram-values outside static mode', ['quantize', model, '-o', 'OUT', '--mode', 'weight', '--histogram-values', '4096'], /--histogram-values applies to --mode static only/],
    ['--steps without --progressive', ['quantize', model, '-o', 'OUT', '--mode', 'weight', '--steps', '3'], /--steps applies with --progressive only/],
    ['--weight-format outside weight mode', ['quantize', model, '-o', 'OUT', '--mode', 'static', '--calibration', 'random:2', '--weight-format', 'expand'], /--weight-format applies to --mode weight only, not --mode static/],
    ['an unknown --weight-format', ['quantize', model, '-o', 'OUT', '--weight-format', 'fp8'], /--weight-format must be auto, dequantize, nbits, expand, nbits\+expand, not 'fp8'/],
    ['N:M with a sparsity', ['prune', model, '-o', 'OUT', '--method', 'nm', '--sparsity', '0.5'], /--sparsity does not apply to --method nm/],
    ['a pattern for magnitude', ['prune', model, '-o', 'OUT', '--method', 'magnitude', '--pattern', '2:4'], /--pattern applies to --method nm only, not --method magnitude/],
    ['a scope for structured', ['prune', model, '-o', 'OUT', '--method', 'structured', '--scope', 'layer'], /--scope applies to --method magnitude only, not --method structured/],
    ['an allocation for magnitude', ['sweep', model, '--sparsities', '0.3', '--allocation', 'global'], /--allocation applies to --method structured only/],
    ['a negative sparsity', ['prune', model, '-o', 'OUT', '--sparsity', '-1'], /--sparsity must be in \[0, 1\), not -1/],
    ['a sparsity above 1', ['prune', model, '-o', 'OUT', '--sparsity', '1.5'], /--sparsity must be in \[0, 1\), not 1\.5/],
    ['an unknown calibration method (sensitivity)', ['sensitivity', model, '--calibration', 'random:2', '--calibration-method', 'foo'], /--calibration-method must be minmax, percentile, entropy, mse, not 'foo'/],
    ['5 bits (sensitivity)', ['sensitivity', model, '--calibration', 'random:2', '--bits', '5'], /--bits must be 4, 8, not '5'/],
    ['workers for local sensitivity', ['sensitivity', model, '--calibration', 'random:2', '--workers', '2'], /--workers applies to --method end-to-end only/],
    ['whole maps for end-to-end sensitivity', ['sensitivity', model, '--calibration', 'random:2', '--method', 'end-to-end', '--whole-maps'], /--whole-maps applies to --method local only/],
  ];
  for (const [label, args, message] of cases) {
    it(`refuses ${label}: exit 2, the flags named, nothing written`, async () => {
      const out = path.join(dir, `${label.replace(/\W+/g, '-')}.onnx`);
      const r = await cli(args.map((a) => (a === 'OUT' ? out : a)));
      assert.equal(r.code, 2, `${r.stderr}${r.stdout}`);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /--help for its options/);
      assert.ok(!fs.existsSync(out), 'nothing written');
      assert.ok(!fs.existsSync(`${model}.sensitivity.json`), 'no sensitivity report written');
    });
  }

  it('unwritable outputs fail before any work, in one line naming the user\'s path', async () => {
    const folder = path.join(dir, 'taken.onnx');
    fs.mkdirSync(folder);
    const file = path.join(dir, 'plain-file');
    fs.writeFileSync(file, 'x');
    const cases: Array<[string[], RegExp]> = [
      [['quantize', model, '-o', folder, '--mode', 'weight'], /taken\.onnx: is a folder; give a file path/],
      [['prune', model, '-o', path.join(file, 'p.onnx')], /plain-file\/p\.onnx: '.*plain-file' is not a folder/],
      [['sensitivity', model, '--calibration', 'random:2', '-o', folder], /taken\.onnx: is a folder/],
      [['qat-plan', model, '--calibration', 'random:2', '-o', folder], /taken\.onnx: is a folder/],
    ];
    // A folder this process cannot write to (here /sys, where even root may not create files).
    let sysWritable = true;
    try { fs.closeSync(fs.openSync('/sys/.quantlens-probe', 'wx')); fs.rmSync('/sys/.quantlens-probe'); } catch { sysWritable = false; }
    if (!sysWritable) {
      cases.push([['quantize', model, '-o', '/sys/q.onnx', '--mode', 'weight'], /\/sys\/q\.onnx: folder '\/sys' (is not writable|is on a read-only file system|cannot be written)/]);
      cases.push([['sweep', model, '--sparsities', '0.3', '-o', '/sys/s.json'], /\/sys\/s\.json: folder '\/sys' (is not writable|is on a read-only file system|cannot be written)/]);
    }
    for (const args of cases) {
      const r = await cli(args[0]);
      assert.equal(r.code, 1, `${args[0].join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, args[1]);
      assert.ok(!/EISDIR|ENOTDIR|EROFS|EACCES|mkdtemp/.test(r.stderr), r.stderr);
    }
    assert.deepEqual(fs.readdirSync(folder), []);
  });

  it('off a terminal, long jobs print a progress line per stage on stderr (stdout stays the result)', () => {
    const out = path.join(dir, 'progress.onnx');
    const r = spawnSync(process.execPath, ['bin/quantlens.js', 'prune', model, '-o', out, '--method', 'structured', '--sparsity', '0.25', '--calibration', 'random:4', '--reconstruct'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.ok(lines.length >= 2 && lines.every((l) => l.startsWith('quantlens: ')), r.stderr);
    assert.ok(lines.some((l) => /^quantlens: prune: structured pruning of \d+ layers/.test(l)), r.stderr);
    assert.match(r.stdout, /progress\.onnx: structured pruning/);
    assert.match(r.stdout, /note: --sparsity 0\.25 is the share of channels taken from each family; it removed [\d.]+% of the prunable layers' weights/);
  });
});

describe('one jobs layer for the CLI and the engine', () => {
  it('the engine has a handler for every job kind the protocol names, and no other', () => {
    assert.deepEqual(Object.keys(JOB_HANDLERS).sort(), [...JOB_KINDS].sort());
  });

  it('fixture: the CLI and the engine write the same model through writeFixture', async () => {
    const dir = tmpDir();
    const a = path.join(dir, 'a.onnx'), b = path.join(dir, 'b.onnx');
    assert.equal((await cli(['fixture', 'cnn', '-o', a])).code, 0);
    const r = await JOB_HANDLERS.fixture({ name: 'cnn', output: b }, {});
    assert.equal(r.output, b);
    assert.deepEqual(fs.readFileSync(a), fs.readFileSync(b));
    await assert.rejects(JOB_HANDLERS.fixture({ name: 'resnet', output: b }, {}), /unknown fixture 'resnet'; choose one of: /);
  });
});
