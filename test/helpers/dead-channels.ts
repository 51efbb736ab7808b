import assert from 'node:assert/strict';
import path from 'node:path';
import { openCalibration } from '../../src/core/calib/data';
import { Rng } from '../../src/core/calib/rng';
import { GraphView } from '../../src/core/onnx/graph';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { readTensor, toFloat32 } from '../../src/core/onnx/tensor';
import { findPrunableLayers, writeFloatTensor, type PrunableLayer } from '../../src/core/prune/layers';
import { pruneModel } from '../../src/core/prune/prune-model';
import { ChannelGraph } from '../../src/core/prune/structured/channel-graph';
import { withExtraOutputs } from '../../src/core/runtime/expose-outputs';
import { feedsFor, runOrt } from './util';
import { probeShapes } from '../../src/core/prune/structured/structured';

/** Zeroes index `i` along `axis` of a stored float tensor (initializer or Constant node value), in place. */
function zeroSlice(t: Parameters<typeof writeFloatTensor>[0], dims: number[], axis: number, indices: Set<number>): void {
  const v = Float32Array.from(toFloat32(readTensor(t)));
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  for (let f = 0; f < v.length; f++) if (indices.has(Math.floor(f / inner) % dims[axis])) v[f] = 0;
  writeFloatTensor(t, v);
}

/**
 * The dead-channel oracle's first half: picks `share` of the channel sets of every prunable family of a
 * real model (seeded), and makes them truly dead by zeroing every weight slice they own — the writers' rows
 * and biases and, what makes them dead, every reader's input columns — so the model's outputs no longer
 * depend on them. Structured pruning at the same share must then remove exactly these and leave the
 * outputs as they were. Writes the model with dead channels to `output`; returns how many sets died.
 */
export async function killChannelSets(input: string, output: string, share: number, seed = 1, data = 'random:1'): Promise<{ families: number; sets: number }> {
  const loaded = loadModel(input);
  const graph = loaded.model.graph!;
  const view = new GraphView(graph);
  const { layers } = findPrunableLayers(view, loaded.loc, []);
  const shapes = await probeShapes(loaded, openCalibration(data, graph, { maxSamples: 1 }), 'cpu', {});
  const g = new ChannelGraph(view, shapes, layers, false);
  g.analyze();
  const families = new Map<string, number[]>();
  for (const s of g.sets()) if (!s.pinned) (families.get(s.family) ?? families.set(s.family, []).get(s.family)!).push(s.id);
  const rng = new Rng(seed);
  const dead = new Set<number>();
  let touched = 0;
  for (const ids of families.values()) {
    const k = Math.floor(ids.length * share + 1e-9);
    if (ids.length < 2 || k === 0) continue;
    touched++;
    const pool = [...ids];
    for (let j = 0; j < k; j++) dead.add(pool.splice(rng.int(pool.length), 1)[0]);
  }
  // Per weight (and bias) and axis: the indices to zero.
  const cuts = new Map<string, { dims: number[]; axis: number; indices: Set<number> }>();
  const cut = (name: string, dims: number[], axis: number, i: number) => {
    const key = `${name}|${axis}`;
    (cuts.get(key) ?? cuts.set(key, { dims, axis, indices: new Set() }).get(key)!).indices.add(i);
  };
  for (const r of g.relations) {
    if (r.kind !== 'source' && r.kind !== 'absorb' && r.kind !== 'depthwise' && r.kind !== 'grouped') continue;
    const l: PrunableLayer = r.layer;
    const size = g.trackOf(r.tensor)!.size;
    for (let i = 0; i < size; i++) {
      if (!dead.has(g.elementRoot(r.tensor, i))) continue;
      // A grouped reader: the dead set holds this position in every group, so the whole column goes.
      if (r.kind === 'grouped') { cut(l.weight, l.dims, l.inAxis, i % r.width); continue; }
      cut(l.weight, l.dims, r.kind === 'absorb' ? l.inAxis : l.outAxis, i);
      const bias = r.kind !== 'absorb' && (l.opType === 'Conv' || l.opType === 'Gemm' || l.opType === 'ConvTranspose') ? l.node.input?.[2] : undefined;
      if (bias && view.constant(bias)) cut(bias, [l.outputs], 0, i);
    }
  }
  for (const [key, c] of cuts) zeroSlice(view.constant(key.slice(0, key.lastIndexOf('|')))!, c.dims, c.axis, c.indices);
  saveModel(loaded.model, output);
  return { families: touched, sets: dead.size };
}

/** A copy of a model that also outputs what feeds its final Sigmoid/Softmax (a saturated output can hide a difference). */
function withLogits(file: string): string {
  const m = loadModel(file).model;
  const outputs = new Set((m.graph!.output ?? []).map((o) => o.name));
  const pre = (m.graph!.node ?? []).filter((n) => ['Sigmoid', 'Softmax'].includes(n.op_type ?? '') && outputs.has(n.output![0])).map((n) => n.input![0]);
  const out = file.replace(/\.onnx$/, '.logits.onnx');
  saveModel(withExtraOutputs(m, pre), out);
  return out;
}

/**
 * The dead-channel oracle, whole: kills `share` of every family of `model`, prunes the result at that
 * share (exact counts), and asserts every output (and the logits before a final Sigmoid/Softmax) is
 * unchanged to float rounding on seeded inputs. Returns a line for the test log.
 */
export async function assertDeadChannelsPruneExactly(model: string, dir: string, share: number, seed = 7): Promise<string> {
  const killed = path.join(dir, `killed-${share}.onnx`);
  const pruned = path.join(dir, `pruned-${share}.onnx`);
  const k = await killChannelSets(model, killed, share, seed);
  assert.ok(k.sets > 0, 'no family to prune');
  const r = await pruneModel(killed, pruned, { method: 'structured', sparsity: share, roundTo: 1 });
  assert.ok(r.parametersAfter < r.parametersBefore, 'nothing was removed');
  const feeds = feedsFor(loadModel(killed).model.graph!, 5);
  const [a, b] = [await runOrt(withLogits(killed), feeds), await runOrt(withLogits(pruned), feeds)];
  const lines: string[] = [];
  for (const out of Object.keys(a)) {
    let worst = 0, scale = 0;
    for (let i = 0; i < a[out].length; i++) { worst = Math.max(worst, Math.abs(a[out][i] - b[out][i])); scale = Math.max(scale, Math.abs(a[out][i])); }
    lines.push(`${out}: max |diff| ${worst.toExponential(2)} of max |y| ${scale.toFixed(3)}`);
    assert.ok(worst <= 1e-5 * Math.max(1, scale), `${out} moved by ${worst} (max |y| ${scale})`);
  }
  return `${k.sets} dead sets in ${k.families} families; ${r.parametersBefore} -> ${r.parametersAfter} parameters; ${lines.join('; ')}`;
}
