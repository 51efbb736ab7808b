import type * as ort from 'onnxruntime-node';
import type { LoadedModel } from '../onnx/model-io';
import { onnx, type ModelProto } from '../onnx/proto';
import { sessionForVariant } from './stage-variant';
import type { DevicePreference, ModelSession, Provider, SessionOptions, VariantSessionOptions } from './session';

/**
 * A copy of the model whose graph inputs have the shapes of `feeds` (tensors, or only their dims) instead
 * of symbolic dimensions. The copy shares the original's nodes and tensors; only the inputs' types are new.
 */
export function pinInputs(model: ModelProto, feeds: Record<string, { dims: readonly number[] }>, freeFirstAxis = false): ModelProto {
  const g = model.graph!;
  const input = (g.input ?? []).map((v) => {
    const t = feeds[v.name ?? ''];
    const tt = v.type?.tensor_type;
    if (!t || !tt) return v;
    return onnx.ValueInfoProto.create({ ...v, type: { ...v.type, tensor_type: { ...tt, shape: { dim: t.dims.map((d, i) => (i === 0 && freeFirstAxis ? { dim_param: 'quantlens_stack' } : { dim_value: d })) } } } });
  });
  return onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...g, input }) });
}

/** What a loop over samples needs of a variant's session (see threadedVariantSession for one in a worker). */
export interface VariantRunner {
  provider: Provider;
  fallbackReason?: string;
  /** Runs on the pinned session when `feeds` have the first sample's shapes, else on one with the model's own dimensions. */
  run: (feeds: Record<string, ort.Tensor>, fetch?: string[]) => Promise<Record<string, ort.Tensor>>;
  release: () => Promise<void>;
}

export type PinnedSession = ModelSession & VariantRunner;

/**
 * A session for an edited copy of a model (a calibration or sensitivity variant), with its inputs pinned
 * to the first sample's shapes. onnxruntime's session set-up grows with the square of the node count
 * while dimensions are symbolic (PaddleOCR det's sensitivity graph, 5,500 nodes: 7.2 s, against 0.3 s
 * pinned); samples of one data set nearly always share a shape. One that does not runs on a second session
 * with the model's own dimensions, made when first needed.
 */
export async function pinnedVariantSession(
  model: ModelProto, loaded: LoadedModel, device: DevicePreference, first: Record<string, ort.Tensor>,
  optimization?: SessionOptions['optimization'], opts: VariantSessionOptions = {}, freeFirstAxis = false,
): Promise<PinnedSession> {
  const pinned = await sessionForVariant(pinInputs(model, first, freeFirstAxis), loaded, device, optimization, opts);
  // Inputs beside the model's own (a variant's extra scalars) have fixed shapes: only the pinned ones count
  // (and with freeFirstAxis, for stacked samples, all but their first axis).
  const pinnedDims = Object.entries(first).map(([k, t]) => [k, t.dims.slice(freeFirstAxis ? 1 : 0).join('x')] as const);
  const same = (feeds: Record<string, ort.Tensor>) => pinnedDims.every(([k, d]) => feeds[k]?.dims.slice(freeFirstAxis ? 1 : 0).join('x') === d);
  let other: Promise<Awaited<ReturnType<typeof sessionForVariant>>> | undefined;
  return {
    session: pinned.session, provider: pinned.provider, ...(pinned.fallbackReason ? { fallbackReason: pinned.fallbackReason } : {}),
    run: async (feeds, fetch) => {
      if (same(feeds)) return fetch ? pinned.session.run(feeds, fetch) : pinned.session.run(feeds);
      const s = await (other ??= sessionForVariant(model, loaded, device, optimization, opts));
      return fetch ? s.session.run(feeds, fetch) : s.session.run(feeds);
    },
    release: async () => {
      await pinned.release();
      if (other) await (await other).release();
    },
  };
}
