import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { concreteShapes } from '../../src/core/calib/symbolic-dims';
import { onnx } from '../../src/core/onnx/proto';
import { cli } from '../helpers/cli';
import { tmpDir } from '../helpers/util';

const value = (name: string, elem: number, dims: Array<number | string>) => onnx.ValueInfoProto.create({
  name, type: { tensor_type: { elem_type: elem, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
});

// A LLaVA-style decoder with a KV cache, exported by PyTorch (samples/tiny_vlm/pipeline.py): random
// inputs must agree with each other (the mask spans the past and the new tokens) for onnxruntime to run it.
describe('a KV-cache decoder (PyTorch export) runs and quantizes on random inputs', function () {
  this.timeout(300_000);
  let dir = '', decoder = '';
  before(function () {
    if (spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) this.skip();
    dir = tmpDir();
    const r = spawnSync('/usr/bin/python3', [path.resolve('samples/tiny_vlm/pipeline.py'), path.join(dir, 'model'), '--steps', '0'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    decoder = path.join(dir, 'model', 'onnx', 'decoder_model_merged.onnx');
  });

  it('run: the attention mask is as long as the past and the new tokens, and says so', async () => {
    const r = await cli(['run', decoder, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout);
    assert.deepEqual(rep.inputShapes.attention_mask, [1, 32]);
    assert.deepEqual(rep.inputShapes['past_key_values.0.key'], [1, 4, 16, 24]);
    assert.ok(rep.chosenDims.includes('total_sequence_length = 32') && rep.chosenDims.includes('past_sequence_length = 16'), rep.chosenDims.join('; '));
    assert.deepEqual(rep.outputs['present.1.value'].shape, [1, 4, 32, 24]);
  });

  it('weight-only INT4 (MatMulNBits) of the decoder is verified in onnxruntime, the cache outputs untouched in shape', async () => {
    const out = path.join(dir, 'decoder.int4.onnx');
    const r = await cli(['quantize', decoder, '-o', out, '--mode', 'weight', '--bits', '4']);
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(fs.readFileSync(`${out}.report.json`, 'utf8'));
    assert.ok(rep.quantized.length >= 14, `${rep.quantized.length} MatMuls`);
    const s = await ort.InferenceSession.create(out);
    assert.deepEqual(s.outputNames, ['logits', 'present.0.key', 'present.0.value', 'present.1.key', 'present.1.value']);
    assert.ok(Object.values(rep.fidelity as Record<string, { cosine: number }>).every((f) => f.cosine > 0.99));
    // A given past length holds for the mask too.
    const g = await cli(['run', out, '--input-shape', 'past_key_values.0.key=1x4x5x24', '--json']);
    assert.equal(g.code, 0, g.stderr);
    assert.deepEqual(JSON.parse(g.stdout).inputShapes.attention_mask, [1, 21]);
  });

  it('dim_params written as sums are computed from the others', () => {
    const graph = onnx.GraphProto.create({
      input: [value('input_ids', 7, ['batch', 'seq']), value('past.0.key', 1, ['batch', 2, 'past_len', 8]), value('attention_mask', 7, ['batch', 'past_len + seq']), value('cache_position', 7, ['past_len + 1'])],
    });
    const shapes = concreteShapes(graph, ['input_ids', 'past.0.key', 'attention_mask', 'cache_position'], { 'past.0.key': [3, 2, 7, 8] });
    assert.deepEqual(shapes.get('input_ids'), [3, 16]);
    assert.deepEqual(shapes.get('attention_mask'), [3, 23]);
    assert.deepEqual(shapes.get('cache_position'), [8]);
  });
});
