import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { GraphProto } from '../../src/core/onnx/proto';
import { randomFeeds } from '../../src/core/calib/random-feeds';
import { profiledKernels } from '../../src/core/runtime/profile';

/** |a - b| <= atol + rtol * |b| elementwise, with the worst offender in the message. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-6, rtol = 1e-5, what = 'values'): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != ${expected.length}`);
  let worst = -1, worstErr = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    if (!(err <= 0) && (worst < 0 || err > worstErr)) { worst = i; worstErr = err; }
  }
  if (worst >= 0) assert.fail(`${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (atol ${atol}, rtol ${rtol})`);
}

export function tmpDir(prefix = 'quantlens-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Runs a model file in a real onnxruntime CPU session and returns every output as numbers. */
export async function runOrt(model: string | Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const s = typeof model === 'string'
    ? await ort.InferenceSession.create(model, { executionProviders: ['cpu'] })
    : await ort.InferenceSession.create(model, { executionProviders: ['cpu'] });
  try {
    const out = await s.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Float32Array.from(v.data as ArrayLike<number>, Number)]));
  } finally {
    await s.release();
  }
}

export function feedsFor(graph: GraphProto, seed = 7): Record<string, ort.Tensor> {
  return randomFeeds(graph, { seed });
}

/** Asserts that two runs gave bit-identical outputs. */
export function assertSameOutputs(a: Record<string, Float32Array>, b: Record<string, Float32Array>): void {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  for (const k of Object.keys(a)) assert.deepEqual(Buffer.from(a[k].buffer, a[k].byteOffset, a[k].byteLength), Buffer.from(b[k].buffer, b[k].byteOffset, b[k].byteLength), `output ${k} differs`);
}

/** Path of a third-party model shipped in an npm devDependency, or undefined when it is not installed. */
export function thirdPartyModel(rel: string): string | undefined {
  // The repo root is the cwd of `npm test`; packages' `exports` maps would hide plain asset files from require.resolve.
  const file = path.join(process.cwd(), 'node_modules', rel);
  return fs.existsSync(file) ? file : undefined;
}

/** The nodes onnxruntime ran, in the order it ran them (one profiled run after a warm-up, CPU). */
export async function executedOrder(model: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<string[]> {
  return (await profiledKernels(model, feeds, 1, { noQdqFusion: true, noMemPattern: true })).map((k) => k.node);
}

/**
 * Asserts that each of `nodes` ran before the last third of the model's own kernels (those not named
 * quantlens_*): a variant's statistics run as the graph makes their tensors, not after the whole graph.
 */
export function ranBeforeLastThird(order: string[], nodes: string[]): void {
  const model = order.filter((n) => !n.startsWith('quantlens_'));
  const lastThird = order.indexOf(model[Math.floor((2 / 3) * model.length)]);
  for (const n of nodes) assert.ok(order.indexOf(n) >= 0 && order.indexOf(n) < lastThird, `${n} ran at ${order.indexOf(n)} of ${order.length}; the model's last third starts at ${lastThird}`);
}
