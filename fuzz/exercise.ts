// The passes every fuzz mutant (and every file of the regression corpus) goes through.
import fs from 'node:fs';
import { summarizeModel } from '../src/core/inspect';
import { GraphView } from '../src/core/onnx/graph';
import { loadModel, saveModel } from '../src/core/onnx/model-io';
import { findPrunableLayers, readLayerWeight } from '../src/core/prune/layers';
import { DEFAULT_PRUNE_OPTIONS } from '../src/core/prune/options';
import { pruneUnstructured } from '../src/core/prune/unstructured';
import { DEFAULT_QUANTIZE_OPTIONS } from '../src/core/quant/options';
import { QuantPolicy } from '../src/core/quant/policy';
import { applyQuantization, modesUsed, prepareQuantization } from '../src/core/quant/prepare';

/**
 * What the fuzzer runs on each mutant: everything that reads a model before onnxruntime does. The loader,
 * inspect, graph order; and on what loads, weight-only INT8 and INT4 quantization and magnitude pruning
 * in memory (the passes that read every weight), then saving the result.
 */
export async function exercise(file: string): Promise<void> {
  const m = loadModel(file);
  summarizeModel(m);
  const view = new GraphView(m.model.graph!);
  view.topologicalOrder();
  const { layers } = findPrunableLayers(view, m.loc, []);
  pruneUnstructured((l) => readLayerWeight(view, l, m.loc), layers, { ...DEFAULT_PRUNE_OPTIONS, sparsity: 0.5 }, undefined, () => {});
  for (const bits of [8, 4] as const) {
    const o = { ...DEFAULT_QUANTIZE_OPTIONS, mode: 'weight' as const, bits };
    const prep = await prepareQuantization(loadModel(file), o, new QuantPolicy(o), modesUsed(o));
    const { model } = await applyQuantization(prep, () => true, { inPlace: true });
    saveModel(model, `${file}.q.onnx`, { source: m.loc });
    fs.rmSync(`${file}.q.onnx`, { force: true });
  }
}

