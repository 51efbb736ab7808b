import type * as ort from 'onnxruntime-node';
import type { CalibrationData } from '../../calib/data';
import { CancelledError } from '../../base/errors';
import type { JobContext } from '../../base/jobs';
import { tensorValues } from '../../eval/metrics';
import type { ModelEditor } from '../../onnx/editor';
import type { LoadedModel } from '../../onnx/model-io';
import type { ModelProto } from '../../onnx/proto';
import { sessionForVariant } from '../../runtime/stage-variant';
import { GramSession } from '../../runtime/gram';
import { withExtraOutputs } from '../../runtime/expose-outputs';
import type { DevicePreference } from '../../runtime/session';
import { floatWeight } from '../../quant/weights';
import { channelRows, isPointwise } from '../layer-inputs';
import { readsRowsLayout, writeFloatTensor, type PrunableLayer } from '../layers';
import { solveSpd } from '../reconstruct';
import { applyShift } from './compensate';

/** A layer that lost inputs, with the original outputs it kept (undefined: all). */
export interface RefitTarget { layer: PrunableLayer; keptOutputs?: number[] }

/** Calibration passes at most: layers deeper than this many refit levels share a pass. */
export const MAX_REFIT_PASSES = 8;
/** Accumulator doubles one pass may hold (about 512 MiB); more layers than fit take further passes. */
const PASS_BUDGET = 64 * 1024 * 1024;
/** Float outputs held across passes at most (else the float model runs again each pass). */
const FLOAT_CACHE_BYTES = 1024 * 1024 * 1024;

/** [rows, C] from an activation: NCHW channels at every position (pointwise conv), or its last axis. */
function rowsOf(t: ort.Tensor, channelsFirst: boolean): { x: ArrayLike<number>; rows: number; cols: number } {
  const x = tensorValues(t);
  const dims = t.dims.map(Number);
  const c = channelsFirst ? dims[1] : dims[dims.length - 1];
  return { x: channelsFirst ? channelRows(x, dims) : x, rows: x.length / c, cols: c };
}

/**
 * Refit levels: a target's level is one more than the deepest target upstream of it, so fitting level by
 * level sees every upstream layer already refitted (what SparseGPT and AdaRound do layer after layer).
 */
function levels(model: ModelProto, targets: RefitTarget[]): Map<RefitTarget, number> {
  const byNode = new Map(targets.map((t) => [t.layer.node, t]));
  const depth = new Map<string, number>();
  const out = new Map<RefitTarget, number>();
  for (const n of model.graph!.node ?? []) {
    const d = Math.max(0, ...(n.input ?? []).map((i) => depth.get(i) ?? 0));
    const t = byNode.get(n);
    if (t) out.set(t, d + 1);
    for (const o of n.output ?? []) depth.set(o, t ? d + 1 : d);
  }
  return out;
}

/**
 * Sequential least-squares refit of layers that lost input channels, against the float model: each
 * layer's kept weights and bias are fitted so that, fed what the *pruned* model now gives it, it
 * reproduces the float layer's output, min ‖Y − [X̂, 1]·[W; b]‖ over the calibration data. Unlike a refit
 * from float inputs alone, this also undoes what pruning upstream did to the layer's inputs. The float
 * and pruned models run side by side on each sample; only [S+1]² and [S+1, O] sums are kept per layer.
 * MatMul (rows of features) and pointwise Conv only. Returns the module paths refitted.
 */
export async function refitPaired(
  floatModel: ModelProto, editor: ModelEditor, loaded: LoadedModel, targets: RefitTarget[], data: CalibrationData, device: DevicePreference, damp: number, ctx: JobContext = {},
): Promise<string[]> {
  const model = loaded.model;
  const level = levels(model, targets);
  const maxLevel = [...level.values()].reduce((a, x) => Math.max(a, x), 0);
  // Levels share a pass when there are more than MAX_REFIT_PASSES of them (contiguous runs of levels).
  const passOf = (t: RefitTarget) => Math.floor(((level.get(t)! - 1) * Math.min(MAX_REFIT_PASSES, maxLevel)) / maxLevel);
  const passes: Array<{ pass: number; targets: RefitTarget[]; need: number }> = [];
  const view0 = editor.view();
  for (const t of [...targets].sort((a, b) => level.get(a)! - level.get(b)!)) {
    const p = passOf(t);
    const dims = (view0.stored(t.layer.weight)?.dims ?? []).map(Number);
    const S = dims[t.layer.inAxis] ?? 0, O = dims[t.layer.outAxis] ?? 0;
    const need = (S + 1) * (S + 1 + O);
    let last = passes[passes.length - 1];
    if (!last || last.pass !== p || last.need + need > PASS_BUDGET) passes.push((last = { pass: p, targets: [], need: 0 }));
    last.targets.push(t);
    last.need += need;
  }
  const floatNames = [...new Set(targets.map((t) => t.layer.node.output![0]))];
  const floatSession = await sessionForVariant(withExtraOutputs(floatModel, floatNames), loaded, device);
  const gram = await GramSession.open();
  // The float outputs are the same every pass: held after the first when they fit FLOAT_CACHE_BYTES.
  const cache: Array<Record<string, ort.Tensor>> = [];
  let cached = 0, caching = true;
  const reference = async (feeds: Record<string, ort.Tensor>, i: number, want: string[]) => {
    if (cache[i] && want.every((n) => cache[i][n])) return cache[i];
    const out = await floatSession.session.run(feeds, caching ? floatNames : want);
    if (caching) {
      cached += Object.values(out).reduce((a, t) => a + (t.data as Float32Array).byteLength, 0);
      if (cached > FLOAT_CACHE_BYTES) { caching = false; cache.length = 0; } else cache[i] = out;
    }
    return out;
  };
  const done: string[] = [];
  const inputs = new Set((model.graph!.input ?? []).map((v) => v.name));
  try {
    for (let p = 0; p < passes.length; p++) {
      if (ctx.signal?.aborted) throw new CancelledError();
      ctx.onProgress?.({ stage: 'reconstruct', fraction: p / passes.length, message: `refit pass ${p + 1}/${passes.length}` });
      const group = passes[p].targets;
      const view = editor.view();
      const fits = group.map((t) => {
        const w = view.stored(t.layer.weight)!;
        const dims = (w.dims ?? []).map(Number);
        const S = dims[t.layer.inAxis], O = dims[t.layer.outAxis];
        return { t, S, O, a: new Float64Array((S + 1) * (S + 1)), b: new Float64Array((S + 1) * O), rows: 0 };
      });
      const names = [...new Set(group.flatMap((t) => [t.layer.node.input![0], t.layer.node.output![0]]).filter((n) => !inputs.has(n)))];
      const pruned = await sessionForVariant(withExtraOutputs(model, names), loaded, device);
      try {
        let i = 0;
        for (const feeds of data.samples()) {
          if (ctx.signal?.aborted) throw new CancelledError();
          const ref = await reference(feeds, i++, [...new Set(group.map((t) => t.layer.node.output![0]))]);
          const now = await pruned.session.run(feeds, names);
          for (const f of fits) {
            const l = f.t.layer, conv = isPointwise(l);
            const xin = now[l.node.input![0]] ?? feeds[l.node.input![0]];
            const x = rowsOf(xin, conv), y = rowsOf(ref[l.node.output![0]], conv), yh = rowsOf(now[l.node.output![0]], conv);
            if (x.cols !== f.S || yh.cols !== f.O || y.rows !== x.rows) continue;
            await accumulate(gram, f, x.x, y.x, y.cols, yh.x, x.rows, f.t.keptOutputs);
          }
        }
      } finally {
        await pruned.release();
      }
      for (const f of fits) {
        if (!f.rows) continue;
        const l = f.t.layer;
        const t = view.stored(l.weight)!;
        const { toKN, fromKN } = readsRowsLayout({ ...l, dims: (t.dims ?? []).map(Number) });
        const w = toKN(floatWeight(view, l.weight, loaded.loc, true)!.data.slice());
        const delta = solveDamped(f.a, f.b, f.S + 1, f.O, damp);
        if (!delta) continue;
        for (let k = 0; k < f.S * f.O; k++) w[k] += delta[k];
        writeFloatTensor(t, fromKN(w), (t.dims ?? []).map(Number));
        applyShift(editor, editor.view(), loaded.loc, l, delta.subarray(f.S * f.O), undefined);
        done.push(l.name);
      }
    }
  } finally {
    await floatSession.release();
    await gram.release();
  }
  return done;
}

/** Adds one sample's rows to [X̂,1]ᵀ[X̂,1] and [X̂,1]ᵀ(Y_kept − Ŷ), the products computed by onnxruntime. */
async function accumulate(gram: GramSession, f: { S: number; O: number; a: Float64Array; b: Float64Array; rows: number }, x: ArrayLike<number>, y: ArrayLike<number>, yCols: number, yh: ArrayLike<number>, rows: number, kept?: number[]): Promise<void> {
  const { S, O } = f;
  const S1 = S + 1;
  const xa = new Float32Array(rows * S1);
  const r = new Float32Array(rows * O);
  for (let n = 0; n < rows; n++) {
    for (let s = 0; s < S; s++) xa[n * S1 + s] = x[n * S + s];
    xa[n * S1 + S] = 1;
    for (let o = 0; o < O; o++) r[n * O + o] = y[n * yCols + (kept ? kept[o] : o)] - yh[n * O + o];
  }
  const { xx, xr } = await gram.products(xa, r, rows, S1, O);
  for (let i = 0; i < xx.length; i++) f.a[i] += xx[i];
  for (let i = 0; i < xr.length; i++) f.b[i] += xr[i];
  f.rows += rows;
}

/** Solves the normal equations with damping on the weights' diagonal (not the intercept's). */
function solveDamped(gram: Float64Array, rhs: Float64Array, n: number, m: number, damp: number): Float64Array | undefined {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = (gram[i * n + j] + gram[j * n + i]) / 2; // exactly symmetric
  let mean = 0;
  for (let i = 0; i < n - 1; i++) mean += a[i * n + i] / Math.max(1, n - 1);
  for (let i = 0; i < n; i++) if (a[i * n + i] === 0) a[i * n + i] = 1; // a silent input: no change to its weights
  for (let d = damp; d < 10; d *= 10) {
    const ad = Float64Array.from(a);
    for (let i = 0; i < n - 1; i++) ad[i * n + i] += d * (mean || 1);
    const x = solveSpd(ad, rhs, n, m);
    if (x) return x;
  }
  return undefined;
}
