// End-to-end steps in the real workbench (headless Chromium): what a user clicks and reads.
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
};
