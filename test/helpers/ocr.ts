import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { renderTextLines } from './text-images';

/** PaddleOCR's recogniser input: a text line 48 px tall, up to 320 wide (rec_image_shape 3,48,320). */
export const REC_H = 48;
export const REC_W = 320;

/**
 * Distinct, deterministic text lines of the kinds OCR reads (invoices, addresses, codes, prose), Latin
 * script only: the machines running the tests have no CJK fonts. Same seed, same lines.
 */
export function textLines(n: number, seed = 1): string[] {
  const words = ['Invoice', 'Total', 'Order', 'Ship to', 'Berlin', 'Model', 'Batch', 'Page', 'Serial', 'Station', 'Road',
    'Deep learning', 'Neural network', 'Quantize', 'Dataset', 'Recognition', 'Output', 'Sample', 'Paris', 'Lisbon', 'Tokyo',
    'Market Street', 'Delivery', 'Customer', 'Account', 'Balance', 'Due date', 'Room', 'Floor', 'Gate', 'Flight', 'Ticket',
    'Receipt', 'Amount', 'Weight', 'Height', 'Version', 'Release', 'Build', 'Report', 'Summary', 'Office', 'Phone', 'Email'];
  let s = seed >>> 0 || 1;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)];
  const num = (digits: number) => Array.from({ length: digits }, () => Math.floor(rnd() * 10)).join('');
  const shapes = [
    () => `${pick(words)} ${num(3)}`,
    () => `${pick(words)}: ${num(2)}.${num(2)}`,
    () => `${pick(words)} ${pick(words).toLowerCase()}`,
    () => `No. ${num(4)}-${num(2)}`,
    () => `${num(4)}-${num(2)}-${num(2)}`,
    () => `${pick(words)} ${num(1)} of ${num(2)}`,
    () => `${pick(words).toUpperCase()} ${num(2)}`,
    () => `Tel ${num(3)}-${num(4)}`,
  ];
  const out = new Set<string>();
  while (out.size < n) out.add(pick(shapes)());
  return [...out];
}

/** Renders lines into the recogniser's input (upright, [3, 48, 320] each, BGR, (x/255 − 0.5)/0.5). */
export function renderRecLines(lines: string[]): Promise<Float32Array[]> {
  return renderTextLines(lines, REC_H, REC_W, () => false);
}

/** The recogniser's alphabet: CTC blank, the dictionary's characters, then the space (use_space_char). */
export function recAlphabet(dictPath: string): string[] {
  const keys = fs.readFileSync(dictPath, 'utf8').split('\n').filter((l, i, a) => l.length > 0 || i < a.length - 1).map((l) => l.replace(/\r$/, ''));
  return ['', ...keys, ' '];
}

/** CTC greedy decoding of one [T, C] row of probabilities: argmax per step, repeats merged, blanks dropped. */
export function ctcDecode(probs: ArrayLike<number>, steps: number, classes: number, alphabet: string[]): string {
  let text = '', prev = -1;
  for (let t = 0; t < steps; t++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probs[t * classes + c] > probs[t * classes + best]) best = c;
    if (best !== prev && best !== 0) text += alphabet[best] ?? '';
    prev = best;
  }
  return text;
}

/** Writes images as ONNX test-data folders (test_data_set_N/input_0.pb), each [1, ...dims]. */
export function writeTestDataSets(dir: string, images: Float32Array[], dims: number[], input = 'x'): string {
  images.forEach((t, i) => {
    const d = path.join(dir, `test_data_set_${i}`);
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'input_0.pb'), onnx.TensorProto.encode(makeTensor(input, 1, [1, ...dims], t)).finish());
  });
  return dir;
}

/** Reads every line with a recogniser model; returns the decoded texts. */
export async function readLines(model: string, images: Float32Array[], alphabet: string[]): Promise<string[]> {
  const s = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 2 });
  try {
    const out: string[] = [];
    for (const img of images) {
      const r = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', img, [1, 3, REC_H, REC_W]) });
      const y = r[s.outputNames[0]];
      out.push(ctcDecode(y.data as Float32Array, Number(y.dims[1]), Number(y.dims[2]), alphabet));
    }
    return out;
  } finally {
    await s.release();
  }
}

export const exactMatches = (read: string[], truth: string[]) => read.filter((t, i) => t === truth[i]).length;

/** The recogniser's real-data set: 64 calibration lines (and their first 16) and 48 other lines judged, written as test-data folders. */
export interface RecEvaluation {
  dir: string;
  calib16: string;
  calib64: string;
  evalSet: string;
  evalImages: Float32Array[];
  truth: string[];
  alphabet: string[];
  /** Exact lines a model reads of the 48. */
  score(model: string): Promise<number>;
}

/**
 * Renders 112 lines (seeded) and splits them: every 7th-line pattern (0, 3, 5 mod 7) and the rest past 48
 * calibrate, the other 48 are judged, so the two sets never share a line. Files go under `dir`.
 */
export async function recEvaluation(dir: string, dictPath: string): Promise<RecEvaluation> {
  const alphabet = recAlphabet(dictPath);
  const lines = textLines(48 + 64, 11);
  const images = await renderRecLines(lines);
  const evalIdx = lines.map((_, i) => i).filter((i) => i % 7 !== 0 && i % 7 !== 3 && i % 7 !== 5).slice(0, 48);
  const calibIdx = lines.map((_, i) => i).filter((i) => !evalIdx.includes(i));
  const dims = [3, REC_H, REC_W];
  const evalImages = evalIdx.map((i) => images[i]);
  const truth = evalIdx.map((i) => lines[i]);
  return {
    dir, alphabet, evalImages, truth,
    calib64: writeTestDataSets(path.join(dir, 'calib64'), calibIdx.map((i) => images[i]), dims),
    calib16: writeTestDataSets(path.join(dir, 'calib16'), calibIdx.slice(0, 16).map((i) => images[i]), dims),
    evalSet: writeTestDataSets(path.join(dir, 'eval'), evalImages, dims),
    score: async (model) => exactMatches(await readLines(model, evalImages, alphabet), truth),
  };
}

/** PaddleOCR's detector input for rendered pages: BGR, (x/255 − mean)/std with ImageNet's mean/std, CHW. */
export const DET_H = 320;
export const DET_W = 640;

/** Renders pages of a few text lines each (seeded layout) as the detector's input, [3, 320, 640]. */
export async function renderDetPages(pages: string[][]): Promise<Float32Array[]> {
  const { chromium } = await import('playwright-core');
  const { PNG } = await import('pngjs');
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  try {
    const page = await browser.newPage({ viewport: { width: DET_W, height: DET_H }, deviceScaleFactor: 1 });
    const out: Float32Array[] = [];
    for (const [k, lines] of pages.entries()) {
      const spans = lines.map((l, i) => `<div style="position:absolute;left:${20 + ((k * 53 + i * 97) % 240)}px;top:${16 + i * 72 + ((k * 13) % 20)}px;font:${22 + ((k + i) % 4) * 5}px ${i % 2 ? 'serif' : 'sans-serif'};color:rgb(${30 + i * 10},30,40)">${l}</div>`).join('');
      await page.setContent(`<body style="margin:0;width:${DET_W}px;height:${DET_H}px;background:rgb(${236 - k % 3 * 6},236,228);position:relative">${spans}</body>`);
      const png = PNG.sync.read(await page.screenshot({ clip: { x: 0, y: 0, width: DET_W, height: DET_H } }));
      const t = new Float32Array(3 * DET_H * DET_W);
      for (let y = 0; y < DET_H; y++) {
        for (let x = 0; x < DET_W; x++) {
          for (let c = 0; c < 3; c++) t[(c * DET_H + y) * DET_W + x] = (png.data[(y * DET_W + x) * 4 + (2 - c)] / 255 - mean[c]) / std[c];
        }
      }
      out.push(t);
    }
    return out;
  } finally {
    await browser.close();
  }
}
