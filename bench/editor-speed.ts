// The editor's hot paths: the sensitivity tree rendering a 10k-layer report in Chromium (the real panel
// bundle), and the hover's index lookup + markdown on that report. Goals: ≤ 500 ms and ≤ 20 ms.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { hoverMarkdown, SensitivityIndex } from '../src/extension/sensitivity-index';
import type { ResultsState } from '../src/protocol/results-view';
import { median, row } from './report';

/** A report shaped like a large LLM's: 10,000 layers over 1,250 blocks of 8 linear layers. */
function bigReport(n = 10_000) {
  const names = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj', 'lm_head'];
  const layers = Array.from({ length: n }, (_, i) => {
    const s = Math.exp(-8 + 6 * Math.abs(Math.sin(i * 12.9898)));
    return { name: `language_model.model.layers.${Math.floor(i / 8)}.${i % 8 < 4 ? 'self_attn' : 'mlp'}.${names[i % 8]}`, opType: 'MatMul', nodes: [`n${i}`], parameters: 4096 * 4096, sensitivity: s, sensitivityDb: 10 * Math.log10(s), rank: 0 };
  });
  [...layers].sort((a, b) => b.sensitivity - a.sensitivity).forEach((l, k) => (l.rank = k + 1));
  return { model: 'big.onnx', method: 'local', scheme: { mode: 'static', bits: 8 }, layers };
}

(async () => {
  const report = bigReport();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-bench-'));
  try {
    const file = path.join(dir, 'big.onnx.sensitivity.json');
    fs.writeFileSync(file, JSON.stringify(report));
    // Hover: index build once, then lookups (what each hover costs).
    const index = new SensitivityIndex();
    let t = performance.now();
    index.offer(file);
    const build = performance.now() - t;
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      t = performance.now();
      hoverMarkdown(index.lookup(['q_proj', 'down_proj', 'lm_head'][i % 3])!);
      times.push(performance.now() - t);
    }
    row('hover: index lookup + markdown (10k layers)', `${median(times).toFixed(3)} ms median (index built once in ${build.toFixed(0)} ms; goal ≤ 20 ms)`);

    // Tree: the panel bundle in Chromium, state as the webview restores it.
    const state: ResultsState = { model: 'big.onnx', tab: 'sensitivity', sections: { sensitivity: { report: file, model: 'big.onnx', method: 'local', scheme: 'static 8-bit, local', layers: report.layers } } };
    const page = path.join(dir, 'tree.html');
    const bundle = path.resolve('dist/webview/results.js');
    fs.writeFileSync(page, `<!DOCTYPE html><html><head><link rel="stylesheet" href="file://${path.resolve('media/panel.css')}"></head><body><main id="root"></main>
<script>localStorage.setItem('quantlens.results', ${JSON.stringify(JSON.stringify(state))}); window.__t0 = performance.now();</script>
<script src="file://${bundle}"></script><script>window.__t1 = performance.now(); window.__rows = document.querySelectorAll('[role=treeitem]').length;</script></body></html>`);
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--allow-file-access-from-files'] });
    try {
      const runs: number[] = [], all: number[] = [];
      let rows = 0;
      for (let i = 0; i < 5; i++) {
        const p = await browser.newPage();
        await p.goto(`file://${page}`);
        const r = await p.evaluate(() => {
          const w = window as unknown as { __t1: number; __t0: number; __rows: number };
          const m = (n: string) => performance.getEntriesByName(n)[0].startTime;
          return { ms: m('quantlens-render-end') - m('quantlens-render-start'), all: w.__t1 - w.__t0, rows: w.__rows };
        });
        runs.push(r.ms);
        all.push(r.all);
        rows = r.rows;
        await p.close();
      }
      row('sensitivity tree: render of a 10k-layer report', `${median(runs).toFixed(0)} ms median of 5 (${rows} rows in view, virtualised; goal ≤ 500 ms)`);
      row('  the same with loading the page script and state', `${median(all).toFixed(0)} ms`);
    } finally {
      await browser.close();
    }
  } finally {
    if (process.env.QUANTLENS_BENCH_KEEP) console.log(`kept ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
})();
