import * as ort from 'onnxruntime-node';
import { CancelledError } from '../base/errors';
import { halfToFloat } from '../onnx/half';
import type { GraphProto } from '../onnx/proto';
import type { VariantRunner } from './pinned-session';

type Feeds = Record<string, ort.Tensor>;

/**
 * Small samples of a model whose inputs have a free first axis run stacked along it, up to STACK_MAX at a
 * time. On a model that runs in a fraction of a millisecond onnxruntime's cost per run and per output
 * tensor is most of a pass (the transformer fixture's MinMax variant, 64 samples: 10.8 ms one by one,
 * 5.1 ms in stacks of 16; the tiny VLM's 28.4 against 18.9 ms; scratch). Only statistics that do not care
 * which sample a value came from may be taken this way (extremes, histograms).
 */
export const STACK_MAX = 16;

/** A sample's inputs at most this large (bytes) may be stacked (a 64×64 RGB image is 48 KiB). */
const STACK_SAMPLE_BYTES = 64 * 1024;

/**
 * A stack's fetched values (and the model's own outputs) at most this large (bytes). Sizes, not run times,
 * decide, so that the same model and data always run the same way (a histogram binned a stack at a time
 * grows its bins in another order than one binned sample by sample).
 */
const STACK_OUTPUT_BYTES = 8 * 2 ** 20;

/**
 * Whether samples like `first` may be stacked for `graph`: each of its inputs is declared with a free first
 * axis (a named or unknown dimension), and each feed is one sample deep, numeric, and small.
 */
export function stackable(graph: GraphProto, first: Feeds, count: number): boolean {
  if (count < 3) return false;
  const declared = new Map((graph.input ?? []).map((v) => [v.name ?? '', v]));
  let bytes = 0;
  for (const [name, t] of Object.entries(first)) {
    const dims = declared.get(name)?.type?.tensor_type?.shape?.dim;
    if (!dims?.length || t.dims.length !== dims.length || t.dims[0] !== 1 || t.type === 'string') return false;
    const d0 = dims[0];
    if (d0.dim_value !== undefined && d0.dim_value !== null && Number(d0.dim_value) !== 0) return false;
    bytes += (t.data as ArrayBufferView).byteLength;
  }
  return Object.keys(first).length > 0 && bytes <= STACK_SAMPLE_BYTES;
}

/** Same-shaped feeds stacked along their first axis; undefined when their shapes or types differ. */
export function stackFeeds(group: Feeds[]): Feeds | undefined {
  const names = Object.keys(group[0]);
  const out: Feeds = {};
  for (const name of names) {
    const t0 = group[0][name];
    const shape = t0.dims.join('x');
    if (group.some((g) => g[name]?.type !== t0.type || g[name].dims.join('x') !== shape || Object.keys(g).length !== names.length)) return undefined;
    const src = t0.data as Float32Array;
    const data = new (src.constructor as Float32ArrayConstructor)(src.length * group.length);
    group.forEach((g, j) => data.set(g[name].data as Float32Array, j * src.length));
    out[name] = new ort.Tensor(t0.type, data, [t0.dims[0] * group.length, ...t0.dims.slice(1)]);
  }
  return out;
}

/**
 * Whether each of `names` in `stacked` (a run of `count` samples, the `at`-th of which gave `single` alone)
 * holds `single`'s values in that sample's place: the model treats its first axis as samples. Float values
 * within a small share of their magnitude (a stacked matrix product may add in another order), others
 * exactly.
 */
export function sliceMatches(single: Feeds, stacked: Feeds, names: string[], count: number, at: number): boolean {
  return names.every((n) => {
    const a = single[n], b = stacked[n];
    if (!a || !b || a.type !== b.type || a.type === 'string' || !a.dims.length || a.dims.length !== b.dims.length) return false;
    if (b.dims[0] !== a.dims[0] * count || a.dims.slice(1).join('x') !== b.dims.slice(1).join('x')) return false;
    const all = b.data as ArrayLike<number | bigint> & { subarray: (s: number, e: number) => ArrayLike<number | bigint> };
    let x = a.data as ArrayLike<number | bigint>, y = all.subarray(at * x.length, (at + 1) * x.length);
    if (a.type === 'float16') [x, y] = [Float32Array.from(x as Uint16Array, halfToFloat), Float32Array.from(y as Uint16Array, halfToFloat)];
    else if (!(a.data instanceof Float32Array || a.data instanceof Float64Array)) {
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
      return true;
    }
    let scale = 0;
    for (let i = 0; i < x.length; i++) scale = Math.max(scale, Math.abs(x[i] as number));
    const tol = 1e-3 * scale + 1e-6;
    for (let i = 0; i < x.length; i++) if (!(Math.abs((x[i] as number) - (y[i] as number)) <= tol) && x[i] === x[i]) return false;
    return true;
  });
}

const bytesOf = (out: Feeds) => Object.values(out).reduce((a, t) => a + ((t.data as ArrayBufferView).byteLength ?? 0), 0);
const only = (out: Feeds, names: string[]) => Object.fromEntries(names.filter((n) => n in out).map((n) => [n, out[n]]));

/**
 * Runs every sample, stacked where that gives the same values (see stackable): the first alone; the
 * second alone with the model's own outputs `check`; then the second with the next ones stacked, kept only
 * if its outputs hold the second's alone in its place, and the last's (run alone too) in theirs: a model
 * that mixes the samples of a stack, even only forward along them (a cumulative sum), shows it there. A
 * stack that differs or fails, or outputs too large to stack, and the rest run one by one. `handle` gets
 * each run's `fetch` values, its feeds (stacked or not) and the index of its last sample. Returns how many
 * samples ran.
 */
export async function runStacked(
  samples: Iterator<Feeds>, first: Feeds, s: VariantRunner, fetch: string[], check: string[],
  handle: (out: Feeds, feeds: Feeds, last: number) => void | Promise<void>, signal?: AbortSignal,
): Promise<number> {
  let i = 0;
  const alone = async (f: Feeds) => {
    if (signal?.aborted) throw new CancelledError();
    await handle(await s.run(f, fetch), f, i++);
  };
  await alone(first);
  let next = samples.next();
  if (next.done) return i;
  const probe = next.value;
  const both = [...new Set([...fetch, ...check])];
  const single = await s.run(probe, both);
  const take = (): Feeds[] => {
    const group: Feeds[] = [];
    while (group.length < STACK_MAX && !(next = samples.next()).done) group.push(next.value);
    return group;
  };
  // The first stack: the probe and the samples after it, run stacked and the stack's last alone too.
  const group = check.length && bytesOf(single) * STACK_MAX <= STACK_OUTPUT_BYTES ? [probe, ...take()] : [probe];
  const stacked = group.length > 1 ? stackFeeds(group) : undefined;
  const out = stacked && await s.run(stacked, both).catch((e: unknown) => { if (e instanceof CancelledError) throw e; return undefined; });
  const last = out && await s.run(group[group.length - 1], both);
  if (!(stacked && out && last && sliceMatches(single, out, check, group.length, 0) && sliceMatches(last, out, check, group.length, group.length - 1))) {
    // The probe's own run stands; the rest of its group, and every sample after, run one by one.
    await handle(only(single, fetch), probe, i++);
    for (const f of group.slice(1)) await alone(f);
    for (next = samples.next(); !next.done; next = samples.next()) await alone(next.value);
    return i;
  }
  i += group.length - 1;
  await handle(only(out, fetch), stacked, i++);
  for (let g = take(); g.length; g = take()) {
    if (signal?.aborted) throw new CancelledError();
    const stacked = g.length > 1 ? stackFeeds(g) : undefined;
    if (!stacked) { for (const f of g) await alone(f); continue; }
    i += g.length - 1;
    await handle(await s.run(stacked, fetch), stacked, i++);
  }
  return i;
}
