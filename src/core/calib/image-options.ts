// How calibration images are prepared (no onnxruntime here: the extension host describes it too).
import fs from 'node:fs';
import path from 'node:path';
import { QuantLensError } from '../base/errors';
import { readJsonFile } from '../fs/json';

export interface ImageOptions {
  /** Per-channel mean and std applied after scaling pixels (default ImageNet's). */
  mean?: [number, number, number];
  std?: [number, number, number];
  /** What a pixel value (0–255) is multiplied by before mean/std (default 1/255). */
  scale?: number;
  /** Channel order the model reads (default RGB; Paddle and OpenCV-trained models read BGR). */
  channels?: 'rgb' | 'bgr';
  /** 'nchw' (default, PyTorch) or 'nhwc'. */
  layout?: 'nchw' | 'nhwc';
  /**
   * Keep the aspect ratio and centre-crop, as Hugging Face's image processors and torchvision's
   * Resize + CenterCrop do: the share of the scaled shorter side the crop keeps (1: the shorter side
   * becomes the input's; 0.875: Resize(256) + CenterCrop(224)). Absent: stretched to the input's size.
   */
  crop?: number;
}

/** torchvision's ImageNet normalisation, the default when nothing says otherwise. */
export const IMAGENET = { mean: [0.485, 0.456, 0.406] as [number, number, number], std: [0.229, 0.224, 0.225] as [number, number, number] };

/** Files in an image folder that say how its images are prepared: QuantLens' own, then Hugging Face's image processor config. */
export const PREPROCESS_FILES = ['preprocess.json', 'preprocessor_config.json'] as const;

const triple = (v: unknown): [number, number, number] | undefined => {
  const a = Array.isArray(v) ? v.map(Number) : typeof v === 'number' ? [v, v, v] : undefined;
  return a && a.length === 3 && a.every(Number.isFinite) ? [a[0], a[1], a[2]] : undefined;
};

/**
 * How a folder's images are prepared, from its preprocess.json ({"mean", "std", "scale", "channels":
 * "bgr", "layout"}) or a Hugging Face preprocessor_config.json (image_mean, image_std, do_rescale /
 * rescale_factor, do_normalize); ImageNet's mean/std on RGB when it has neither. A file that cannot be
 * read is an error naming it: calibrating on wrongly prepared images would silently mislead.
 */
export function folderImageOptions(dir: string): { options: ImageOptions; from?: string } {
  for (const name of PREPROCESS_FILES) {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) continue;
    const j = (readJsonFile(file) ?? {}) as Record<string, unknown>;
    const bad = (what: string) => new QuantLensError(file, what);
    if (name === 'preprocess.json') {
      const o: ImageOptions = {};
      if (j.mean !== undefined) o.mean = triple(j.mean) ?? (() => { throw bad('"mean" must be three numbers (or one)'); })();
      if (j.std !== undefined) o.std = triple(j.std) ?? (() => { throw bad('"std" must be three numbers (or one)'); })();
      if (o.std?.some((x) => x === 0)) throw bad('"std" must not be 0');
      if (j.scale !== undefined) { o.scale = Number(j.scale); if (!(o.scale > 0)) throw bad('"scale" must be a positive number'); }
      if (j.channels !== undefined) { if (j.channels !== 'rgb' && j.channels !== 'bgr') throw bad('"channels" must be "rgb" or "bgr"'); o.channels = j.channels; }
      if (j.layout !== undefined) { if (j.layout !== 'nchw' && j.layout !== 'nhwc') throw bad('"layout" must be "nchw" or "nhwc"'); o.layout = j.layout; }
      if (j.crop !== undefined) { o.crop = Number(j.crop); if (!(o.crop > 0 && o.crop <= 1)) throw bad('"crop" must be a share of the shorter side, in (0, 1]'); }
      return { options: o, from: file };
    }
    // Hugging Face: rescale (default 1/255) then normalise (default on) with image_mean/image_std.
    const normalize = j.do_normalize !== false;
    const mean = normalize ? triple(j.image_mean) : [0, 0, 0] as [number, number, number];
    const std = normalize ? triple(j.image_std) : [1, 1, 1] as [number, number, number];
    if (!mean || !std) continue; // not an image processor's config (a tokenizer's, say)
    const scale = j.do_rescale === false ? 1 : Number(j.rescale_factor ?? 1 / 255);
    if (!(scale > 0)) throw bad('"rescale_factor" must be a positive number');
    // A shortest-edge resize (CLIP, LLaVA, ConvNeXt) keeps the aspect ratio, then the centre crop cuts
    // crop_size out of it; a height/width size stretches.
    const size = (j.size ?? {}) as Record<string, unknown>;
    const side = Number(size.shortest_edge ?? (typeof j.size === 'number' ? j.size : NaN));
    const cropSize = (j.crop_size ?? {}) as Record<string, unknown>;
    const cropSide = Math.min(Number(cropSize.height ?? (typeof j.crop_size === 'number' ? j.crop_size : NaN)), Number(cropSize.width ?? (typeof j.crop_size === 'number' ? j.crop_size : NaN)));
    const crop = j.do_resize === false || !(side > 0) ? undefined : j.do_center_crop !== false && cropSide > 0 ? Math.min(1, cropSide / side) : 1;
    return { options: { mean, std, scale, ...(crop !== undefined ? { crop } : {}) }, from: file };
  }
  return { options: {} };
}

/** One line on how images are prepared, for reports. */
export function describeImageOptions(o: ImageOptions, from?: string): string {
  const mean = o.mean ?? IMAGENET.mean, std = o.std ?? IMAGENET.std, scale = o.scale ?? 1 / 255;
  const f = (v: number[]) => `[${v.map((x) => Number(x.toPrecision(4))).join(', ')}]`;
  const named = !o.mean && !o.std ? 'ImageNet mean/std' : `mean ${f(mean)}, std ${f(std)}`;
  const crop = o.crop === undefined ? '' : `, centre crop${o.crop < 1 ? ` of ${Number((o.crop * 100).toPrecision(3))}%` : ''}`;
  return `${named}${scale === 1 / 255 ? '' : `, pixels × ${Number(scale.toPrecision(4))}`}, ${(o.channels ?? 'rgb').toUpperCase()}${crop}${from ? ` (from ${path.basename(from)})` : ' (preprocess.json in the folder changes it)'}`;
}
