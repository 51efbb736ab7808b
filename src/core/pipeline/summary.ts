// `quantlens inspect DIR` for a pipeline: what was found, each component's inputs and outputs, the cache.
import { summarizeModel, type ModelSummary } from '../inspect';
import { loadModel } from '../onnx/model-io';
import { detectPipeline, type ComponentRole, type Pipeline } from './layout';
import fs from 'node:fs';
import path from 'node:path';
import { describeImageOptions, folderImageOptions } from '../calib/image-options';

export interface PipelineSummary {
  kind: 'pipeline';
  dir: string;
  layout: Pipeline['layout'];
  components: Array<{ role: ComponentRole; file: string; summary: ModelSummary }>;
  eos: number[];
  maxNewTokens: number;
  imageToken?: number;
  configs: string[];
  /** What data it takes: how image files are prepared (vision pipelines), and whether prompts can be text. */
  data: { images?: string; textPrompts: boolean };
}

export function summarizePipeline(dir: string): PipelineSummary {
  const p = detectPipeline(dir);
  return {
    kind: 'pipeline', dir: p.dir, layout: p.layout, eos: p.eos, maxNewTokens: p.maxNewTokens, ...(p.imageToken !== undefined ? { imageToken: p.imageToken } : {}), configs: p.extras,
    components: p.components.map((c) => ({ role: c.role, file: c.relative, summary: summarizeModel(loadModel(c.file)) })),
    data: {
      ...(p.components.some((c) => c.role === 'vision') ? { images: (({ options, from }) => describeImageOptions(options, from))(folderImageOptions(p.dir)) } : {}),
      textPrompts: fs.existsSync(path.join(p.dir, 'tokenizer.json')),
    },
  };
}

export function formatPipelineSummary(s: PipelineSummary): string {
  const io = (v: ModelSummary['inputs']) => v.map((x) => `${x.name} ${x.type}[${(x.shape ?? []).map((d) => d ?? '?').join(', ')}]`).join(', ');
  return [
    `${s.dir}: ${s.layout === 'genai' ? 'an onnxruntime-genai (genai_config.json)' : 'an Optimum (onnx/*.onnx beside config.json)'} pipeline of ${s.components.length} models`,
    ...s.components.flatMap((c) => [
      `  ${c.role}: ${c.file} (opset ${c.summary.opset}, ${c.summary.parameters.toLocaleString('en-US')} parameters, ${c.summary.nodes} nodes)`,
      `    in:  ${io(c.summary.inputs)}`,
      `    out: ${io(c.summary.outputs)}`,
    ]),
    `  generation: greedy, up to ${s.maxNewTokens} new tokens, EOS ${s.eos.join(', ') || 'none'}${s.imageToken !== undefined ? `, image features at token ${s.imageToken}` : ', image features before the prompt'}`,
    `  configs: ${s.configs.join(', ') || 'none'}`,
    `  data: ${s.data.images ? `image files prepared with ${s.data.images}; ` : ''}prompts as token ids${s.data.textPrompts ? ' or text (tokenizer.json)' : ' (no tokenizer.json: no text prompts)'}`,
  ].join('\n');
}
