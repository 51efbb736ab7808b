import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { compareModels } from '../../src/core/compare';
import { FIXTURES } from '../../src/core/fixtures';
import { Rng } from '../../src/core/calib/rng';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { GraphView } from '../../src/core/onnx/graph';
import { readTensor, toFloat32 } from '../../src/core/onnx/tensor';
import { streamedPruneCounts } from '../../src/core/prune/streamed-counts';
import { pruneModel } from '../../src/core/prune/prune-model';
import { main } from '../../src/cli/main';
import { npy } from '../helpers/npy';
import { identitySharedBiasModel } from '../helpers/models';
import { tmpDir } from '../helpers/util';

function saved(name: keyof typeof FIXTURES): { dir: string; input: string } {
  const dir = tmpDir();
  const input = path.join(dir, `${name}.onnx`);
  saveModel(FIXTURES[name].build(), input);
  return { dir, input };
}

/** Weights of every MatMul/Gemm/Conv in a saved model, by node name. */
function layerWeights(file: string): Map<string, { dims: number[]; data: Float32Array; op: string }> {
  const m = loadModel(file);
  const view = new GraphView(m.model.graph!);
  const out = new Map<string, { dims: number[]; data: Float32Array; op: string }>();
  for (const n of m.model.graph!.node!) {
    if (!['MatMul', 'Gemm', 'Conv'].includes(n.op_type!)) continue;
    const t = view.constant(n.input![1]);
    if (t) out.set(n.name!, { dims: (t.dims ?? []).map(Number), data: toFloat32(readTensor(t, m.loc)), op: n.op_type! });
  }
  return out;
}
const zeros = (a: Float32Array) => a.reduce((n, v) => n + (v === 0 ? 1 : 0), 0);

/**
 * Activations as a trained model's are: low-rank (8 directions out of 64) plus a little noise, so the
 * inputs of each layer are correlated. That correlation is what reconstruction exploits.
 */
function correlatedSamples(dir: string, count: number, seed: number): string {
  fs.mkdirSync(dir, { recursive: true });
  const basis = new Rng(1); // the same directions for every set
  const A = Float32Array.from({ length: 8 * 64 }, () => basis.uniform() * 2 - 1);
  const rng = new Rng(seed);
  for (let s = 0; s < count; s++) {
    const x = new Float32Array(16 * 64);
    for (let t = 0; t < 16; t++) {
      const z = Array.from({ length: 8 }, () => rng.uniform() * 2 - 1);
      for (let d = 0; d < 64; d++) {
        let v = 0.05 * (rng.uniform() * 2 - 1);
        for (let k = 0; k < 8; k++) v += z[k] * A[k * 64 + d];
        x[t * 64 + d] = v;
      }
    }
    fs.writeFileSync(path.join(dir, `s${s}.npy`), npy('<f4', [1, 16, 64], x));
  }
  return dir;
}

describe('unstructured and N:M pruning', function () {
  this.timeout(120_000);

  it('removes exactly the requested count: per layer, globally, with ties and a minimum density', () => {
    const layers = [Float32Array.from({ length: 100 }, () => 1), Float32Array.from({ length: 10 }, (_, i) => i), Float32Array.from({ length: 7 }, () => 0.5)];
    const pruneCounts = (scores: Float32Array[], sparsity: number, scope: 'global' | 'layer', minDensity: number) => streamedPruneCounts(scores.map((x) => x.length), (i) => scores[i], sparsity, scope, minDensity);
    assert.deepEqual(pruneCounts(layers, 0.5, 'layer', 0), [50, 5, 4]);
    const g = pruneCounts(layers, 0.5, 'global', 0);
    assert.equal(g.reduce((a, b) => a + b, 0), Math.round(117 * 0.5));
    // 0 and six of the 0.5s go first (a layer keeps one weight); ties at 1 then fill up to exactly 59, layer by layer.
    assert.deepEqual(g, [52, 1, 6]);
    const floor = pruneCounts(layers, 0.9, 'global', 0.2);
    floor.forEach((c, i) => assert.ok(c <= Math.floor(layers[i].length * 0.8), `layer ${i} pruned ${c}`));
  });

  it('magnitude, global: the model has exactly the requested zeros; per layer: each layer within one weight', async () => {
    const { dir, input } = saved('transformer');
    const before = layerWeights(input);
    const total = [...before.values()].reduce((a, w) => a + w.data.length, 0);
    const r = await pruneModel(input, path.join(dir, 'g.onnx'), { method: 'magnitude', sparsity: 0.6 });
    const after = layerWeights(path.join(dir, 'g.onnx'));
    const zeroed = [...after.values()].reduce((a, w) => a + zeros(w.data), 0);
    assert.equal(zeroed, Math.round(total * 0.6));
    assert.ok(Math.abs(r.sparsity - Math.round(total * 0.6) / total) < 1e-9, `reported ${r.sparsity}`);
    for (const l of r.layers) {
      const w = after.get(l.node)!;
      assert.equal(zeros(w.data), Math.round(l.sparsity * w.data.length));
    }
    const p = await pruneModel(input, path.join(dir, 'l.onnx'), { method: 'magnitude', sparsity: 0.3, scope: 'layer' });
    for (const [name, w] of layerWeights(path.join(dir, 'l.onnx'))) assert.ok(Math.abs(zeros(w.data) - 0.3 * w.data.length) <= 1, `${name}: ${zeros(w.data)} of ${w.data.length}`);
    assert.equal(p.parametersAfter, p.parametersBefore); // zeroed, not removed
    const report = JSON.parse(fs.readFileSync(p.report, 'utf8'));
    const map = report.maps['layers.0.mlp.fc1'];
    assert.ok(map.rows > 0 && map.cols > 0 && map.density.length === map.rows * map.cols);
    assert.ok(map.density.every((d: number) => d >= 0 && d <= 1));
  });

  it('N:M 2:4 holds on every group along the input dimension; layers that do not divide are skipped', async () => {
    for (const name of ['transformer', 'cnn'] as const) {
      const { dir, input } = saved(name);
      const r = await pruneModel(input, path.join(dir, 'nm.onnx'), { method: 'nm', pattern: { n: 2, m: 4 } });
      let groups = 0;
      for (const [node, w] of layerWeights(path.join(dir, 'nm.onnx'))) {
        // Input axis: K of MatMul [K, N]; Cin of Conv [O, Cin, kh, kw]; K of Gemm(transB) [N, K].
        const idx = w.op === 'MatMul' ? (o: number, k: number) => k * w.dims[1] + o : w.op === 'Gemm' ? (o: number, k: number) => o * w.dims[1] + k : undefined;
        const inSize = w.op === 'MatMul' ? w.dims[0] : w.dims[1];
        const skippedLayer = r.skipped.some((s) => s.node === node);
        if (inSize % 4 !== 0) { assert.ok(skippedLayer, `${node} (input ${inSize}) should be skipped`); continue; }
        const outs = w.op === 'MatMul' ? w.dims[1] : w.dims[0];
        const inner = w.op === 'Conv' ? w.dims.slice(2).reduce((a, b) => a * b, 1) : 1;
        for (let o = 0; o < outs; o++) {
          for (let r0 = 0; r0 < inner; r0++) {
            for (let g = 0; g < inSize; g += 4) {
              let nz = 0;
              for (let j = 0; j < 4; j++) nz += (idx ? w.data[idx(o, g + j)] : w.data[(o * inSize + g + j) * inner + r0]) !== 0 ? 1 : 0;
              assert.ok(nz <= 2, `${node}: group ${o}/${g} keeps ${nz}`);
              groups++;
            }
          }
        }
      }
      assert.ok(groups > 100);
      assert.ok(r.layers.every((l) => l.nmViolations === 0));
    }
  });

  it('--reconstruct lowers the output error at the same sparsity (magnitude and structured)', async () => {
    const { dir, input } = saved('transformer');
    const calib = correlatedSamples(path.join(dir, 'calib'), 32, 2);
    const held = correlatedSamples(path.join(dir, 'held'), 16, 3);
    const sqnr = async (out: string) => Object.values((await compareModels(input, out, { data: held, samples: 16, latencyRuns: 1 })).outputs)[0].sqnr;
    const results: Record<string, number> = {};
    for (const method of ['magnitude', 'structured'] as const) {
      for (const reconstruct of [false, true]) {
        const out = path.join(dir, `${method}-${reconstruct}.onnx`);
        await pruneModel(input, out, { method, sparsity: 0.5, calibration: calib, reconstruct });
        results[`${method}${reconstruct ? '+reconstruct' : ''}`] = await sqnr(out);
      }
    }
    console.log(`      SQNR on held-out data (dB): ${Object.entries(results).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
    assert.ok(results['magnitude+reconstruct'] > results.magnitude + 1, JSON.stringify(results));
    assert.ok(results['structured+reconstruct'] > results.structured + 1, JSON.stringify(results));
  });

  it('writes masks a PyTorch loop can apply: bit-packed, one per layer, kept counts matching', async () => {
    const { dir, input } = saved('transformer');
    const masks = path.join(dir, 'masks.json');
    const r = await pruneModel(input, path.join(dir, 'p.onnx'), { method: 'magnitude', sparsity: 0.5 }, {}, { masks });
    const doc = JSON.parse(fs.readFileSync(masks, 'utf8'));
    assert.equal(doc.format, 'quantlens-prune-masks');
    const fc1 = doc.layers['layers.0.mlp.fc1'];
    assert.deepEqual(fc1.shape, [64, 128]);
    assert.equal(fc1.transposed, true);
    const bits = Buffer.from(fc1.mask, 'base64');
    let kept = 0;
    for (let i = 0; i < 64 * 128; i++) kept += (bits[i >> 3] >> (7 - (i & 7))) & 1;
    const layer = r.layers.find((l) => l.name === 'layers.0.mlp.fc1')!;
    assert.equal(kept, Math.round(64 * 128 * (1 - layer.sparsity)));
    const s = await pruneModel(input, path.join(dir, 's.onnx'), { method: 'structured', sparsity: 0.5 }, {}, { masks });
    const sd = JSON.parse(fs.readFileSync(masks, 'utf8'));
    assert.equal(sd.layers['layers.0.mlp.fc1'].keptOutputs.length, 64);
    assert.equal(sd.layers['layers.0.mlp.fc2'].keptInputs.length, 64);
    assert.ok(s.parametersAfter < s.parametersBefore);
  });

  it('bad input: one clear line, exit 1 or 2, nothing written', async () => {
    const { dir, input } = saved('transformer');
    const out = path.join(dir, 'o.onnx');
    const cases: Array<[string[], number, RegExp]> = [
      [['prune', input, '-o', out, '--sparsity', '1'], 2, /--sparsity must be in \[0, 1\)/],
      [['prune', input, '-o', out, '--sparsity=-0.1'], 2, /--sparsity must be in \[0, 1\)/],
      [['prune', input, '-o', out, '--method', 'nm', '--pattern', '3:2'], 2, /--pattern must be N:M/],
      [['prune', input, '-o', out, '--reconstruct'], 2, /--reconstruct needs --calibration/],
      [['prune', input, '-o', out, '--method', 'channels'], 2, /--method must be magnitude, nm, structured/],
      [['prune', input, '-o', input], 1, /would overwrite the input/],
      [['prune', path.join(dir, 'missing.onnx'), '-o', out], 1, /missing\.onnx/],
    ];
    for (const [argv, code, re] of cases) {
      let err = '';
      const status = await main(argv, { stdout: () => {}, stderr: (s) => { err += s; } });
      assert.equal(status, code, `${argv.join(' ')}: ${err}`);
      assert.match(err.split('\n')[0], re);
      assert.ok(!fs.existsSync(out), `${argv.join(' ')} wrote ${out}`);
    }
    assert.deepEqual(fs.readdirSync(dir).sort(), ['transformer.onnx']);
  });
  // torch.onnx hands one stored copy of equal tensors (zero biases, tied weights) to each reader through an
  // Identity. Unstructured pruning changes only weights: a shared bias stays one tensor (copied, RetinaNet's
  // pruned file grew by 26,624 parameters), while a weight two layers share is each layer's own to prune.
  it('magnitude and N:M: a bias shared through Identity nodes stays one tensor; a shared weight is each layer\'s own', async () => {
    const dir = tmpDir();
    const input = path.join(dir, 'shared.onnx');
    const m = identitySharedBiasModel();
    // c3 reads c2's weight through an Identity (tied weights).
    m.graph!.node!.push(
      { name: '/c3/Identity', op_type: 'Identity', input: ['c2.weight'], output: ['c2.weight_tied'] },
      { name: '/c3/Conv', op_type: 'Conv', input: ['y', 'c2.weight_tied', 'onnx::Conv_9'], output: ['z'], attribute: m.graph!.node![1].attribute },
    );
    m.graph!.output = [{ ...m.graph!.output![0], name: 'z' }];
    saveModel(m, input);
    for (const method of ['magnitude', 'nm'] as const) {
      const output = path.join(dir, `${method}.onnx`);
      const r = await pruneModel(input, output, { method, sparsity: 0.5 });
      const g = loadModel(output).model.graph!;
      const inputsOf = (node: string) => g.node!.find((n) => n.name === node)!.input!;
      assert.equal(new Set(['/c1/Conv', '/c2/Conv', '/c3/Conv'].map((n) => inputsOf(n)[2])).size, 1, `${method}: one bias tensor for all three convs`);
      assert.notEqual(inputsOf('/c2/Conv')[1], inputsOf('/c3/Conv')[1], `${method}: the tied weight is each layer's own`);
      assert.ok(!g.node!.some((n) => n.op_type === 'Identity'), `${method}: no Identity left`);
      assert.equal(r.parametersAfter - r.parametersBefore, 8 * 8 * 3 * 3, `${method}: only the tied weight's second copy is new`);
    }
  });
});
