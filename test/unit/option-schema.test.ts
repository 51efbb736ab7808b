import assert from 'node:assert/strict';
import path from 'node:path';
import { COMMANDS, checkJobRequest, choicesOf } from '../../src/core/jobs/options/commands';
import { argsFromRequest, defaultOf, getPath, type CommandSpec, type OptionSpec } from '../../src/core/jobs/options/schema';
import { DEFAULT_QUANTIZE_OPTIONS } from '../../src/core/quant/options';
import { DEFAULT_PRUNE_OPTIONS } from '../../src/core/prune/options';
import { EngineClient } from '../../src/engine/client';
import { QuantLensError } from '../../src/core/base/errors';
import { requestFromArgs } from '../../src/cli/flags';
import { commandHelp, USAGE } from '../../src/cli/help';
import { MODES, prunePicks, pruneOptions, quantizeOptions, sweepPicks } from '../../src/extension/presets';
import { cli } from '../helpers/cli';
import { calibrator } from '../../src/core/calib/calibrators';
import { GrowingHistogram } from '../../src/core/calib/histogram';
import pkg from '../../package.json';

/** A valid text for one option, by its declaration. */
function sampleText(o: OptionSpec): string {
  if (o.choices) return Object.keys(o.choices).at(-1)!;
  if (o.kind === 'number') {
    const r = o.range ?? {};
    if (r.min !== undefined && r.max !== undefined) return String(r.whole ? r.min : (r.min + r.max) / 2);
    return String(r.min !== undefined ? r.min + 1 : 1);
  }
  const byFlag: Record<string, string> = { 'input-shape': 'x=1x3x8x8', pattern: '2:4', 'round-to': 'auto', sparsities: '0.1,0.2', calibration: 'random:2', data: 'random:2', exclude: 'head.*', shard: '2/3' };
  return byFlag[o.flag] ?? `/tmp/${o.flag}.txt`;
}

function baseArgs(spec: CommandSpec, except?: string): string[] {
  const args = spec.positionals.map((p) => `/tmp/${p.name.toLowerCase()}.onnx`);
  for (const r of spec.required ?? []) if (r.flag !== except) args.push(`--${r.flag}`, sampleText(spec.options.find((o) => o.flag === r.flag)!));
  return args;
}

describe('one option schema per job: the CLI, its help, the engine and the editor read the same declarations', () => {
  it('every command and option appears in the help, with its values and the job\'s own default', () => {
    for (const spec of COMMANDS) {
      assert.match(USAGE, new RegExp(`^  ${spec.command} `, 'm'), spec.command);
      const help = commandHelp(spec.command)!;
      for (const o of spec.options) {
        assert.match(help, new RegExp(`--${o.flag}\\b`), `${spec.command} --${o.flag}`);
        if (o.choices) assert.ok(help.includes(Object.keys(o.choices).join('|')), `${spec.command} --${o.flag} lists its values`);
      }
    }
    // Defaults come from the core's DEFAULT_* objects, not a second copy.
    assert.match(commandHelp('quantize')!, new RegExp(`--calibration-method .*\\n.*default ${DEFAULT_QUANTIZE_OPTIONS.calibrationMethod}`));
    assert.match(commandHelp('prune')!, new RegExp(`--scope .*\\n.*default ${DEFAULT_PRUNE_OPTIONS.scope}`));
    assert.match(commandHelp('sensitivity')!, /--mode .*\n.*default static/);
  });

  it('each option, given alone, lands at its declared place in the request and passes the engine\'s check, or is refused naming it', () => {
    let landed = 0;
    for (const spec of COMMANDS) {
      for (const o of spec.options) {
        const args = [...baseArgs(spec, o.flag), ...(o.kind === 'flag' ? [`--${o.flag}`] : [`--${o.flag}`, sampleText(o)])];
        let built: ReturnType<typeof requestFromArgs>;
        try {
          built = requestFromArgs(spec, args);
        } catch (e) {
          assert.ok(e instanceof QuantLensError && e.kind === 'usage', `${spec.command} --${o.flag}: ${String(e)}`);
          assert.match(e.message, new RegExp(`--${o.flag}\\b`));
          continue;
        }
        if (o.target) {
          const v = getPath(built.request, o.target);
          assert.notEqual(v, undefined, `${spec.command} --${o.flag} → ${o.target}`);
          if (o.sets !== undefined) assert.deepEqual(v, o.sets);
          landed++;
        }
        checkJobRequest(spec.job, built.request);
        // The request back into a command line (what a cluster job's script runs) makes the same request.
        const again = argsFromRequest(spec, built.request);
        assert.equal(again[0], spec.command);
        assert.deepEqual(requestFromArgs(spec, again.slice(1)).request, built.request, `${spec.command} --${o.flag}: ${again.join(' ')}`);
      }
    }
    assert.ok(landed > 60, `${landed} options checked`);
  });

  const refused: Array<[string, object, RegExp]> = [
    ['dynamic mode with 4 bits', { model: 'm', output: 'o', options: { mode: 'dynamic', bits: 4 } }, /--bits 4 applies to --mode weight only/],
    ['an unknown calibration method', { model: 'm', output: 'o', options: { mode: 'static', calibrationMethod: 'foo' } }, /--calibration-method must be minmax, percentile, entropy, mse, not 'foo'/],
    ['a calibration method in weight mode', { model: 'm', output: 'o', options: { mode: 'weight', calibrationMethod: 'mse' } }, /--calibration-method applies to --mode static only/],
    ['a block size that is not a power of two', { model: 'm', output: 'o', options: { mode: 'weight', bits: 4, blockSize: 24 } }, /--block-size must be 16, 32, 64, 128, 256/],
    ['a string where a number goes', { model: 'm', output: 'o', options: { budget: '0.1' } }, /--budget takes a number/],
  ];
  for (const [label, req, message] of refused) {
    it(`the engine's check refuses ${label}`, () => {
      assert.throws(() => checkJobRequest('quantize', req), (e: unknown) => e instanceof QuantLensError && e.kind === 'usage' && message.test(e.message));
    });
  }

  it('prune and sweep requests: N:M with a sparsity, a structured-only flag for magnitude, a sparsity of 1.5', () => {
    assert.throws(() => checkJobRequest('prune', { model: 'm', output: 'o', options: { method: 'nm', sparsity: 0.5 } }), /--sparsity does not apply to --method nm/);
    assert.throws(() => checkJobRequest('sweep', { model: 'm', sweep: { sparsities: [0.1] }, options: { method: 'magnitude', roundTo: 'auto' } }), /--round-to applies to --method structured only/);
    assert.throws(() => checkJobRequest('prune', { model: 'm', output: 'o', options: { sparsity: 1.5 } }), /--sparsity must be in \[0, 1\), not 1\.5/);
    assert.throws(() => checkJobRequest('sweep', { model: 'm', sweep: { sparsities: [0.1, 2] }, options: {} }), /--sparsities/);
    checkJobRequest('prune', { model: 'm', output: 'o', options: { method: 'nm', pattern: { n: 2, m: 4 } } });
  });

  it('the engine process answers an inapplicable request with a usage error, before any work', async () => {
    const client = new EngineClient({ enginePath: path.resolve('dist/engine.js'), cancelGraceMs: 1500 });
    try {
      await assert.rejects(client.run('quantize', { model: '/no/such.onnx', output: '/tmp/x.onnx', options: { mode: 'dynamic', bits: 4 } }),
        (e: unknown) => e instanceof QuantLensError && e.kind === 'usage' && /--bits 4 applies to --mode weight only/.test(e.message));
    } finally {
      client.dispose();
    }
  });

  it('the editor\'s pickers and settings are the declared choices, and every pick makes a request the engine accepts', () => {
    for (const m of MODES) {
      for (const calibrationMethod of Object.keys(choicesOf('quantize', 'calibration-method'))) {
        const options = quantizeOptions({ ...m.preset, calibration: m.needsData ? 'random:8' : undefined }, { device: 'auto', calibrationMethod: calibrationMethod as 'mse', evaluator: { command: 'python eval.py {model}', lowerIsBetter: false } });
        checkJobRequest('quantize', { model: 'm', output: 'o', options });
      }
    }
    for (const p of prunePicks()) checkJobRequest('prune', { model: 'm', output: 'o', options: pruneOptions(p, 0.3) });
    assert.deepEqual(sweepPicks().map((p) => p.label), Object.keys(choicesOf('sweep', 'method')));
    const settings = pkg.contributes.configuration.properties as unknown as Record<string, { enum?: Array<string | number>; default?: unknown }>;
    assert.deepEqual(settings['quantlens.device'].enum, Object.keys(choicesOf('quantize', 'device')));
    assert.deepEqual(settings['quantlens.calibrationMethod'].enum, Object.keys(choicesOf('quantize', 'calibration-method')));
    assert.deepEqual(settings['quantlens.defaultBits'].enum!.map(String).sort(), Object.keys(choicesOf('quantize', 'bits')).sort());
    assert.equal(settings['quantlens.calibrationMethod'].default, defaultOf(COMMANDS.find((c) => c.command === 'quantize')!, COMMANDS.find((c) => c.command === 'quantize')!.options.find((o) => o.flag === 'calibration-method')!));
  });

  it('every declared calibration method is a calibrator strategy: MinMax needs only extremes, the others a histogram that can clip', () => {
    const h = new GrowingHistogram(2048);
    // A long tail: 10,000 values in [0, 1) and a few outliers at 50.
    h.add(Float32Array.from({ length: 10_000 }, (_, i) => (i % 1000) / 1000));
    h.add(Float32Array.of(50, 50, 50));
    for (const method of Object.keys(choicesOf('quantize', 'calibration-method'))) {
      const c = calibrator(method as 'mse', { percentile: 99.9, bins: 2048 });
      assert.equal(c.method, method);
      const r = c.range(h);
      if (method === 'minmax') { assert.equal(c.bins, 0); assert.deepEqual([r.lo, r.hi], [0, 50]); } else {
        assert.ok(c.bins > 0);
        assert.ok(r.hi <= 50 && r.hi >= 0.9, `${method}: ${r.hi}`);
        if (method === 'percentile') assert.ok(r.hi < 50, `the 99.9th percentile leaves the 0.03% of outliers out: ${r.hi}`);
      }
    }
  });

  it('the same invalid value gets the same message from the CLI and the engine', async () => {
    const r = await cli(['quantize', '/tmp/m.onnx', '-o', '/tmp/o.onnx', '--mode', 'dynamic', '--bits', '4']);
    assert.equal(r.code, 2);
    let engineMessage = '';
    try { checkJobRequest('quantize', { model: 'm', output: 'o', options: { mode: 'dynamic', bits: 4 } }); } catch (e) { engineMessage = (e as Error).message; }
    assert.ok(engineMessage && r.stderr.includes(engineMessage), `${r.stderr} vs ${engineMessage}`);
  });
});
