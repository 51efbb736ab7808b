// The pipeline's own tokenizer (Hugging Face tokenizer.json, as Optimum and onnxruntime-genai folders ship
// it), through tokenizers.js: text prompts become token ids, generated ids become text in reports.
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { QuantLensError } from '../base/errors';
import { readJsonFile } from '../fs/json';

export interface PipelineTokenizer {
  file: string;
  encode(text: string): number[];
  decode(ids: number[]): string;
}

/** The tokenizer in a pipeline folder (tokenizer.json, with tokenizer_config.json when there is one), or undefined. */
export function loadTokenizer(dir: string): PipelineTokenizer | undefined {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) return undefined;
  const configFile = path.join(dir, 'tokenizer_config.json');
  let t: Tokenizer;
  try {
    t = new Tokenizer(readJsonFile(file) as never, (fs.existsSync(configFile) ? readJsonFile(configFile) : {}) as never);
  } catch (e) {
    if (e instanceof QuantLensError) throw e;
    throw new QuantLensError(file, `is not a tokenizer tokenizers.js can load (${e instanceof Error ? e.message.split('\n')[0] : e})`);
  }
  return {
    file,
    encode: (text) => t.encode(text).ids.map(Number),
    decode: (ids) => t.decode(ids, { skip_special_tokens: true }).trim(),
  };
}
