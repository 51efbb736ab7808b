import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { assignedAttributes, attributeAt, hoverMarkdown, SensitivityIndex, sparkline } from '../../src/extension/sensitivity-index';
import { isFromResultsView, upgradeResultsState, type ResultsState } from '../../src/protocol/results-view';
import { tmpDir } from '../helpers/util';

const layer = (name: string, sensitivity: number, rank: number) => ({ name, opType: 'MatMul', nodes: [name], parameters: 4096, sensitivity, sensitivityDb: 10 * Math.log10(sensitivity), rank });

function writeReport(dir: string, name: string, layers: ReturnType<typeof layer>[]): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, JSON.stringify({ model: 'm.onnx', method: 'local', scheme: { mode: 'static', bits: 8 }, layers }));
  return f;
}

describe('editor: hover index and message checks (plain Node)', () => {
  it('finds the attribute under the cursor in definitions and uses, and nothing elsewhere', () => {
    const def = '        self.q_proj = nn.Linear(dim, dim, bias=bias)';
    assert.equal(attributeAt(def, def.indexOf('q_proj') + 1), 'q_proj');
    assert.equal(attributeAt(def, def.indexOf('Linear')), undefined);
    const use = '        q = self.q_proj(x) + self.k_proj(x)';
    assert.equal(attributeAt(use, use.indexOf('k_proj') + 3), 'k_proj');
    assert.equal(attributeAt('    fc1 = nn.Linear(4, 4)', 5), 'fc1');
    assert.equal(attributeAt('x = y + 1', 0), undefined);
  });

  it('answers for every instance of a module: min, median, max and the worst, from the newest report', () => {
    const dir = tmpDir();
    const old = writeReport(dir, 'old.sensitivity.json', [layer('a.layers.0.q_proj', 0.5, 1)]);
    const past = new Date(Date.now() - 60_000);
    fs.utimesSync(old, past, past);
    const fresh = writeReport(dir, 'new.sensitivity.json', [
      layer('vision.layers.0.self_attn.q_proj', 1e-4, 3), layer('vision.layers.1.self_attn.q_proj', 1e-2, 1),
      layer('text.layers.0.self_attn.q_proj', 1e-3, 2), layer('text.layers.0.mlp.fc1', 1e-5, 4),
    ]);
    const index = new SensitivityIndex();
    assert.ok(index.offer(fresh));
    assert.equal(index.offer(old), false, 'an older report does not replace a newer one');
    const a = index.lookup('q_proj')!;
    assert.equal(a.layers.length, 3);
    assert.equal(a.min, 1e-4);
    assert.equal(a.median, 1e-3);
    assert.equal(a.max, 1e-2);
    assert.equal(a.worst.name, 'vision.layers.1.self_attn.q_proj');
    const md = hoverMarkdown(a);
    assert.match(md, /3 layers: min -40\.0 dB · median -30\.0 dB · max -20\.0 dB; worst `vision\.layers\.1\.self_attn\.q_proj` \(rank 1 of 4\)/);
    assert.match(md, /command:quantlens\.openSensitivityTree\?/);
    assert.equal(sparkline([1e-4, 1e-2, 1e-3]), '▁█▅');
    assert.equal(index.lookup('v_proj'), undefined);
    assert.deepEqual([...index.worstAttributes(1).keys()], ['q_proj']);
    // Numbered children of nn.Sequential answer to the container's attribute.
    const seq = writeReport(dir, 'seq.sensitivity.json', [layer('features.0', 1e-3, 2), layer('features.3', 1e-2, 1), layer('classifier', 1e-4, 3)]);
    const idx2 = new SensitivityIndex();
    idx2.offer(seq);
    assert.deepEqual(idx2.lookup('features')!.layers.map((l) => l.name), ['features.0', 'features.3']);
    assert.equal(idx2.lookup('features')!.worst.name, 'features.3');
    index.forget(fresh);
    assert.equal(index.lookup('q_proj'), undefined);
    assert.equal(index.offer(path.join(dir, 'missing.json')), false);
  });

  it('several reports: each Python file meets the report of the model its classes build; containers answer for the layers under them', () => {
    const dir = tmpDir();
    const write = (name: string, model: string, layers: ReturnType<typeof layer>[]) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, JSON.stringify({ model, method: 'local', scheme: { mode: 'static', bits: 8 }, layers }));
      return f;
    };
    const vit = write('vit.onnx.sensitivity.json', 'vit.onnx', [
      layer('encoder.layers.encoder_layer_0.mlp.0', 1e-3, 2), layer('encoder.layers.encoder_layer_0.mlp.3', 1e-2, 1), layer('conv_proj', 1e-5, 4), layer('heads.head', 1e-4, 3),
    ]);
    const past = new Date(Date.now() - 60_000);
    fs.utimesSync(vit, past, past);
    const resnet = write('resnet.onnx.sensitivity.json', 'resnet.onnx', [layer('conv1', 1e-2, 1), layer('layer1.0.conv1', 1e-3, 2), layer('fc', 1e-4, 3)]);
    const index = new SensitivityIndex();
    assert.ok(index.offer(vit) && index.offer(resnet), 'reports of different models are both held');
    assert.equal(index.report, resnet, 'the newest');
    const vitFile = 'class EncoderBlock(nn.Module):\n    def __init__(self):\n        self.ln_1 = norm_layer(hidden_dim)\n        self.mlp = MLPBlock(hidden_dim, mlp_dim, dropout)\n' +
      'class Encoder(nn.Module):\n        self.layers = nn.Sequential(layers)\nclass VisionTransformer(nn.Module):\n        self.conv_proj = nn.Conv2d(3, hidden_dim, 16)\n        self.heads: nn.Module = nn.Sequential(heads_layers)\n';
    const attrs = assignedAttributes(vitFile);
    assert.deepEqual(attrs, ['ln_1', 'mlp', 'layers', 'conv_proj', 'heads']);
    assert.equal(index.reportFor(attrs), vit);
    assert.deepEqual(index.lookup('mlp', attrs)!.layers.map((l) => l.name), ['encoder.layers.encoder_layer_0.mlp.0', 'encoder.layers.encoder_layer_0.mlp.3']);
    assert.equal(index.lookup('layers', attrs)!.layers.length, 2, 'a container: every layer under it');
    assert.equal(index.lookup('conv1', attrs), undefined, 'resnet\'s conv1 is not in the ViT file\'s model');
    const resnetAttrs = assignedAttributes('        self.conv1 = nn.Conv2d(3, 64, 7)\n        self.layer1 = self._make_layer(block, 64, layers[0])\n        self.fc = nn.Linear(512, 10)\n');
    assert.deepEqual(index.lookup('conv1', resnetAttrs)!.layers.map((l) => l.name), ['conv1', 'layer1.0.conv1']);
    assert.equal(index.reportFor(['unrelated']), resnet, 'no names in common: the newest');
    index.forget(resnet);
    assert.equal(index.report, vit);
  });

  it('@vscode/webview-ui-toolkit is a dependency and only webview/ui/ imports it (one place to swap it for its successor)', () => {
    const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'));
    assert.ok(pkg.dependencies['@vscode/webview-ui-toolkit'], 'not a dependency');
    const files = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? files(path.join(dir, d.name)) : d.name.endsWith('.ts') ? [path.join(dir, d.name)] : []));
    const importers = [...files('webview'), ...files('src')].filter((f) => /from '@vscode\/webview-ui-toolkit/.test(fs.readFileSync(f, 'utf8')));
    assert.ok(importers.length >= 1, 'nothing imports the toolkit');
    assert.deepEqual(importers.filter((f) => !f.startsWith(path.join('webview', 'ui') + path.sep)), []);
  });

  it('a panel saved by the version with one panel per kind comes back as its model\'s panel', () => {
    const old = { data: { kind: 'prune', view: { input: '/w/m.onnx', output: '/w/m.p.onnx' } } };
    assert.deepEqual(upgradeResultsState(old), { model: '/w/m.onnx', sections: { prune: old.data.view } });
    const now = { model: '/w/m.onnx', sections: {}, tab: 'sweep' };
    assert.equal(upgradeResultsState(now), now);
    assert.equal(upgradeResultsState({ data: { kind: 'other', view: {} } }), undefined);
    assert.equal(upgradeResultsState(undefined), undefined);
  });

  it('accepts only well-formed messages from a results view', () => {
    assert.ok(isFromResultsView({ type: 'ready' }));
    assert.ok(isFromResultsView({ type: 'keepPoint', sparsity: 0.3 }));
    assert.ok(isFromResultsView({ type: 'tab', tab: 'sweep' }));
    assert.ok(isFromResultsView({ type: 'saveRecipe', rerun: true, rules: [{ module: 'vision_model.encoder.layers.0.mlp.fc1', policy: 'float' }] }));
    for (const bad of [null, 'ready', { type: 'run', command: 'rm -rf /' }, { type: 'keepPoint', sparsity: 2 }, { type: 'keepPoint', sparsity: '0.3' },
      { type: 'saveRecipe', rerun: false, rules: [{ module: 'a\nkeep: float', policy: 'float' }] }, { type: 'saveRecipe', rerun: false, rules: [{ module: 'a', policy: 'int2' }] },
      { type: 'openLayer', layer: 7 }, { type: 'tab', tab: 'settings' }]) {
      assert.equal(isFromResultsView(bad), false, JSON.stringify(bad));
    }
  });
});

// The panel bundle in a real browser page, without VS Code (its API falls back to localStorage).
describe('editor: the results page in Chromium', function () {
  this.timeout(60_000);
  let browser: Browser | undefined;
  const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
  before(async function () {
    if (!fs.existsSync(chromiumPath) || !fs.existsSync('dist/webview/results.js')) this.skip();
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--allow-file-access-from-files'] });
  });
  after(async () => browser?.close());

  async function open(state: ResultsState) {
    const dir = tmpDir();
    const page = path.join(dir, 'p.html');
    fs.writeFileSync(page, `<!DOCTYPE html><html><head><link rel="stylesheet" href="file://${path.resolve('media/panel.css')}"></head><body><main id="root"></main>
<script>localStorage.setItem('quantlens.results', ${JSON.stringify(JSON.stringify(state))});</script><script src="file://${path.resolve('dist/webview/results.js')}"></script></body></html>`);
    const p = await browser!.newPage();
    const sent: unknown[] = [];
    await p.exposeFunction('__sent', (m: unknown) => sent.push(m));
    await p.addInitScript(() => window.addEventListener('quantlens-outgoing', (e) => (window as unknown as { __sent: (m: unknown) => void }).__sent((e as CustomEvent).detail)));
    await p.goto(`file://${page}`);
    return { p, sent };
  }

  it('sensitivity tree: the worst layer is revealed, the filter narrows, the keyboard moves, a policy makes a recipe', async () => {
    const layers = [
      layer('vision_model.encoder.layers.0.self_attn.q_proj', 1e-4, 3), { ...layer('vision_model.encoder.layers.0.mlp.fc1', 1e-2, 1), window: [64, 160] as [number, number] },
      layer('language_model.model.layers.0.self_attn.q_proj', 1e-3, 2), layer('language_model.lm_head', 1e-6, 4),
    ];
    const { p, sent } = await open({ model: 'm.onnx', sections: { sensitivity: { report: 'r.json', model: 'm.onnx', method: 'local', scheme: 'static 8-bit, local', layers } } });
    const rows = () => p.locator('[role=treeitem] .name').allInnerTexts();
    assert.ok((await rows()).includes('fc1'), `the worst layer's path is open: ${await rows()}`);
    assert.match(await p.locator('.details').innerText(), /vision_model\.encoder\.layers\.0\.mlp\.fc1[\s\S]*rank 1 of 4[\s\S]*Measured on\s+a 64×160 window of its map/);
    await p.locator('vscode-text-field input').fill('lm_head');
    assert.deepEqual(await rows(), ['language_model', 'lm_head']);
    await p.locator('vscode-text-field input').fill('');
    await p.locator('[role=treeitem][data-path="vision_model.encoder.layers.0.mlp.fc1"]').click();
    await p.keyboard.press('ArrowUp');
    assert.equal(await p.locator('[role=treeitem][aria-selected=true]').getAttribute('data-path'), 'vision_model.encoder.layers.0.mlp');
    // Expand all / Collapse all are @vscode/webview-ui-toolkit buttons (webview/ui/): defined, themed, working.
    assert.equal(await p.evaluate(() => !!customElements.get('vscode-button')), true);
    await p.locator('vscode-button', { hasText: 'Collapse all' }).click();
    assert.deepEqual((await rows()).sort(), ['language_model', 'vision_model']);
    await p.locator('vscode-button', { hasText: 'Expand all' }).click();
    assert.ok((await rows()).includes('q_proj'), `expanded: ${await rows()}`);
    await p.locator('vscode-text-field input').fill('');
    assert.equal(await p.locator('#save-recipe').getAttribute('disabled'), '', 'Save recipe is disabled until a policy is chosen');
    await p.locator('select[aria-label="policy for vision_model.encoder.layers.0.mlp.fc1"]').selectOption('float');
    await p.locator('#rerun').click();
    assert.deepEqual(sent.filter((m) => (m as { type: string }).type === 'saveRecipe'), [{ type: 'saveRecipe', rerun: true, rules: [{ module: 'vision_model.encoder.layers.0.mlp.fc1', policy: 'float' }] }]);
    // Bars are coloured by how far below the most sensitive layer they sit, with a legend.
    assert.match(await p.locator('.legend').innerText(), /within 3 dB of the most sensitive/);
    assert.equal(await p.locator('[data-path="vision_model.encoder.layers.0.mlp.fc1"] .fill').getAttribute('class'), 'fill severe');
    assert.equal(await p.locator('[data-path="language_model.lm_head"] .fill').getAttribute('class'), 'fill mild');
    // A panel as narrow as one beside the code (360 px): every row's number and policy selector stay in view.
    await p.setViewportSize({ width: 360, height: 700 });
    for (const r of await p.locator('[role=treeitem]').all()) {
      const row = (await r.boundingBox())!;
      for (const part of [r.locator('.db'), r.locator('select')]) {
        if (!(await part.count())) continue;
        const b = (await part.boundingBox())!;
        assert.ok(b.x >= row.x - 1 && b.x + b.width <= row.x + row.width + 1 && b.x + b.width <= 360, `${await r.getAttribute('data-path')}: ${JSON.stringify(b)} outside ${JSON.stringify(row)}`);
      }
    }
    assert.equal(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'no horizontal overflow');
    await p.close();
  });

  it('quantize summary: the headline metric, the random-inputs banner and where time goes', async () => {
    const p = (ops: Array<[string, number]>) => ({ runs: 5, totalMs: ops.reduce((a, [, ms]) => a + ms, 0), byOpType: ops.map(([op, ms]) => ({ op, ms, nodes: 1 })) });
    const view = {
      input: 'm.onnx', output: 'm.static.onnx', mode: 'static 8-bit', device: 'cpu', sizeBefore: 4e6, sizeAfter: 1e6, latencyMs: { reference: 10, candidate: 12 },
      fidelity: { y: { cosine: 0.98, sqnr: 14, maxAbsError: 0.9, top1Agreement: 0.97, sequenceAgreement: 0.6, ctcAgreement: 0.875, headline: { metric: 'ctc' as const, value: 0.875 } } },
      fidelityData: 'random:8', quantized: 3, float16Weights: 38, skipped: [], warnings: ['fidelity measured on random:8: random inputs — not evidence of accuracy; pass --calibration DIR for real data', 'something else',
        // A warning naming a node: one long word that must wrap, not widen the page.
        "the quantized model ran slower than the original here; 3 QuantizeLinear/DequantizeLinear onnxruntime could not fuse took 1.00 ms, the slowest '/language_model/model/layers.0/mlp/act_fn/Sigmoid_output_0_DequantizeLinear'"],
      profile: { reference: p([['Conv', 8], ['Add', 2]]), candidate: { ...p([['Conv', 9], ['DequantizeLinear', 3], ['Add', 1]]), unfusedQdq: { count: 3, ms: 3, slowest: [{ node: '/backbone/stage3/block2/conv1/Conv_output_0_DequantizeLinear', op: 'DequantizeLinear', ms: 2 }, { node: 'b_DequantizeLinear/duplicated', op: 'DequantizeLinear', ms: 0.5 }] } } },
      placement: { chosen: 'residual', floatMs: 10, candidates: [
        { placement: 'compute', nodes: 5, latencyMs: 11, drop: 0, nsr: 0.001, faithful: true },
        { placement: 'residual', nodes: 9, latencyMs: 6, drop: 0, nsr: 0.0012, faithful: true },
        { placement: 'compute', boundaries: true, nodes: 11, latencyMs: 7, drop: 0, nsr: 0.0013, faithful: true },
        { placement: 'all', nodes: 12, latencyMs: 5.5, drop: 0.05, nsr: 0.01, faithful: false }] },
    };
    const tensor = { tensor: 'x', min: -1, max: 3, clip: [-1, 2.5] as [number, number], minmax: [-1, 3] as [number, number], clippedPercent: 0.01, histogram: { edges: [-1, 3] as [number, number], counts: [1, 4, 9, 4, 1] } };
    const calibrated = { ...view, calibration: { method: 'mse', source: '/data/calib', samples: 16, histogramValues: 16384, tensors: [tensor] } };
    const { p: page } = await open({ model: 'm.onnx', sections: { quantize: calibrated } });
    const text = await page.locator('#root').innerText();
    assert.match(text, /CTC text agreement 87\.5% \(worst\)/);
    assert.equal(await page.locator('.random-data').count(), 1);
    assert.equal((text.match(/not evidence of accuracy/g) ?? []).length, 1, 'the banner, not the warning again');
    assert.match(text, /something else/);
    assert.match(text, /Static placements timed beside float \(10\.00 ms\)/);
    assert.match(text, /Kept float for speed\s+38 layers, weights stored float16/);
    const placements = await page.locator('table.sortable').first().locator('tbody tr').allInnerTexts();
    assert.ok(placements.some((r) => /residual \(written\)\s+9\s+6\.00\s+0\.60×\s+kept/.test(r)), placements.join(' | '));
    assert.ok(placements.some((r) => /^all\s[\s\S]*lost/.test(r)), placements.join(' | '));
    assert.ok(placements.some((r) => /^compute \+ boundaries\s+11\s+7\.00\s+0\.70×\s+kept/.test(r)), placements.join(' | '));
    // Where time goes has its own tab, built when first shown.
    assert.deepEqual(await page.locator('vscode-panel-tab').allInnerTexts().then((t) => t.map((x) => x.trim())).then((t) => t.map((x) => x.replace(/\s*\d+$/, ''))), ['Summary', 'Calibration', 'Where time goes']);
    // Histograms binned from strided picks say so, beside the table.
    await page.locator('vscode-panel-tab#tab-calibration').click();
    assert.match(await page.locator('#view-calibration').innerText(), /Binned from about 16384 values per tensor per sample, with the tails and extremes exact/);
    await page.locator('vscode-panel-tab#tab-time').click();
    assert.match(await page.locator('#view-time').innerText(), /Where time goes \(kernel ms per run: float 10\.00, quantized 13\.00\)/);
    assert.match(await page.locator('#view-time table.sortable tbody tr').first().innerText(), /DequantizeLinear/);
    // The unfused Q/DQ by name, the slowest first.
    const unfused = page.locator('#view-time table.sortable').nth(1);
    assert.match(await unfused.locator('caption').innerText(), /Q\/DQ onnxruntime left unfused \(3, 3\.00 ms per run, the slowest 2\)/);
    assert.match(await unfused.locator('tbody tr').first().innerText(), /conv1\/Conv_output_0_DequantizeLinear\s+Dequantize\s+2\.000/);
    // At 360 px (a panel beside the code) the page never scrolls sideways: wide tables scroll inside themselves, long reasons wrap.
    await page.setViewportSize({ width: 360, height: 800 });
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'no horizontal overflow at 360 px');
    // The summary too, with a warning that names a node (one long word).
    await page.locator('vscode-panel-tab#tab-summary').click();
    assert.match(await page.locator('#root').innerText(), /Sigmoid_output_0_DequantizeLinear/);
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'no horizontal overflow at 360 px on the summary');
    await page.close();
  });

  it('quantize summary, weight mode: the weight formats timed beside float, which keep int8 in memory, and the one written', async () => {
    const view = {
      input: 'm.onnx', output: 'm.weight.onnx', mode: 'weight 8-bit', device: 'cpu', sizeBefore: 4e6, sizeAfter: 1e6, latencyMs: { reference: 10, candidate: 9.8 },
      fidelity: { y: { cosine: 0.9999, sqnr: 40, maxAbsError: 0.01, top1Agreement: 1, headline: { metric: 'cosine' as const, value: 0.9999 } } },
      fidelityData: 'random:4', quantized: 3, skipped: [], warnings: [],
      weightFormat: { chosen: 'expand', floatMs: 10, candidates: [
        { format: 'dequantize', int8InMemory: true, latencyMs: 13, nsr: 0.0001, faithful: true },
        { format: 'nbits', int8InMemory: true, latencyMs: 12.5, nsr: 0.0002, faithful: true },
        { format: 'expand', int8InMemory: false, latencyMs: 9.8, nsr: 0.0001, faithful: true }] },
    };
    const { p } = await open({ model: 'm.onnx', sections: { quantize: view } });
    assert.match(await p.locator('#root').innerText(), /Weight formats timed beside float \(10\.00 ms\)/);
    const rows = await p.locator('table.sortable').first().locator('tbody tr').allInnerTexts();
    assert.ok(rows.some((r) => /^expand \(written\)\s+float \(expanded at load\)\s+9\.80\s+0\.98×\s+kept/.test(r)), rows.join(' | '));
    assert.ok(rows.some((r) => /^dequantize\s+int8\s+13\.00\s+1\.30×/.test(r)), rows.join(' | '));
    await p.setViewportSize({ width: 360, height: 800 });
    assert.equal(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'no horizontal overflow at 360 px');
    await p.close();
  });

  it('quantize summary, dynamic mode: the convs timed as ConvInteger and as float beside float, and the one written', async () => {
    const view = {
      input: 'm.onnx', output: 'm.dynamic.onnx', mode: 'dynamic 8-bit', device: 'cpu', sizeBefore: 13e6, sizeAfter: 9.6e6, latencyMs: { reference: 5, candidate: 4.9 },
      fidelity: { y: { cosine: 0.9999, sqnr: 40, maxAbsError: 0.01, top1Agreement: 1, headline: { metric: 'top1' as const, value: 1 } } },
      fidelityData: 'random:4', quantized: 1, skipped: [{ node: '/features.0/Conv', reason: "kept float for speed: onnxruntime's ConvInteger ran slower than float's Conv on this CPU" }], warnings: [],
      dynamicConvs: { chosen: 'none', floatMs: 5, candidates: [
        { convs: 'all', nodes: 53, latencyMs: 22, nsr: 0.0003 },
        { convs: 'dense', nodes: 18, latencyMs: 10.2, nsr: 0.0002 },
        { convs: 'none', nodes: 1, latencyMs: 5.1, nsr: 0.00001 }] },
    };
    const { p } = await open({ model: 'm.onnx', sections: { quantize: view } });
    assert.match(await p.locator('#root').innerText(), /Dynamic convs timed beside float \(5\.00 ms\)/);
    const rows = await p.locator('table.sortable').first().locator('tbody tr').allInnerTexts();
    assert.ok(rows.some((r) => /^convs float \(written\)\s+1\s+5\.10\s+1\.02×/.test(r)), rows.join(' | '));
    assert.ok(rows.some((r) => /^every conv dynamic\s+53\s+22\.00\s+4\.40×/.test(r)), rows.join(' | '));
    await p.setViewportSize({ width: 360, height: 800 });
    assert.equal(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'no horizontal overflow at 360 px');
    await p.close();
  });

  it('sweep chart and heatmap draw from their data; a point can be kept from the keyboard', async () => {
    const point = (s: number) => ({ sparsity: s, sizeBytes: 1e6 * (1 - s), latencyMs: 1 - s / 2, cosine: 1 - s / 3, sqnr: 20 - s * 10, top1Agreement: 1 - s / 4, parameters: Math.round(1e5 * (1 - s)), model: `m-${s}.onnx`, achieved: s });
    const { p, sent } = await open({ model: 'm.onnx', sections: { sweep: { model: 'm.onnx', method: 'structured', points: [point(0.2), point(0.5)], done: true, fidelityData: 'random:4' } } });
    assert.equal(await p.locator('table.points tbody tr').count(), 2);
    assert.match(await p.locator('.random-data').innerText(), /random inputs — not evidence of accuracy/);
    assert.ok((await p.locator('.chart canvas').count()) >= 1);
    await p.locator('vscode-button', { hasText: 'Keep' }).nth(1).focus();
    await p.keyboard.press('Enter');
    assert.ok(sent.some((m) => JSON.stringify(m) === JSON.stringify({ type: 'keepPoint', sparsity: 0.5 })));
    await p.close();
    const maps = { 'a.fc1': { tile: [1, 1] as [number, number], rows: 4, cols: 4, density: [1, 0, 1, 0, 0.5, 0.5, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1], magnitude: Array(16).fill(0.1) } };
    const h = await open({ model: 'm.onnx', tab: 'pruning', sections: { prune: { input: 'm.onnx', output: 'p.onnx', method: 'magnitude', sparsity: 0.4, parametersBefore: 16, parametersAfter: 16, sizeBefore: 100, sizeAfter: 100, latencyMs: { reference: 1, candidate: 1 }, fidelity: {}, fidelityData: '/data/calib', maps, layers: [{ name: 'a.fc1', sparsity: 0.4, shapeBefore: [4, 4], shapeAfter: [4, 4] }], skipped: [] } } });
    const colours = await h.p.locator('.heatmap canvas.map').evaluate((c: HTMLCanvasElement) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      const seen = new Set<string>();
      for (let i = 0; i < d.length; i += 4 * 61) seen.add(`${d[i]},${d[i + 1]},${d[i + 2]},${d[i + 3]}`);
      return seen.size;
    });
    assert.ok(colours >= 3, `${colours} colours drawn`);
    assert.equal(await h.p.locator('.random-data').count(), 0, 'real data: no random-inputs banner');
    await h.p.close();
  });
});
