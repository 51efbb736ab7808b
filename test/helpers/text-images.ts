import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';

/**
 * Renders text lines with headless Chromium into the crops PaddleOCR's direction classifier is fed:
 * the text line cut out tightly, scaled to the model's height keeping its aspect ratio, placed at the
 * left and padded with zeros on the right (PaddleOCR's resize_norm_img), normalised as
 * (x/255 − 0.5) / 0.5, CHW float32. By default odd-numbered lines are upside down (what the direction
 * classifier must spot); the recogniser's lines are all upright.
 */
export async function renderTextLines(lines: string[], height = 48, width = 192, upsideDown = (i: number) => i % 2 === 1): Promise<Float32Array[]> {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 200 }, deviceScaleFactor: 1 });
    const out: Float32Array[] = [];
    for (let i = 0; i < lines.length; i++) {
      const flip = upsideDown(i) ? 'transform: rotate(180deg);' : '';
      const shade = 20 + ((i * 37) % 60);
      const size = 22 + (i % 4) * 4;
      await page.setContent(`<body style="margin:0"><span id="t" style="display:inline-block;padding:4px 6px;background:rgb(${235 - shade / 2},${240 - shade / 3},230);font:${size}px sans-serif;color:rgb(${shade},${shade},${shade + 10});${flip}">${lines[i]}</span></body>`);
      const box = await page.locator('#t').boundingBox();
      if (!box) throw new Error(`could not lay out '${lines[i]}'`);
      // Scale so the crop is exactly `height` pixels tall; clip its width to the model's width.
      const scale = height / box.height;
      const w = Math.min(width, Math.max(1, Math.round(box.width * scale)));
      await page.setViewportSize({ width: 1200, height: 200 });
      await page.evaluate(`document.getElementById('t').style.zoom = '${scale}'`);
      const png = PNG.sync.read(await page.screenshot({ clip: { x: 0, y: 0, width: w, height } }));
      const t = new Float32Array(3 * height * width); // zeros: PaddleOCR's padding after normalisation
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < w; x++) {
          // PaddleOCR reads images with OpenCV: channels in BGR order.
          for (let c = 0; c < 3; c++) t[(c * height + y) * width + x] = (png.data[(y * png.width + x) * 4 + (2 - c)] / 255 - 0.5) / 0.5;
        }
      }
      out.push(t);
    }
    return out;
  } finally {
    await browser.close();
  }
}

// Latin text only: the machines running the tests have no CJK fonts, and boxes of missing glyphs look
// the same either way up, which no direction classifier can judge.
export const SAMPLE_LINES = [
  'Invoice 2024-0193', 'Total 1,280.00 EUR', 'QuantLens', 'Hello, world', 'Beijing Haidian', 'Tel 010-6275 1234', 'ONNX Runtime', 'Invoice no. 0042',
  'Total: $73.25', 'Text direction', 'Model v2.1', 'Deep learning', 'Batch 17 of 64', 'Shanghai Pudong', 'Order #88412', 'Quantize and prune',
  'Ship to: Berlin', 'Artificial intelligence', 'Page 3 / 12', 'Welcome', 'SKU A-1192-X', 'Temperature 23.5 C', 'Due 2025-01-31', 'Model compression',
  'Serial 7F3C-99A', 'Recognition', 'Qty 12 x 4.50', 'Dataset', 'Station 42', 'Neural network', 'Road 66', 'Calibration data',
  'Alpha Beta Gamma', 'Convolution', 'May 14, 2026', 'Attention heads', 'Ref: KX-2291', 'Output tensor', 'Node 9 ready', 'Test sample',
];
