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
    // A focused webview keeps F1 to itself: give the focus back to the workbench (the sidebar's title) first.
    await page.locator('.part.sidebar .composite.title').first().click().catch(() => {});
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

  async 'Quantize model from the explorer: static INT8 → the results and the sensitivity tree render with real rows'(page) {
    await openContextMenu(page, 'tiny-vlm.onnx');
    await clickMenuItem(page, 'Quantize model');
    await answer(page, 'Static INT8', { wait: 90_000 });
    await answer(page, 'Random data');
    const body = webviewBody(page);
    await body.locator('[role=treeitem]').first().waitFor({ timeout: 180_000 });
    const rows = await body.locator('[role=treeitem]').allInnerTexts();
    if (rows.length < 4) throw new Error(`only ${rows.length} tree rows`);
    const text = rows.join('\n');
    for (const want of ['vision_model', 'language_model', 'dB']) if (!text.includes(want)) throw new Error(`tree lacks '${want}':\n${text.slice(0, 400)}`);
    // The most sensitive path is open down to a layer, which carries a policy select.
    if ((await body.locator('select.policy').count()) < 1) throw new Error('no layer row with a policy select');
    await shot(page, 'quantize-sensitivity-tree.png');
    // The results panel, in the same column: size, fidelity and the calibration table.
    await page.locator('.tab', { hasText: 'QuantLens: Quantization' }).first().click();
    const results = webviewBody(page);
    await results.getByText('Calibration results').waitFor({ timeout: 30_000 });
    const r = await results.innerText();
    for (const want of ['Size', 'cosine', 'Latency', 'clipped']) if (!r.includes(want)) throw new Error(`results lack '${want}':\n${r.slice(0, 400)}`);
    await shot(page, 'quantize-results.png');
  },

  async 'Run pruning sweep from the palette: the chart shows its points'(page) {
    await palette(page, 'QuantLens: Run pruning sweep');
    await answer(page, 'tiny-vlm.onnx');
    await answer(page, 'structured');
    await answer(page, '0.2,0.5');
    await answer(page, 'No calibration data');
    const body = webviewBody(page);
    await body.getByText('2 points.').first().waitFor({ timeout: 180_000 });
    const n = await body.locator('table.points tbody tr').count();
    if (n !== 2) throw new Error(`${n} rows in the points table`);
    if ((await body.locator('.chart canvas').count()) < 1) throw new Error('no chart canvas');
    await shot(page, 'sweep-chart.png');
  },

  async 'Prune model: the heatmap canvas is drawn'(page) {
    await palette(page, 'QuantLens: Prune model');
    await answer(page, 'tiny-vlm.onnx');
    await answer(page, 'magnitude');
    await answer(page, '0.5');
    const body = webviewBody(page);
    const canvas = body.locator('.heatmap canvas');
    await canvas.waitFor({ timeout: 120_000 });
    const painted = await canvas.evaluate((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const seen = new Set();
      for (let i = 0; i < d.length; i += 4 * 97) seen.add(`${d[i]},${d[i + 1]},${d[i + 2]}`);
      return seen.size;
    });
    if (painted < 3) throw new Error(`the heatmap has ${painted} colours: not drawn`);
    await shot(page, 'pruning-heatmap.png');
  },
};
