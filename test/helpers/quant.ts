import fs from 'node:fs';
import path from 'node:path';
import { compareModels } from '../../src/core/compare';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import type { ModelProto } from '../../src/core/onnx/proto';
import type { QuantizeOptions } from '../../src/core/quant/options';
import { quantizeModel } from '../../src/core/jobs/quantize-model';
import { tmpDir } from './util';

/** Saves `model`, quantizes it, and returns the result with the output's op histogram and its fidelity. */
export async function quantizeAndMeasure(model: ModelProto, options: Partial<QuantizeOptions>, data?: string) {
  const dir = tmpDir();
  const input = path.join(dir, 'float.onnx');
  const output = path.join(dir, 'quant.onnx');
  saveModel(model, input);
  const before = fs.readFileSync(input);
  const result = await quantizeModel(input, output, options);
  if (!fs.readFileSync(input).equals(before)) throw new Error('the input model was modified');
  const ops: Record<string, number> = {};
  for (const n of loadModel(output).model.graph!.node!) {
    const k = n.domain ? `${n.domain}.${n.op_type}` : n.op_type!;
    ops[k] = (ops[k] ?? 0) + 1;
  }
  const cmp = await compareModels(input, output, { data: data ?? options.calibration ?? 'random:8', samples: 16, latencyRuns: 1 });
  const [fidelity] = Object.values(cmp.outputs);
  const report = JSON.parse(fs.readFileSync(`${output}.report.json`, 'utf8'));
  return { result, ops, fidelity, report, input, output, dir };
}
