import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';

/**
 * Renders text lines with headless Chromium into height×width RGB crops, the kind of input an OCR
 * text-line model sees, normalised as PaddleOCR does ((x/255 − 0.5) / 0.5), CHW float32.
 * Half of the lines are upside down (what a direction classifier must spot).
 */
export async function renderTextLines(lines: string[], height = 48, width = 192): Promise<Float32Array[]> {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width, height }, deviceScaleFactor: 1 });
    const out: Float32Array[] = [];
    for (let i = 0; i < lines.length; i++) {
      const flip = i % 2 === 1 ? 'transform: rotate(180deg);' : '';
      const shade = 20 + ((i * 37) % 60);
      await page.setContent(`<body style="margin:0;background:rgb(${235 - shade / 2},${240 - shade / 3},${230});"><div style="width:${width}px;height:${height}px;display:flex;align-items:center;justify-content:center;font:${24 + (i % 4) * 3}px sans-serif;color:rgb(${shade},${shade},${shade + 10});${flip}">${lines[i]}</div></body>`);
      const png = PNG.sync.read(await page.screenshot({ clip: { x: 0, y: 0, width, height } }));
      const t = new Float32Array(3 * height * width);
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          for (let c = 0; c < 3; c++) t[(c * height + y) * width + x] = (png.data[(y * png.width + x) * 4 + c] / 255 - 0.5) / 0.5;
        }
      }
      out.push(t);
    }
    return out;
  } finally {
    await browser.close();
  }
}

export const SAMPLE_LINES = [
  'Invoice 2024-0193', '总计 ¥ 1,280.00', 'QuantLens', 'Hello, world', '北京市海淀区', 'Tel 010-6275 1234', 'ONNX Runtime', '发票号码 0042',
  'Total: $73.25', '识别文字方向', 'Model v2.1', '深度学习', 'Batch 17 of 64', '上海 浦东新区', 'Order #88412', '量化与剪枝',
  'Ship to: Berlin', '人工智能', 'Page 3 / 12', '欢迎使用', 'SKU A-1192-X', '温度 23.5℃', 'Due 2025-01-31', '模型压缩',
  'Serial 7F3C-99A', '中文识别', 'Qty 12 x 4.50', '数据集', 'Station 42', '神经网络', 'Road 66', '校准数据',
  'Alpha Beta Gamma', '卷积层', 'May 14, 2026', '注意力机制', 'Ref: KX-2291', '输出结果', 'Node 9 ready', '测试样本',
];
