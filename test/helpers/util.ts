import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { GraphProto } from '../../src/core/onnx/proto';
import { randomFeeds } from '../../src/core/calib/random-feeds';
import { createSession } from '../../src/core/runtime/session';

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

/** The nodes onnxruntime ran, in the order it ran them (its profiler's kernel events, one run, CPU). */
export async function executedOrder(model: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-order-'));
  try {
    const { session } = await createSession(model, { device: 'cpu', noQdqFusion: true, noMemPattern: true, profileFilePrefix: path.join(dir, 'p') });
    await session.run(feeds);
    session.endProfiling();
    await session.release();
    const file = fs.readdirSync(dir).find((f) => f.endsWith('.json'))!;
    const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Array<{ cat?: string; name?: string }>;
    return events.filter((e) => e.cat === 'Node' && e.name?.endsWith('_kernel_time')).map((e) => e.name!.replace(/_kernel_time$/, ''));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
