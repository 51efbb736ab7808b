import fs from 'node:fs';
import jpeg from 'jpeg-js';
import * as ort from 'onnxruntime-node';
import { PNG } from 'pngjs';
import { QuantLensError } from '../base/errors';
import { floatToHalf } from '../onnx/half';
import { IMAGENET, type ImageOptions } from './image-options';

/**
 * Decodes a PNG (pngjs) or JPEG (jpeg-js), resizes it bilinearly to the input's spatial size,
 * normalises it and lays it out as the model expects: `type` is the input's element type (uint8 inputs
 * take the raw pixels, as exports with their preprocessing inside do; float16 ones the normalised
 * values in half precision). `bytes`: the file's, where the caller has read them already.
 */
export function decodeImage(file: string, shape: Array<number | string | null>, opts: ImageOptions = {}, type: 'float32' | 'float16' | 'uint8' = 'float32', bytes?: Buffer): ort.Tensor {
  const layout = opts.layout ?? (shape[3] === 3 || shape[3] === 1 ? 'nhwc' : 'nchw');
  const [c, h, w] = layout === 'nchw' ? [shape[1], shape[2], shape[3]] : [shape[3], shape[1], shape[2]];
  if (typeof h !== 'number' || typeof w !== 'number' || !(h > 0 && w > 0)) throw new QuantLensError(file, `the model's image input has no fixed height/width ([${shape}]): give one with --input-shape NAME=1x3xHxW`);
  const channels = typeof c === 'number' && c > 0 ? c : 3;
  let img: { width: number; height: number; data: Uint8Array };
  try {
    const data = bytes ?? fs.readFileSync(file);
    img = /\.png$/i.test(file) ? PNG.sync.read(data) : jpeg.decode(data, { useTArray: true, formatAsRGBA: true });
  } catch (e) {
    throw new QuantLensError(file, `cannot decode image: ${e instanceof Error ? e.message : e}`);
  }
  const raw = type === 'uint8';
  const mean = raw ? [0, 0, 0] : opts.mean ?? IMAGENET.mean;
  const std = raw ? [1, 1, 1] : opts.std ?? IMAGENET.std;
  const scale = raw ? 1 : opts.scale ?? 1 / 255;
  const bgr = opts.channels === 'bgr';
  const out = new Float32Array(channels * h * w);
  // The part of the image that lands on the input: all of it (stretched), or a centred box of the input's
  // aspect ratio whose shorter side is `crop` of the image's.
  const k = opts.crop === undefined ? 0 : Math.min(img.height, img.width) * opts.crop / Math.min(h, w);
  const [boxH, boxW] = opts.crop === undefined ? [img.height, img.width] : [h * k, w * k];
  const [top, left] = [(img.height - boxH) / 2, (img.width - boxW) / 2];
  for (let y = 0; y < h; y++) {
    const sy = Math.max(0, Math.min(img.height - 1, top + ((y + 0.5) * boxH) / h - 0.5));
    const y0 = Math.floor(sy), y1 = Math.min(img.height - 1, y0 + 1), fy = sy - y0;
    for (let x = 0; x < w; x++) {
      const sx = Math.max(0, Math.min(img.width - 1, left + ((x + 0.5) * boxW) / w - 0.5));
      const x0 = Math.floor(sx), x1 = Math.min(img.width - 1, x0 + 1), fx = sx - x0;
      for (let ch = 0; ch < channels; ch++) {
        const src = channels === 1 ? 0 : bgr && ch < 3 ? 2 - ch : ch;
        const px = (yy: number, xx: number) => img.data[(yy * img.width + xx) * 4 + src];
        const v = (px(y0, x0) * (1 - fx) + px(y0, x1) * fx) * (1 - fy) + (px(y1, x0) * (1 - fx) + px(y1, x1) * fx) * fy;
        const norm = (v * scale - mean[ch % 3]) / std[ch % 3];
        out[layout === 'nchw' ? (ch * h + y) * w + x : (y * w + x) * channels + ch] = norm;
      }
    }
  }
  const dims = layout === 'nchw' ? [1, channels, h, w] : [1, h, w, channels];
  if (type === 'uint8') return new ort.Tensor('uint8', Uint8Array.from(out, (v) => Math.max(0, Math.min(255, Math.round(v)))), dims);
  if (type === 'float16') return new ort.Tensor('float16', Uint16Array.from(out, floatToHalf), dims);
  return new ort.Tensor('float32', out, dims);
}
