import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { zipSync } from 'fflate';
import { PNG } from 'pngjs';
import { openCalibration } from '../../src/core/calib/data';
import { parseNpy } from '../../src/core/calib/npy';
import { FIXTURES } from '../../src/core/fixtures';
import { DataType } from '../../src/core/onnx/dtypes';
import { AttributeType, onnx } from '../../src/core/onnx/proto';
import { quantizeModel } from '../../src/core/jobs/quantize-model';
import { makeTensor } from '../../src/core/onnx/tensor';
import { npy } from '../helpers/npy';
import { tmpDir } from '../helpers/util';

const mlp = FIXTURES.mlp.build().graph!; // input: float32 [batch, 64]
const vlm = FIXTURES['tiny-vlm'].build().graph!; // pixel_values [batch,3,32,32], input_ids int64 [batch,8]
const floats = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i));

describe('calibration data', () => {
  it('parses .npy (float32, int64, big-endian float32) like numpy writes it', () => {
    const f = parseNpy(npy('<f4', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6])));
    assert.deepEqual(f.dims, [2, 3]);
    assert.deepEqual([...(f.data as Float32Array)], [1, 2, 3, 4, 5, 6]);
    const l = parseNpy(npy('<i8', [2], BigInt64Array.from([7n, -1n])));
    assert.deepEqual([...(l.data as BigInt64Array)], [7n, -1n]);
    const be = Buffer.alloc(8);
    be.writeFloatBE(1.5, 0);
    be.writeFloatBE(-2, 4);
    assert.deepEqual([...(parseNpy(npy('>f4', [2], be)).data as Float32Array)], [1.5, -2]);
  });

  it('reads a folder of .npy files for a one-input model, adding the batch dimension', () => {
    const dir = tmpDir();
    for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(dir, `s${i}.npy`), npy('<f4', [64], floats(64)));
    const data = openCalibration(dir, mlp);
    assert.equal(data.count, 3);
    const [first] = data.samples();
    assert.deepEqual(first.input.dims, [1, 64]);
  });

  it('reads .npz files with one array per input name (multi-input model)', () => {
    const dir = tmpDir();
    const ids = BigInt64Array.from({ length: 8 }, (_, i) => BigInt(i));
    fs.writeFileSync(path.join(dir, 'a.npz'), zipSync({ 'pixel_values.npy': npy('<f4', [1, 3, 32, 32], floats(3072)), 'input_ids.npy': npy('<i8', [1, 8], ids) }));
    const [s] = openCalibration(dir, vlm).samples();
    assert.deepEqual(s.pixel_values.dims, [1, 3, 32, 32]);
    assert.deepEqual([...(s.input_ids.data as BigInt64Array)], [...ids]);
  });

  it('reads the ONNX test-data layout (test_data_set_N/input_K.pb), matching by TensorProto name', () => {
    const dir = tmpDir();
    for (let k = 0; k < 2; k++) {
      const d = path.join(dir, `test_data_set_${k}`);
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'input_0.pb'), onnx.TensorProto.encode(makeTensor('input_ids', DataType.INT64, [1, 8], new BigInt64Array(8))).finish());
      fs.writeFileSync(path.join(d, 'input_1.pb'), onnx.TensorProto.encode(makeTensor('pixel_values', DataType.FLOAT, [1, 3, 32, 32], floats(3072))).finish());
    }
    const data = openCalibration(dir, vlm);
    assert.equal(data.count, 2);
    const [s] = data.samples();
    assert.deepEqual(s.pixel_values.dims, [1, 3, 32, 32]);
    assert.equal(s.input_ids.type, 'int64');
  });

  it('an ONNX test case\'s expected outputs (output_K.pb) are not read as inputs, with unnamed tensors too (older exporters name none)', () => {
    // As onnx's own test data (pytorch-converted/*) has it: the model folder holds test_data_set_N/.
    const dir = tmpDir();
    const unnamed = (dims: number[], v: number) => onnx.TensorProto.encode(makeTensor('', DataType.FLOAT, dims, new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(v))).finish();
    for (let k = 0; k < 2; k++) {
      const d = path.join(dir, `test_data_set_${k}`);
      fs.mkdirSync(d);
      fs.writeFileSync(path.join(d, 'input_0.pb'), unnamed([1, 64], k + 1));
      fs.writeFileSync(path.join(d, 'output_0.pb'), unnamed([1, 10], -5));
    }
    const all = openCalibration(dir, mlp);
    assert.equal(all.count, 2);
    assert.deepEqual([...all.samples()].map((s) => [s.input.dims, (s.input.data as Float32Array)[0]]), [[[1, 64], 1], [[1, 64], 2]]);
    // The data set folder itself is one sample, not one per file.
    const one = openCalibration(path.join(dir, 'test_data_set_1'), mlp);
    assert.equal(one.count, 1);
    assert.equal(([...one.samples()][0].input.data as Float32Array)[0], 2);
    // A text pipeline's input: strings, fed as strings.
    const text = onnx.GraphProto.create({ name: 't', input: [{ name: 'x', type: { tensor_type: { elem_type: DataType.STRING, shape: { dim: [{ dim_value: 2 }] } } } }] });
    const set = path.join(dir, 'text');
    fs.mkdirSync(set);
    fs.writeFileSync(path.join(set, 'input_0.pb'), onnx.TensorProto.encode({ name: '', data_type: DataType.STRING, dims: [2], string_data: [Buffer.from('Monday'), Buffer.from('tuesday')] }).finish());
    fs.writeFileSync(path.join(set, 'output_0.pb'), onnx.TensorProto.encode({ name: '', data_type: DataType.STRING, dims: [1], string_data: [Buffer.from('tuesday')] }).finish());
    const [words] = openCalibration(set, text).samples();
    assert.deepEqual([words.x.type, words.x.data], ['string', ['Monday', 'tuesday']]);
  });

  it('a .npy or .npz that stacks samples along a fixed batch dimension gives one sample per batch; an open batch keeps the file one sample', () => {
    /** The graph with every input's first dimension fixed at 1. */
    const batchOne = (g: typeof mlp) => onnx.GraphProto.create({ ...g, input: g.input!.map((v) => ({ ...v, type: { tensor_type: { ...v.type!.tensor_type!, shape: { dim: [{ dim_value: 1 }, ...v.type!.tensor_type!.shape!.dim!.slice(1)] } } } })) });
    const rows = (n: number, width: number) => Float32Array.from({ length: n * width }, (_, i) => Math.floor(i / width) + (i % width) / 1000);
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'calib.npy'), npy('<f4', [5, 64], rows(5, 64)));
    const one = batchOne(mlp);
    const data = openCalibration(dir, one);
    assert.equal(data.count, 5);
    const samples = [...data.samples()];
    assert.deepEqual(samples.map((s) => [s.input.dims, (s.input.data as Float32Array)[0], (s.input.data as Float32Array)[63]]), [0, 1, 2, 3, 4].map((j) => [[1, 64], j, j + 0.063].map((v) => (typeof v === 'number' ? Math.fround(v) : v))));
    assert.equal(openCalibration(dir, one, { maxSamples: 3 }).count, 3);
    // The fixture's own batch is open: the file is one batch of 5.
    const open = [...openCalibration(dir, mlp).samples()];
    assert.deepEqual(open.map((s) => s.input.dims), [[5, 64]]);
    // Two inputs in one .npz, 4 samples each (float64 read as float32 per sample); counts that disagree stay one sample, refused by shape.
    const two = batchOne(vlm);
    const npz = tmpDir();
    fs.writeFileSync(path.join(npz, 'set.npz'), zipSync({ 'pixel_values.npy': npy('<f8', [4, 3, 32, 32], Float64Array.from(rows(4, 3072))), 'input_ids.npy': npy('<i8', [4, 8], BigInt64Array.from({ length: 32 }, (_, i) => BigInt(Math.floor(i / 8)))) }));
    const pairs = [...openCalibration(npz, two).samples()];
    assert.deepEqual(pairs.map((s) => [s.pixel_values.type, s.pixel_values.dims, (s.pixel_values.data as Float32Array)[0], s.input_ids.dims, (s.input_ids.data as BigInt64Array)[7]]), [0, 1, 2, 3].map((j) => ['float32', [1, 3, 32, 32], j, [1, 8], BigInt(j)]));
    fs.writeFileSync(path.join(npz, 'set.npz'), zipSync({ 'pixel_values.npy': npy('<f4', [4, 3, 32, 32], rows(4, 3072)), 'input_ids.npy': npy('<i8', [2, 8], new BigInt64Array(16)) }));
    assert.throws(() => [...openCalibration(npz, two).samples()], /set\.npz: input '\w+' has shape \[[42],.*\], the model expects \[1, /);
  });

  it('reads PNG images for an image input: resized, normalised, NCHW', () => {
    const dir = tmpDir();
    const png = new PNG({ width: 64, height: 48 });
    png.data.fill(255);
    fs.writeFileSync(path.join(dir, 'white.png'), PNG.sync.write(png));
    const cnn = FIXTURES.cnn.build().graph!;
    const [s] = openCalibration(dir, cnn).samples();
    assert.deepEqual(s.input.dims, [1, 3, 32, 32]);
    const v = s.input.data as Float32Array;
    assert.ok(Math.abs(v[0] - (1 - 0.485) / 0.229) < 1e-5); // white, channel 0, ImageNet mean/std
  });

  it('images are prepared as their folder says: preprocess.json (mean/std, BGR), Hugging Face\'s preprocessor_config.json; uint8 and float16 inputs', () => {
    const red = (dir: string) => {
      const png = new PNG({ width: 32, height: 32 });
      for (let i = 0; i < png.data.length; i += 4) png.data.set([255, 0, 0, 255], i);
      fs.writeFileSync(path.join(dir, 'red.png'), PNG.sync.write(png));
    };
    const cnn = FIXTURES.cnn.build().graph!; // input float32 [batch, 3, 32, 32]
    const first = (dir: string, g = cnn) => { const d = openCalibration(dir, g); return { d, t: Object.values([...d.samples()][0])[0] }; };
    const px = (t: { data: unknown }, c: number) => Number((t.data as Float32Array)[c * 32 * 32]);

    const plain = tmpDir();
    red(plain);
    const a = first(plain);
    assert.ok(Math.abs(px(a.t, 0) - (1 - 0.485) / 0.229) < 1e-5 && Math.abs(px(a.t, 2) - (0 - 0.406) / 0.225) < 1e-5);
    assert.equal(a.d.preprocessing, '1 image: ImageNet mean/std, RGB (preprocess.json in the folder changes it)');

    // PaddleOCR's recogniser: (x/255 − 0.5) / 0.5 on BGR
    const paddle = tmpDir();
    red(paddle);
    fs.writeFileSync(path.join(paddle, 'preprocess.json'), JSON.stringify({ mean: 0.5, std: 0.5, channels: 'bgr' }));
    const b = first(paddle);
    assert.deepEqual([px(b.t, 0), px(b.t, 1), px(b.t, 2)], [-1, -1, 1]); // blue, green, red
    assert.match(b.d.preprocessing!, /mean \[0\.5, 0\.5, 0\.5\], std \[0\.5, 0\.5, 0\.5\], BGR \(from preprocess\.json\)/);

    // A Hugging Face export's image processor (CLIP's mean/std), and one that only rescales
    const hf = tmpDir();
    red(hf);
    fs.writeFileSync(path.join(hf, 'preprocessor_config.json'), JSON.stringify({ image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711], do_rescale: true, rescale_factor: 1 / 255 }));
    assert.ok(Math.abs(px(first(hf).t, 0) - (1 - 0.48145466) / 0.26862954) < 1e-5);
    fs.writeFileSync(path.join(hf, 'preprocessor_config.json'), JSON.stringify({ image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], do_normalize: false }));
    assert.deepEqual([px(first(hf).t, 0), px(first(hf).t, 2)], [1, 0]);

    // An export with its preprocessing inside takes uint8 pixels (NHWC here); a float16 export half floats.
    const graphWith = (elem: number, dims: number[]) => onnx.GraphProto.create({ input: [{ name: 'image', type: { tensor_type: { elem_type: elem, shape: { dim: dims.map((d) => ({ dim_value: d })) } } } }] });
    const u8 = first(plain, graphWith(DataType.UINT8, [1, 32, 32, 3])).t;
    assert.equal(u8.type, 'uint8');
    assert.deepEqual([...(u8.data as Uint8Array).slice(0, 3)], [255, 0, 0]);
    const f16 = first(plain, graphWith(DataType.FLOAT16, [1, 3, 32, 32])).t;
    assert.equal(f16.type, 'float16');
    assert.equal(f16.dims.join(), '1,3,32,32');

    fs.writeFileSync(path.join(paddle, 'preprocess.json'), '{"mean": [0.5, 0.5]}');
    assert.throws(() => openCalibration(paddle, cnn), /preprocess\.json: "mean" must be three numbers \(or one\)/);
  });

  it('a shortest-edge resize with a centre crop (Hugging Face\'s CLIP processor, torchvision\'s Resize + CenterCrop) keeps the aspect ratio', () => {
    // 96 × 32: a red left third, a green middle, a blue right third
    const dir = tmpDir();
    const png = new PNG({ width: 96, height: 32 });
    for (let y = 0; y < 32; y++) for (let x = 0; x < 96; x++) png.data.set(x < 32 ? [255, 0, 0, 255] : x < 64 ? [0, 255, 0, 255] : [0, 0, 255, 255], (y * 96 + x) * 4);
    fs.writeFileSync(path.join(dir, 'wide.png'), PNG.sync.write(png));
    const cnn = FIXTURES.cnn.build().graph!; // [batch, 3, 32, 32]
    const rgbAt = (t: { data: unknown }, x: number) => [0, 1, 2].map((c) => Math.round(Number((t.data as Float32Array)[c * 32 * 32 + 16 * 32 + x]) * 255));
    const plain = { mean: 0, std: 1 };
    fs.writeFileSync(path.join(dir, 'preprocess.json'), JSON.stringify(plain));
    const stretched = Object.values([...openCalibration(dir, cnn).samples()][0])[0];
    assert.deepEqual([rgbAt(stretched, 0), rgbAt(stretched, 31)], [[255, 0, 0], [0, 0, 255]]); // all three thirds squeezed in
    // CLIP: shortest edge to 32, centre crop 32 × 32: only the green middle remains
    fs.rmSync(path.join(dir, 'preprocess.json'));
    fs.writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify({ do_resize: true, size: { shortest_edge: 32 }, do_center_crop: true, crop_size: { height: 32, width: 32 }, image_mean: [0, 0, 0], image_std: [1, 1, 1] }));
    const d = openCalibration(dir, cnn);
    const cropped = Object.values([...d.samples()][0])[0];
    assert.deepEqual([rgbAt(cropped, 0), rgbAt(cropped, 31)], [[0, 255, 0], [0, 255, 0]]);
    assert.match(d.preprocessing!, /centre crop \(from preprocessor_config\.json\)/);
    // Resize(64) + CenterCrop(32), as preprocess.json: the middle half of the shorter side
    fs.rmSync(path.join(dir, 'preprocessor_config.json'));
    fs.writeFileSync(path.join(dir, 'preprocess.json'), JSON.stringify({ ...plain, crop: 0.5 }));
    const half = openCalibration(dir, cnn);
    assert.deepEqual(rgbAt(Object.values([...half.samples()][0])[0], 0), [0, 255, 0]);
    assert.match(half.preprocessing!, /centre crop of 50%/);
  });

  it('PNG crops of rendered text lines with PaddleOCR\'s preprocess.json give the recogniser the arrays its own preprocessing gives', async function () {
    this.timeout(60_000);
    const { renderRecLines, textLines, REC_H, REC_W } = await import('../helpers/ocr');
    const { describeValue } = await import('../../src/core/onnx/value-type');
    const arrays = await renderRecLines(textLines(4, 3));
    const dir = tmpDir();
    arrays.forEach((t, k) => {
      const png = new PNG({ width: REC_W, height: REC_H });
      for (let i = 0; i < REC_W * REC_H; i++) {
        // back to pixels, RGB as image files hold them (the arrays are BGR)
        for (let c = 0; c < 3; c++) png.data[i * 4 + c] = Math.round(t[(2 - c) * REC_W * REC_H + i] * 127.5 + 127.5);
        png.data[i * 4 + 3] = 255;
      }
      fs.writeFileSync(path.join(dir, `line${k}.png`), PNG.sync.write(png));
    });
    fs.writeFileSync(path.join(dir, 'preprocess.json'), JSON.stringify({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], channels: 'bgr' }));
    const graph = onnx.GraphProto.create({ input: [{ name: 'x', type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: [{ dim_param: 'n' }, { dim_value: 3 }, { dim_value: REC_H }, { dim_param: 'w' }] } } } }] });
    assert.deepEqual(describeValue(graph.input![0]).shape, ['n', 3, REC_H, 'w']);
    const got = [...openCalibration(dir, graph, { inputShapes: { x: [1, 3, REC_H, REC_W] } }).samples()].map((f) => f.x.data as Float32Array);
    // equal but for the padding, which sits between two pixel values (0 after normalisation is 127.5)
    got.forEach((g, k) => assert.ok(g.every((v, i) => Math.abs(v - arrays[k][i]) <= 0.5 / 127.5 + 1e-6), `line ${k}`));
  });

  it('random:N is seeded and marked as not real data', () => {
    const a = openCalibration('random:3', mlp);
    assert.equal(a.kind, 'random');
    assert.match(a.warning!, /random/);
    const x = [...a.samples()][2].input.data as Float32Array;
    const y = [...openCalibration('random:3', mlp).samples()][2].input.data as Float32Array;
    assert.deepEqual([...x], [...y]);
  });

  it('gives one clear error for a folder with nothing usable, a wrong shape, a wrong dtype', () => {
    const empty = tmpDir();
    fs.writeFileSync(path.join(empty, 'notes.txt'), 'hello');
    assert.throws(() => openCalibration(empty, mlp), /no usable calibration files/);
    const wrong = tmpDir();
    fs.writeFileSync(path.join(wrong, 'a.npy'), npy('<f4', [65], floats(65)));
    assert.throws(() => [...openCalibration(wrong, mlp).samples()], /input 'input' has shape \[65\], the model expects \[batch, 64\]/);
    const dtype = tmpDir();
    fs.writeFileSync(path.join(dtype, 'a.npy'), npy('|u1', [64], new Uint8Array(64)));
    assert.throws(() => [...openCalibration(dtype, mlp).samples()], /input 'input' must be float32, the file holds uint8/);
    assert.throws(() => openCalibration('/no/such/dir', mlp), /must be a folder/);
  });

  it('a text input (ONNX-ML CategoryMapper before an embedding): random samples are words of its vocabulary, and weight INT8 measures the model on them', async () => {
    const words = ['the', 'cat', 'sat', 'mat'];
    const m = onnx.ModelProto.create({
      ir_version: 8, opset_import: [{ domain: '', version: 13 }, { domain: 'ai.onnx.ml', version: 2 }],
      graph: {
        name: 'g', input: [{ name: 'words', type: { tensor_type: { elem_type: DataType.STRING, shape: { dim: [{ dim_param: 'n' }] } } } }],
        output: [{ name: 'y', type: { tensor_type: { elem_type: DataType.FLOAT } } }],
        node: [
          { name: 'lookup', op_type: 'CategoryMapper', domain: 'ai.onnx.ml', input: ['words'], output: ['ids'], attribute: [
            { name: 'cats_strings', type: AttributeType.STRINGS, strings: words.map((w) => new TextEncoder().encode(w)) },
            { name: 'cats_int64s', type: AttributeType.INTS, ints: [0, 1, 2, 3] }, { name: 'default_int64', type: AttributeType.INT, i: 3 }] },
          { name: 'embed', op_type: 'Gather', input: ['table', 'ids'], output: ['e'] },
          { name: 'fc', op_type: 'MatMul', input: ['e', 'w'], output: ['y'] },
        ],
        initializer: [makeTensor('table', DataType.FLOAT, [4, 64], Float32Array.from({ length: 256 }, (_, i) => Math.sin(i))), makeTensor('w', DataType.FLOAT, [64, 32], Float32Array.from({ length: 2048 }, (_, i) => Math.cos(i * 0.37)))],
      },
    });
    const [feeds] = openCalibration('random:1', m.graph!, { inputShapes: { words: [6] } }).samples();
    assert.equal(feeds.words.type, 'string');
    assert.deepEqual(feeds.words.dims, [6]);
    for (const w of feeds.words.data as string[]) assert.ok(words.includes(w), w);
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'm.onnx'), onnx.ModelProto.encode(m).finish());
    const r = await quantizeModel(path.join(dir, 'm.onnx'), path.join(dir, 'q.onnx'), { mode: 'weight', bits: 8, calibration: 'random:4' });
    assert.ok(r.fidelity.y.cosine > 0.999, JSON.stringify(r.fidelity));
  });

  it('integer inputs of every width onnxruntime-node feeds get random values of their own type', () => {
    const types = [[DataType.INT8, 'int8'], [DataType.INT16, 'int16'], [DataType.UINT16, 'uint16'], [DataType.UINT32, 'uint32'], [DataType.UINT64, 'uint64']] as const;
    const g = { name: 'g', node: [], input: types.map(([code, name]) => ({ name, type: { tensor_type: { elem_type: code, shape: { dim: [{ dim_value: 4 }] } } } })), output: [] };
    const [feeds] = openCalibration('random:1', g).samples();
    for (const [, name] of types) assert.equal(feeds[name].type, name);
  });
});
