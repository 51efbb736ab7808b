import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadPipelineSamples } from '../../src/core/pipeline/data';
import { generate, openPipeline } from '../../src/core/pipeline/generate';
import { detectPipeline } from '../../src/core/pipeline/layout';
import { mergeDecoders } from '../../src/core/onnx/merge-decoders';
import { loadModel } from '../../src/core/onnx/model-io';
import { walkGraphs } from '../../src/core/onnx/walk';
import { attrGraph } from '../../src/core/onnx/attributes';
import { onnx } from '../../src/core/onnx/proto';
import type { PipelineQuantizeResult } from '../../src/core/jobs/quantize-pipeline';
import { cli } from '../helpers/cli';
import { tmpDir } from '../helpers/util';
import { PNG } from 'pngjs';

// A real trained VLM pipeline (samples/tiny_vlm/pipeline.py: PyTorch trains it on a toy captioning task,
// exports vision encoder, embeddings and a KV-cache decoder), run the way it is deployed and quantized per
// component (vision INT8 static with the projector float, embeddings INT8, decoder INT4 GPTQ), calibrated
// by generation on 16 images and judged by greedy generation on 24 others.
describe('a VLM pipeline (folder of ONNX files with a KV-cache decoder), calibrated and judged by generation', function () {
  this.timeout(600_000);
  let dir = '', model = '', calib = '', evalSet = '', optimum = '';
  before(function () {
    if (spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) this.skip();
    dir = tmpDir();
    model = path.join(dir, 'tiny-llava');
    const r = spawnSync('/usr/bin/python3', [path.resolve('samples/tiny_vlm/pipeline.py'), model, '--steps', '150', '--data', path.join(dir, 'data'), '--split-decoder'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    console.log(`      ${r.stdout.trim()}`);
    calib = path.join(dir, 'data', 'calib');
    evalSet = path.join(dir, 'data', 'eval');
    // The Optimum layout: the HF configs without genai_config.json, and decoder_model_merged.onnx as Optimum
    // writes it: an If on use_cache_branch over the first-step and with-past exports, sharing their weights.
    optimum = path.join(dir, 'optimum');
    fs.cpSync(model, optimum, { recursive: true });
    fs.rmSync(path.join(optimum, 'genai_config.json'));
    const split = (f: string) => path.join(model, 'onnx', f);
    const merged = mergeDecoders(loadModel(split('decoder_model.onnx')).model, loadModel(split('decoder_with_past_model.onnx')).model);
    fs.writeFileSync(path.join(optimum, 'onnx', 'decoder_model_merged.onnx'), onnx.ModelProto.encode(merged).finish());
    for (const d of [model, optimum]) for (const f of ['decoder_model.onnx', 'decoder_with_past_model.onnx']) fs.rmSync(path.join(d, 'onnx', f));
  });

  it('the merged decoder (If on use_cache_branch) stores the shared weights once and generates what the single graph does', async () => {
    const merged = loadModel(path.join(optimum, 'onnx', 'decoder_model_merged.onnx')).model;
    assert.equal(merged.graph!.node!.length, 1);
    assert.equal(merged.graph!.node![0].op_type, 'If');
    const single = loadModel(path.join(model, 'onnx', 'decoder_model_merged.onnx')).model;
    const bytes = (m: typeof merged) => (m.graph!.initializer ?? []).reduce((a, t) => a + (t.raw_data?.length ?? 0), 0);
    assert.ok(Math.abs(bytes(merged) - bytes(single)) < 0.05 * bytes(single), `${bytes(merged)} vs ${bytes(single)} bytes of weights`);
    const c = await cli(['compare', model, optimum, '--data', evalSet, '--json']);
    assert.equal(c.code, 0, c.stderr);
    const rep = JSON.parse(c.stdout);
    assert.equal(rep.tokens.exactMatch, 1);
    assert.ok(rep.logitsCosine > 0.99999);
  });

  it('recognizes both layouts, and says why a folder is not a pipeline', async () => {
    assert.equal(detectPipeline(model).layout, 'genai');
    assert.equal(detectPipeline(optimum).layout, 'optimum');
    assert.deepEqual(detectPipeline(optimum).components.map((c) => c.role), ['vision', 'embedding', 'decoder']);
    const i = await cli(['inspect', model]);
    assert.equal(i.code, 0, i.stderr);
    assert.match(i.stdout, /an onnxruntime-genai \(genai_config\.json\) pipeline of 3 models/);
    assert.match(i.stdout, /decoder: onnx\/decoder_model_merged\.onnx .*\n.*past_key_values\.0\.key float32\[batch_size, 4, past_sequence_length, 24\]/);
    // and what data it takes: images as its preprocessor_config.json prepares them, text prompts through its tokenizer
    assert.match(i.stdout, /data: image files prepared with mean \[0, 0, 0\], std \[1, 1, 1\], RGB \(from preprocessor_config\.json\); prompts as token ids or text \(tokenizer\.json\)/);
    const bad = await cli(['inspect', calib]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /calib: is a directory but not a model pipeline: no genai_config\.json and no decoder_model_merged\.onnx \(found no \.onnx file\)/);
  });

  it('onnxruntime generates what PyTorch generates (prefill, then the KV cache step by step)', async () => {
    const p = detectPipeline(model);
    const s = await openPipeline(p, 'cpu');
    try {
      assert.deepEqual(s.cache, { layers: 2, heads: 4, headSize: 24 });
      const truth = JSON.parse(fs.readFileSync(path.join(evalSet, 'answers.json'), 'utf8')) as { truth: number[][]; pytorch: number[][] };
      const samples = loadPipelineSamples(evalSet);
      const ours = [];
      for (const sample of samples) ours.push((await generate(p, s, sample)).tokens);
      assert.deepEqual(ours, truth.pytorch);
      const right = ours.filter((t, i) => JSON.stringify(t) === JSON.stringify(truth.truth[i])).length;
      assert.ok(right >= 20, `${right}/24 answers right: the trained model must be good enough for generation to mean something`);
    } finally {
      await s.release();
    }
  });

  it('image features spliced in at the config\'s image_token_index give what image-before-prompt gives', async () => {
    // The same pipeline, told that token 99 marks the image, and prompts that start with it.
    const spliced = path.join(dir, 'spliced');
    fs.cpSync(optimum, spliced, { recursive: true });
    const config = JSON.parse(fs.readFileSync(path.join(spliced, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(spliced, 'config.json'), JSON.stringify({ ...config, image_token_index: 99 }));
    const p = detectPipeline(spliced);
    assert.equal(p.imageToken, 99);
    const s = await openPipeline(p, 'cpu');
    try {
      const samples = loadPipelineSamples(evalSet).slice(0, 6);
      const truth = JSON.parse(fs.readFileSync(path.join(evalSet, 'answers.json'), 'utf8')) as { pytorch: number[][] };
      for (const [i, sample] of samples.entries()) {
        const out = await generate(p, s, { ...sample, prompt: [99, ...sample.prompt] });
        assert.deepEqual(out.tokens, truth.pytorch[i]);
      }
      // With the token in the middle the features land there: a different sequence, so other logits.
      const first = await generate(p, s, { ...samples[0], prompt: [samples[0].prompt[0], 99, ...samples[0].prompt.slice(1)] });
      const before = await generate(p, s, samples[0]);
      assert.notDeepEqual(Array.from(first.firstLogits), Array.from(before.firstLogits));
    } finally {
      await s.release();
    }
  });

  for (const layout of ['genai', 'optimum'] as const) {
    it(`${layout} layout: one command quantizes every component, writes the same layout, and keeps ≥ 90% of the generated tokens on held-apart prompts`, async () => {
      const input = layout === 'genai' ? model : optimum;
      const out = path.join(dir, `${layout}-q`);
      const r = await cli(['quantize', input, '-o', out, '--calibration', calib, '--eval-data', evalSet, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const q = JSON.parse(r.stdout) as PipelineQuantizeResult;
      assert.equal(q.layout, layout);
      assert.ok(q.decoderSteps >= 16 * 2, `${q.decoderSteps} decoder steps recorded (prefill and decode)`);
      const byRole = Object.fromEntries(q.components.map((c) => [c.role, c]));
      assert.equal(byRole.decoder.recipe !== 'float' && byRole.decoder.recipe.algorithm, 'gptq');
      for (const c of q.components) assert.ok(c.result && c.result.sizeAfter < c.result.sizeBefore, `${c.role} smaller`);
      // The projector stays float inside the vision encoder.
      const vision = JSON.parse(fs.readFileSync(path.join(out, 'onnx', 'vision_encoder.onnx.report.json'), 'utf8')) as { quantized: string[] };
      assert.ok(vision.quantized.length > 10 && !vision.quantized.some((n) => /multi_modal_projector/.test(n)), vision.quantized.filter((n) => /projector/.test(n)).join(', '));
      assert.ok(fs.existsSync(path.join(out, 'config.json')) && fs.existsSync(path.join(out, 'generation_config.json')));
      assert.equal(fs.existsSync(path.join(out, 'genai_config.json')), layout === 'genai');
      assert.equal(detectPipeline(out).layout, layout);
      console.log(`      ${layout}: tokens ${(q.judged.tokens.agreement * 100).toFixed(1)}% reproduced, ${(q.judged.tokens.exactMatch * 100).toFixed(1)}% answers identical, logits cosine ${q.judged.logitsCosine.toFixed(5)}, per token ${q.judged.latencyMs.reference.perToken.toFixed(2)} -> ${q.judged.latencyMs.candidate.perToken.toFixed(2)} ms, decoder ${(q.judged.sizes.decoder!.reference / 1024).toFixed(0)} -> ${(q.judged.sizes.decoder!.candidate / 1024).toFixed(0)} KiB`);
      assert.ok(q.judged.tokens.agreement >= 0.9, `${q.judged.tokens.agreement}`);
      assert.equal(q.judged.samples, 24);
      // The judgement was on the held-apart set, and compare says the same of the written folder.
      const c = await cli(['compare', input, out, '--data', evalSet, '--json']);
      assert.equal(c.code, 0, c.stderr);
      assert.equal(JSON.parse(c.stdout).tokens.agreement, q.judged.tokens.agreement);
      assert.ok(!fs.existsSync(`${out}.partial-${process.pid}`));
      if (layout === 'genai') {
        // genai folders often ship quantized components: quantizing the result again keeps each as it is.
        const again = await cli(['quantize', out, '-o', path.join(dir, 'genai-qq'), '--calibration', calib, '--eval-data', evalSet, '--json']);
        assert.equal(again.code, 0, again.stderr);
        const qq = JSON.parse(again.stdout) as PipelineQuantizeResult;
        for (const c of qq.components) assert.match(c.kept ?? '', /already quantized \(\d+ .*\): quantize the float model it came from; copied as shipped/, c.role);
        assert.equal(qq.judged.tokens.agreement, 1);
      }
      if (layout === 'optimum') {
        // Both If branches quantized, each shared weight packed once: the MatMuls 4-bit (GPTQ), and a table
        // both branches gather from int8 (GatherBlockQuantized), stored once.
        const dec = JSON.parse(fs.readFileSync(path.join(out, 'onnx', 'decoder_model_merged.onnx.report.json'), 'utf8')) as { nodes: Array<{ opType: string; how?: string }> };
        const gathers = dec.nodes.filter((n) => n.how && n.opType === 'Gather');
        const done = dec.nodes.filter((n) => n.how && n.opType !== 'Gather');
        assert.ok(done.length >= 28 && done.every((n) => /MatMulNBits int4 .*gptq.* one weight for 2 readers/.test(n.how!)), done.map((n) => n.how).join('\n'));
        assert.ok(gathers.every((n) => /^GatherBlockQuantized int8/.test(n.how!)), gathers.map((n) => n.how).join('\n'));
        const tables = (loadModel(path.join(out, 'onnx', 'decoder_model_merged.onnx')).model.graph!.initializer ?? []).filter((t) => /_Q8$/.test(t.name ?? ''));
        assert.equal(tables.length, gathers.filter((n) => !/, shared\b/.test(n.how!)).length, 'one int8 table per float one');
        assert.ok(done.some((n) => /then_branch;/.test(n.how!)) && done.some((n) => /else_branch;/.test(n.how!)));
        const qm = loadModel(path.join(out, 'onnx', 'decoder_model_merged.onnx')).model;
        const packed = (qm.graph!.initializer ?? []).filter((t) => /_Q4$/.test(t.name ?? ''));
        assert.equal(packed.length, done.length / 2, 'one packed weight per shared weight');
      }
    });
  }

  it('a pipeline recipe addresses components and modules inside them (the If-merged decoder included)', async () => {
    const recipe = path.join(dir, 'pipeline.yaml');
    fs.writeFileSync(recipe, ['rules:', '  vision.**: {keep: float}', '  decoder.**: {mode: weight, bits: 4, algorithm: rtn}', '  decoder.model.layers.*.mlp.**: {keep: float}', ''].join('\n'));
    const out = path.join(dir, 'recipe-q');
    const r = await cli(['quantize', optimum, '-o', out, '--calibration', calib, '--eval-data', evalSet, '--recipe', recipe, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const q = JSON.parse(r.stdout) as PipelineQuantizeResult;
    assert.deepEqual(fs.readFileSync(path.join(out, 'onnx', 'vision_encoder.onnx')), fs.readFileSync(path.join(optimum, 'onnx', 'vision_encoder.onnx')), 'vision kept float, byte for byte');
    assert.equal(q.components.find((c) => c.role === 'vision')!.recipe, 'float');
    const dec = JSON.parse(fs.readFileSync(path.join(out, 'onnx', 'decoder_model_merged.onnx.report.json'), 'utf8')) as { nodes: Array<{ node: string; modulePath: string; how?: string; skipped?: string }> };
    const mlp = dec.nodes.filter((n) => /\.mlp\./.test(n.modulePath));
    // One decision a node, whichever pass (the planner or the If-branch pass) made it: the branches hold
    // nodes of the same names, one of each per branch.
    const merged = loadModel(path.join(optimum, 'onnx', 'decoder_model_merged.onnx')).model;
    assert.equal(mlp.length, [...walkGraphs(merged.graph!)].flatMap(({ graph }) => graph.node ?? []).filter((n) => n.op_type === 'MatMul' && /\/mlp\//.test(n.name ?? '')).length);
    assert.ok(mlp.length >= 12 && mlp.every((n) => !n.how && /recipe/.test(n.skipped ?? '')), mlp.map((n) => `${n.modulePath}: ${n.skipped ?? n.how}`).join('\n'));
    const attn = dec.nodes.filter((n) => /self_attn\.q_proj/.test(n.modulePath) && n.how);
    assert.ok(attn.length === 4 && attn.every((n) => /\(rtn/.test(n.how!)), attn.map((n) => n.how).join('\n'));
    assert.ok(q.judged.tokens.agreement >= 0.9);
    fs.writeFileSync(recipe, 'rules:\n  language_model.**: {mode: weight}\n');
    const bad = await cli(['quantize', optimum, '-o', path.join(dir, 'bad'), '--calibration', calib, '--recipe', recipe]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /pipeline\.yaml:2: 'language_model\.\*\*': a pipeline recipe starts each pattern with its component/);
    const mode = await cli(['quantize', optimum, '-o', path.join(dir, 'bad'), '--calibration', calib, '--mode', 'static']);
    assert.equal(mode.code, 2);
    assert.match(mode.stderr, /a pipeline's schemes come from its recipe, not --mode/);
  });

  it('the merged decoder\'s If branches take weight INT8 and dynamic INT8 too (each shared weight written once), and generate as float does', async () => {
    for (const [scheme, how] of [['{bits: 8}', /int8 per-channel|MatMulNBits int8|GatherBlockQuantized/], ['{mode: dynamic}', /^dynamic int8/]] as const) {
      const recipe = path.join(dir, 'branches.yaml');
      fs.writeFileSync(recipe, ['rules:', '  vision.**: {keep: float}', `  decoder.**: ${scheme}`, ''].join('\n'));
      const out = path.join(dir, `branches-${scheme.replace(/\W+/g, '')}`);
      const r = await cli(['quantize', optimum, '-o', out, '--calibration', calib, '--eval-data', evalSet, '--recipe', recipe, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const dec = JSON.parse(fs.readFileSync(path.join(out, 'onnx', 'decoder_model_merged.onnx.report.json'), 'utf8')) as { nodes: Array<{ opType: string; how?: string }>; sizeBefore: number; sizeAfter: number };
      const matmuls = dec.nodes.filter((n) => n.opType === 'MatMul' && n.how);
      // Both branches' layers (every projection read twice), the second reader of each weight sharing it.
      assert.ok(matmuls.length >= 28 && matmuls.every((n) => how.test(n.how!)), matmuls.map((n) => n.how).join('\n'));
      assert.ok(matmuls.filter((n) => /shared/.test(n.how!)).length >= matmuls.length / 2 - 1, matmuls.map((n) => n.how).join('\n'));
      assert.ok(dec.sizeAfter < 0.4 * dec.sizeBefore, `${dec.sizeBefore} -> ${dec.sizeAfter}`);
      const q = JSON.parse(r.stdout) as PipelineQuantizeResult;
      console.log(`      decoder ${scheme}: tokens ${(q.judged.tokens.agreement * 100).toFixed(1)}% reproduced, decoder ${(dec.sizeBefore / 1024).toFixed(0)} -> ${(dec.sizeAfter / 1024).toFixed(0)} KiB`);
      assert.ok(q.judged.tokens.agreement >= 0.9, `${q.judged.tokens.agreement}`);
    }
  });

  it('static INT8 on the merged decoder: its with-past branch (most generation steps) calibrated on the steps that take it and quantized inside it, the first-step branch reading the same int8 weights', async () => {
    const recipe = path.join(dir, 'static-decoder.yaml');
    fs.writeFileSync(recipe, ['rules:', '  vision.**: {keep: float}', '  decoder.**: {mode: static}', ''].join('\n'));
    const out = path.join(dir, 'static-decoder');
    const r = await cli(['quantize', optimum, '-o', out, '--calibration', calib, '--eval-data', evalSet, '--recipe', recipe, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const dec = JSON.parse(fs.readFileSync(path.join(out, 'onnx', 'decoder_model_merged.onnx.report.json'), 'utf8')) as { quantized: string[]; warnings: string[]; sizeBefore: number; sizeAfter: number };
    // Generation's first step takes the else branch (no cache), every later one the then branch.
    assert.ok(dec.warnings.some((w) => /If '.*': (\d+) of its (\d+) calibration samples take its then branch \(the rest are left out of calibration\), so its \d+ layers are calibrated and quantized inside it/.test(w)), dec.warnings.join('\n'));
    assert.ok(dec.warnings.some((w) => /its else branch reads the \d+ weights it shares with the quantized one from their int8 copies/.test(w)), dec.warnings.join('\n'));
    assert.ok(dec.quantized.length >= 14, dec.quantized.join());
    const ifNode = loadModel(path.join(out, 'onnx', 'decoder_model_merged.onnx')).model.graph!.node!.find((n) => n.op_type === 'If')!;
    const count = (b: string, op: string) => [...walkGraphs(attrGraph(ifNode, b)!)].reduce((a, { graph }) => a + (graph.node ?? []).filter((n) => n.op_type === op).length, 0);
    assert.ok(count('then_branch', 'QuantizeLinear') >= 14 && count('else_branch', 'QuantizeLinear') === 0);
    assert.ok(dec.sizeAfter < 0.5 * dec.sizeBefore, `${dec.sizeBefore} -> ${dec.sizeAfter}`);
    const q = JSON.parse(r.stdout) as PipelineQuantizeResult;
    console.log(`      decoder static: tokens ${(q.judged.tokens.agreement * 100).toFixed(1)}% reproduced, decoder ${(dec.sizeBefore / 1024).toFixed(0)} -> ${(dec.sizeAfter / 1024).toFixed(0)} KiB`);
    assert.ok(q.judged.tokens.agreement >= 0.9, `${q.judged.tokens.agreement}`);
  });

  it('sensitivity of a pipeline: its components in one tree, each measured on what generation feeds it', async () => {
    const r = await cli(['sensitivity', optimum, '--calibration', calib]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /layers, local method, vision static 8-bit, decoder weight 4-bit gptq, 16 samples/);
    const rep = JSON.parse(fs.readFileSync(`${optimum}.sensitivity.json`, 'utf8')) as { tree: { children: Array<{ name: string; children: Array<{ name: string }> }> }; layers: Array<{ name: string; rank: number }>; pipeline: { components: Array<{ role: string; layers: number; skipped?: string }> } };
    assert.deepEqual(rep.tree.children.map((c) => c.name), ['vision', 'decoder']);
    assert.deepEqual(rep.tree.children[0].children.map((c) => c.name).sort(), ['multi_modal_projector', 'vision_model']);
    assert.ok(rep.layers.some((l) => l.name === 'decoder.model.layers.0.mlp.down_proj'), rep.layers.map((l) => l.name).join(', '));
    assert.deepEqual([...rep.layers.map((l) => l.rank)].sort((a, b) => a - b), rep.layers.map((_, i) => i + 1), 'ranked across components');
    assert.match(rep.pipeline.components.find((c) => c.role === 'embedding')!.skipped!, /lookup table/);
  });

  it('image files feed the vision model, prepared as the pipeline\'s preprocessor_config.json says (or the data folder\'s preprocess.json)', async () => {
    const data = path.join(dir, 'png-data');
    fs.mkdirSync(data);
    for (let k = 0; k < 2; k++) {
      const png = new PNG({ width: 64, height: 64 });
      for (let i = 0; i < png.data.length; i += 4) png.data.set([k ? 255 : 0, 51, 204, 255], i);
      fs.writeFileSync(path.join(data, `photo_${k}.png`), PNG.sync.write(png));
    }
    fs.writeFileSync(path.join(data, 'prompts.json'), JSON.stringify([[1, 2, 3], [1, 2, 4]]));
    const p = detectPipeline(model);
    // the pipeline's preprocessor_config.json: mean 0, std 1 after rescaling by 1/255
    const [a, b] = loadPipelineSamples(data, Infinity, p);
    assert.deepEqual(a.pixels!.dims, [1, 3, 32, 32]);
    const at = (t: typeof a, c: number) => Number((t.pixels!.data as Float32Array)[c * 32 * 32]);
    assert.deepEqual([at(a, 0), at(a, 1), at(a, 2), at(b, 0)].map((v) => Number(v.toFixed(5))), [0, 0.2, 0.8, 1]);
    assert.deepEqual(b.prompt, [1, 2, 4]);
    fs.writeFileSync(path.join(data, 'preprocess.json'), JSON.stringify({ mean: 0.5, std: 0.5 }));
    assert.equal(Number(at(loadPipelineSamples(data, Infinity, p)[1], 0).toFixed(5)), 1); // (1 − 0.5) / 0.5
    assert.throws(() => loadPipelineSamples(data, Infinity, { ...p, components: p.components.filter((c) => c.role !== 'vision') }), /holds image files, but the pipeline has no vision model/);
    // and the whole path: compare generates on the images
    const c = await cli(['compare', model, model, '--data', data, '--json']);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(JSON.parse(c.stdout).tokens.agreement, 1);
  });

  it('text prompts go through the pipeline\'s tokenizer.json, and answers are reported in words', async () => {
    const data = path.join(dir, 'text-data');
    fs.mkdirSync(data);
    for (const f of fs.readdirSync(evalSet).filter((x) => /^pixel_values_[0-3]\.npy$/.test(x))) fs.copyFileSync(path.join(evalSet, f), path.join(data, f));
    fs.writeFileSync(path.join(data, 'prompts.txt'), 'colour place\n');
    const samples = loadPipelineSamples(data, Infinity, detectPipeline(model));
    assert.equal(samples.length, 4);
    assert.deepEqual(samples[0].prompt, [10, 11]); // the prompt the model was trained on, in words
    const c = await cli(['compare', model, model, '--data', data]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /sample 0: "(red|green|blue|white) (top|bottom)-(left|right)" \(the same\)/);
    // a folder without a tokenizer.json cannot read text prompts, and says what to give instead
    const bare = path.join(dir, 'no-tokenizer');
    fs.cpSync(model, bare, { recursive: true });
    fs.rmSync(path.join(bare, 'tokenizer.json'));
    assert.throws(() => loadPipelineSamples(data, Infinity, detectPipeline(bare)), /prompts\.txt: holds text prompts, but .*no-tokenizer has no tokenizer\.json: give token ids/);
  });

  it('refuses random calibration for a pipeline, and an output folder that is not empty', async () => {
    const r = await cli(['quantize', model, '-o', path.join(dir, 'r'), '--calibration', 'random:4']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /a pipeline is calibrated by generation/);
    const busy = await cli(['quantize', model, '-o', calib, '--calibration', calib]);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /exists and is not an empty folder/);
  });
});
