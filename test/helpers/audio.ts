import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

/** Debian's alsa-utils: a voice recorded saying each speaker position ("Front Center", ...), and pink noise. */
export const ALSA_SOUNDS = '/usr/share/sounds/alsa';
export const SPEECH = ['Front_Center', 'Front_Left', 'Front_Right', 'Rear_Center', 'Rear_Left', 'Rear_Right', 'Side_Left', 'Side_Right'];

/** A 16-bit PCM WAV file's first channel as floats in [-1, 1), and its sample rate. */
export function readWav(file: string): { samples: Float32Array; rate: number } {
  const b = fs.readFileSync(file);
  if (b.toString('ascii', 0, 4) !== 'RIFF' || b.toString('ascii', 8, 12) !== 'WAVE') throw new Error(`${file}: not a WAV file`);
  let at = 12, rate = 0, channels = 1, bits = 0;
  while (at + 8 <= b.length) {
    const id = b.toString('ascii', at, at + 4), size = b.readUInt32LE(at + 4), body = at + 8;
    if (id === 'fmt ') { channels = b.readUInt16LE(body + 2); rate = b.readUInt32LE(body + 4); bits = b.readUInt16LE(body + 14); }
    if (id === 'data') {
      if (bits !== 16) throw new Error(`${file}: ${bits}-bit samples (16 expected)`);
      const n = Math.floor(size / 2 / channels), out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = b.readInt16LE(body + 2 * i * channels) / 32768;
      return { samples: out, rate };
    }
    at = body + size + (size % 2);
  }
  throw new Error(`${file}: no data chunk`);
}

/** `x` at 1/`factor` of its rate: a windowed-sinc low-pass below the new Nyquist rate, then every factor-th sample. */
export function decimate(x: Float32Array, factor: number, taps = 63): Float32Array {
  const h = new Float64Array(taps), mid = (taps - 1) / 2, fc = 0.9 / (2 * factor);
  for (let k = 0; k < taps; k++) {
    const t = k - mid, sinc = t === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * t) / (Math.PI * t);
    h[k] = sinc * (0.54 - 0.46 * Math.cos((2 * Math.PI * k) / (taps - 1))); // Hamming window
  }
  const sum = h.reduce((a, v) => a + v, 0);
  const out = new Float32Array(Math.floor(x.length / factor));
  for (let i = 0; i < out.length; i++) {
    let acc = 0;
    for (let k = 0; k < taps; k++) { const j = i * factor + k - mid; if (j >= 0 && j < x.length) acc += h[k] * x[j]; }
    out[i] = acc / sum;
  }
  return out;
}

/** A recording at 16 kHz (the rate Silero VAD takes). */
export function speech16k(name: string): Float32Array {
  const w = readWav(path.join(ALSA_SOUNDS, `${name}.wav`));
  if (w.rate % 16000) throw new Error(`${name}.wav: ${w.rate} Hz is not a multiple of 16 kHz`);
  return decimate(w.samples, w.rate / 16000);
}

/** Silero VAD's inputs for one 512-sample chunk (32 ms at 16 kHz), with the LSTM state carried in. */
function vadFeeds(chunk: Float32Array, h: Float32Array, c: Float32Array): Record<string, ort.Tensor> {
  return {
    input: new ort.Tensor('float32', chunk, [1, chunk.length]), sr: new ort.Tensor('int64', BigInt64Array.of(16000n), []),
    h: new ort.Tensor('float32', h, [2, 1, 64]), c: new ort.Tensor('float32', c, [2, 1, 64]),
  };
}

/**
 * Silero VAD over a recording, chunk by chunk as its users stream it (state carried between chunks): each
 * chunk's speech probability, and each chunk's inputs when `keep` is set.
 */
export async function vadProbabilities(session: ort.InferenceSession, audio: Float32Array, keep?: Array<Record<string, ort.Tensor>>): Promise<number[]> {
  let h = new Float32Array(128), c = new Float32Array(128);
  const probs: number[] = [];
  for (let at = 0; at + 512 <= audio.length; at += 512) {
    const feeds = vadFeeds(audio.slice(at, at + 512), h, c);
    keep?.push(feeds);
    const out = await session.run(feeds);
    probs.push((out.output.data as Float32Array)[0]);
    h = Float32Array.from(out.hn.data as Float32Array);
    c = Float32Array.from(out.cn.data as Float32Array);
  }
  return probs;
}
