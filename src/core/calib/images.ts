import fs from 'node:fs';
import jpeg from 'jpeg-js';
import * as ort from 'onnxruntime-node';
import { PNG } from 'pngjs';
import { QuantLensError } from '../base/errors';

export interface ImageOptions {
  /** Per-channel mean and std applied after scaling pixels to [0, 1] (default ImageNet's). */
  mean?: [number, number, number];
  std?: [number, number, number];
  /** 'nchw' (default, PyTorch) or 'nhwc'. */
  layout?: 'nchw' | 'nhwc';
}

/**
 * Decodes a PNG (pngjs) or JPEG (jpeg-js), resizes it bilinearly to the input's spatial size,
 * normalises it and lays it out as the model expects.
 */
export function decodeImage(file: string, shape: Array<number | string | null>, opts: ImageOptions = {}): ort.Tensor {
  const layout = opts.layout ?? (shape[3] === 3 || shape[3] === 1 ? 'nhwc' : 'nchw');
  const [c, h, w] = layout === 'nchw' ? [shape[1], shape[2], shape[3]] : [shape[3], shape[1], shape[2]];
  if (typeof h !== 'number' || typeof w !== 'number' || !(h > 0 && w > 0)) throw new QuantLensError(file, `the model's image input has no fixed height/width ([${shape}]): give one with --input-shape NAME=1x3xHxW`);
  const channels = typeof c === 'number' && c > 0 ? c : 3;
  let img: { width: number; height: number; data: Uint8Array };
  try {
    const bytes = fs.readFileSync(file);
    img = /\.png$/i.test(file) ? PNG.sync.read(bytes) : jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
  } catch (e) {
    throw new QuantLensError(file, `cannot decode image: ${e instanceof Error ? e.message : e}`);
  }
  const mean = opts.mean ?? [0.485, 0.456, 0.406];
  const std = opts.std ?? [0.229, 0.224, 0.225];
  const out = new Float32Array(channels * h * w);
  for (let y = 0; y < h; y++) {
    const sy = Math.max(0, Math.min(img.height - 1, ((y + 0.5) * img.height) / h - 0.5));
    const y0 = Math.floor(sy), y1 = Math.min(img.height - 1, y0 + 1), fy = sy - y0;
    for (let x = 0; x < w; x++) {
      const sx = Math.max(0, Math.min(img.width - 1, ((x + 0.5) * img.width) / w - 0.5));
      const x0 = Math.floor(sx), x1 = Math.min(img.width - 1, x0 + 1), fx = sx - x0;
      for (let ch = 0; ch < channels; ch++) {
        const src = channels === 1 ? 0 : ch;
        const px = (yy: number, xx: number) => img.data[(yy * img.width + xx) * 4 + src];
        const v = (px(y0, x0) * (1 - fx) + px(y0, x1) * fx) * (1 - fy) + (px(y1, x0) * (1 - fx) + px(y1, x1) * fx) * fy;
        const norm = (v / 255 - mean[ch % 3]) / std[ch % 3];
        out[layout === 'nchw' ? (ch * h + y) * w + x : (y * w + x) * channels + ch] = norm;
      }
    }
  }
  return new ort.Tensor('float32', out, layout === 'nchw' ? [1, channels, h, w] : [1, h, w, channels]);
}
