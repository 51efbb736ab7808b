import { GraphView } from '../onnx/graph';
import { attrInt, attrInts, attrString, intAttr } from '../onnx/attributes';
import { intsConstant } from '../onnx/scalar-constant';
import { DataType } from '../onnx/dtypes';
import { int64Tensor, makeTensor, readTensor, tensorDims } from '../onnx/tensor';
import { onnx, type ModelProto, type NodeProto, type TensorProto } from '../onnx/proto';
import { opsetImport } from '../onnx/editor';

/**
 * Local sensitivity on a window of the feature map. A conv layer's copy (the layer quantized, and the
 * region after it in float) costs about three layers' compute, on maps as large as the float model's. Run
 * on a centred window of about half of each side, beside a float copy of the region on the same window
 * (then the reference), the pair costs about half as much and measures the same thing: the noise of that
 * layer, carried through the same ops, on a smaller image (PaddleOCR det 320x640: windows of 16-40% of
 * the map). Only where every op treats each position alike or pools over all of them the same way (convs,
 * pools, norms, elementwise ops whose constants broadcast over the map), so the two copies see one
 * smaller image; a reshape, a matmul over positions or a constant laid out over the map keeps the whole map.
 */

// Ops whose result at a position depends only on nearby positions, or (the global pools, instance norm)
// on all of them alike: run on a window they compute the same function of a smaller image.
const SPATIAL = new Set(['Conv', 'MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool', 'BatchNormalization', 'InstanceNormalization', 'LRN', 'Pad']);
const UNARY = new Set(['Relu', 'LeakyRelu', 'PRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Clip', 'Elu', 'Selu', 'Celu', 'Softplus', 'Softsign', 'Erf', 'Exp', 'Log', 'Abs', 'Neg', 'Sqrt', 'Reciprocal', 'Identity', 'Cast', 'Gelu', 'Mish', 'ThresholdedRelu', 'Floor', 'Ceil', 'Round', 'Sign', 'Sin', 'Cos', 'QuantizeLinear', 'DequantizeLinear', 'Constant']);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean']);

/** Crop a spatial axis only from this size on, to about half of it; smaller maps cost little anyway. */
const MIN_SIDE = 32;
/** Windows are multiples of the largest power of two up to this that divides the axis, so strided convs, pools and upsampling inside the copy line up. */
const ALIGN = 32;
/** The pair of copies runs on twice the window: one that keeps more of the map than this saves little or nothing. */
const MAX_KEPT = 0.45;

/** Whether a tensor of `dims` is a map with a side long enough to window. */
export const windowable = (dims: readonly number[] | undefined) => !!dims && dims.length === 4 && (dims[2] >= MIN_SIDE || dims[3] >= MIN_SIDE);

/** The largest power of two, up to ALIGN, that divides n. */
const alignOf = (n: number) => { let a = 1; while (a < ALIGN && n % (2 * a) === 0) a *= 2; return a; };

/**
 * The window (height, width) of each of a layer's copy's external inputs that is cropped, for inputs of
 * `dims`; undefined where the copy stays whole. Inputs on coarser grids (a feature pyramid's upsampled
 * level) get the window scaled by their stride, so the copy's Resize and Concat still line up; per-channel
 * values (a squeeze-excite scale, [N, C, 1, 1]) are read whole.
 */
export function cropWindows(model: ModelProto, inputs: string[], dims: (name: string) => readonly number[] | undefined): Map<string, [number, number]> | undefined {
  const opset = opsetImport(model)?.version;
  if (!opset || Number(opset) < 10) return undefined; // Slice reads its window from inputs from opset 10
  const maps: Array<[string, number, number]> = [];
  for (const i of inputs) {
    const d = dims(i);
    if (!d || d.length !== 4) return undefined;
    if (d[2] !== 1 || d[3] !== 1) maps.push([i, d[2], d[3]]);
  }
  if (!maps.length) return undefined;
  const [H, W] = maps.reduce((a, m) => (m[1] > a[0] ? [m[1], m[2]] : a), [0, 0]);
  // Every map a power-of-two stride of the finest, the same on both axes.
  const strides = maps.map(([, h]) => H / h);
  if (maps.some(([, , w], k) => !Number.isInteger(strides[k]) || (strides[k] & (strides[k] - 1)) !== 0 || w * strides[k] !== W)) return undefined;
  const coarsest = Math.max(...strides);
  const side = (n: number) => {
    const a = alignOf(n);
    if (n < MIN_SIDE || a < coarsest) return n;
    return Math.max(a, Math.floor(n / 2 / a) * a);
  };
  const [h, w] = [side(H), side(W)];
  if (h * w > MAX_KEPT * H * W || !spatialOnly(model)) return undefined;
  const windows = new Map(maps.map(([i], k) => [i, [h / strides[k], w / strides[k]] as [number, number]]));
  return windowFits(model, windows, new Map(maps.map(([i, mh, mw]) => [i, [mh, mw] as [number, number]]))) ? windows : undefined;
}

/**
 * Whether the copy runs on the windows: each value's map size followed through the copy's ops, every
 * conv's and pool's kernel spanning at most half of its input, and the maps an op joins of one size (or
 * 1 x 1). A window is smaller than the map the model was made for: a valid 7 x 7 pool on a 4 x 4 window
 * would fail the whole merged run.
 */
function windowFits(model: ModelProto, windows: ReadonlyMap<string, [number, number]>, full: ReadonlyMap<string, [number, number]>): boolean {
  const g = model.graph!;
  const view = new GraphView(g);
  // Each value's size on the window and on the whole map ([rows, columns] of each).
  type Sizes = { win: [number, number]; full: [number, number] };
  const size = new Map<string, Sizes>([...windows].map(([k, w]) => [k, { win: w, full: full.get(k)! }]));
  const one: Sizes = { win: [1, 1], full: [1, 1] };
  const at = (i: string): Sizes | undefined => size.get(i) ?? (view.constant(i) ? undefined : one);
  for (const n of g.node ?? []) {
    const op = n.op_type ?? '';
    if (op === 'Constant') continue;
    const ins = (n.input ?? []).filter(Boolean);
    const x = at(ins[0] ?? '');
    let out: Sizes | undefined = x;
    if (op === 'Conv' || op === 'ConvTranspose' || (op.endsWith('Pool') && !op.startsWith('Global'))) {
      if (!x) return false;
      const weight = op.startsWith('Conv') ? view.constant(ins[1] ?? '') : undefined;
      const kernel = attrInts(n, 'kernel_shape') ?? (weight ? tensorDims(weight).slice(2) : undefined);
      if (!kernel || kernel.length !== 2) return false;
      const strides = attrInts(n, 'strides') ?? [1, 1], dil = attrInts(n, 'dilations') ?? [1, 1], pads = attrInts(n, 'pads') ?? [0, 0, 0, 0];
      const auto = attrString(n, 'auto_pad') ?? 'NOTSET';
      const span = (a: number) => (kernel[a] - 1) * dil[a] + 1;
      const axis = (len: number, a: number) => {
        if (op === 'ConvTranspose') return auto.startsWith('SAME') ? len * strides[a] : strides[a] * (len - 1) + (attrInts(n, 'output_padding')?.[a] ?? 0) + span(a) - pads[a] - pads[a + 2];
        if (auto.startsWith('SAME')) return Math.ceil(len / strides[a]);
        const padded = len + (auto === 'VALID' ? 0 : pads[a] + pads[a + 2]);
        if (padded < span(a)) return 0;
        const round = attrInt(n, 'ceil_mode', 0) ? Math.ceil : Math.floor;
        return round((padded - span(a)) / strides[a]) + 1;
      };
      // A kernel spanning more than half of a window narrower than its map (an ASPP conv dilated by 12 on
      // a 32-wide window) sees mostly padding there, where on the whole map it saw the image.
      if (op !== 'ConvTranspose' && [0, 1].some((a) => x.win[a] < x.full[a] && 2 * span(a) > x.win[a])) return false;
      out = { win: [axis(x.win[0], 0), axis(x.win[1], 1)], full: [axis(x.full[0], 0), axis(x.full[1], 1)] };
    } else if (op.startsWith('Global')) out = one;
    else if (op === 'Resize' || op === 'Upsample') {
      const scales = view.constant(op === 'Resize' && ins.length > 2 ? n.input![2] : ins[1] ?? '');
      const sc = scales ? Array.from(readTensor(scales).data as Float32Array, Number) : undefined;
      if (!x || !sc || sc.length !== 4) return false;
      const by = (s: [number, number]): [number, number] => [Math.floor(s[0] * sc[2]), Math.floor(s[1] * sc[3])];
      out = { win: by(x.win), full: by(x.full) };
    } else if (op === 'Pad') {
      const pads = (n.input ?? []).length > 1 ? intsConstant(view, undefined, n.input![1]) : attrInts(n, 'pads');
      if (!x || !pads || pads.length !== 8) return false;
      const by = (s: [number, number]): [number, number] => [s[0] + pads[2] + pads[6], s[1] + pads[3] + pads[7]];
      out = { win: by(x.win), full: by(x.full) };
    } else {
      // Ops that join maps: each a map of one size, or a per-channel value broadcast over it.
      const maps = ins.map(at).filter((m): m is Sizes => !!m && (m.win[0] !== 1 || m.win[1] !== 1));
      if (maps.some((m) => m.win[0] !== maps[0].win[0] || m.win[1] !== maps[0].win[1])) return false;
      out = maps[0] ?? one;
    }
    if (!out || out.win[0] < 1 || out.win[1] < 1) return false;
    for (const o of n.output ?? []) if (o) size.set(o, out);
  }
  return true;
}

/** Whether every node of the layer's copy treats positions alike (see SPATIAL), so it can run on a window. */
function spatialOnly(model: ModelProto): boolean {
  const g = model.graph!;
  const view = new GraphView(g);
  // A constant operand must broadcast over the map: a scalar, or trailing dims of 1 ([C, 1, 1]).
  const broadcasts = (name: string) => {
    const t = view.constant(name);
    if (!t) return true;
    const d = tensorDims(t);
    return d.reduce((a, b) => a * b, 1) === 1 || (d.length >= 2 && d.length <= 4 && d[d.length - 1] === 1 && d[d.length - 2] === 1);
  };
  return (g.node ?? []).every((n) => {
    const op = n.op_type ?? '';
    if ((n.domain ?? '') !== '' || (n.attribute ?? []).some((a) => a.g || a.graphs?.length)) return false;
    const channelAxis = () => { const a = attrInt(n, 'axis', 1); return a === 1 || a === -3; };
    switch (op) {
      case 'ConvTranspose': return !attrInts(n, 'output_shape')?.length;
      case 'Concat': case 'Split': return channelAxis();
      case 'Softmax': case 'LogSoftmax': return attrInt(n, 'axis') === 1;
      // Upsampling by constant scales; a Resize to given sizes, or to scales computed from shapes, is not.
      case 'Resize': case 'Upsample': return (n.input ?? []).length <= 3 ? (n.input ?? []).slice(1).every((i) => !i || view.constant(i)) : !n.input![3] && (!n.input![2] || !!view.constant(n.input![2]));
      case 'QuantizeLinear': case 'DequantizeLinear': return attrInt(n, 'axis', 1) >= 0 && attrInt(n, 'axis', 1) < 2;
      case 'PRelu': return broadcasts(n.input?.[1] ?? '');
      default:
        if (SPATIAL.has(op)) return op !== 'Pad' || (n.input ?? []).slice(1).every((i) => !i || view.constant(i));
        if (UNARY.has(op)) return true;
        return BINARY.has(op) && (n.input ?? []).every(broadcasts);
    }
  });
}

/** The constants every window's placement and Slice read: the spatial axes, and 0 and 2 for each. */
const SHARED = { axes: 'hw_axes', zero: 'zero', two: 'two' };

/** One window to cut: `tensor`'s centred `size`, named `name`; `grid` is the same for tensors of one map size (at the first sample), which share one placement. */
export interface Crop { tensor: string; size: [number, number]; name: string; grid: string }

/**
 * The nodes that place a centred window of `size` on the 4-d tensor `x`: its start and end on the two
 * spatial axes, from x's own shape at each run (a sample of another shape runs too), the whole axis where
 * the map is smaller than the window.
 */
function placement(x: string, size: [number, number], tag: string): { nodes: NodeProto[]; initializer: TensorProto[]; start: string; end: string } {
  const t = (s: string) => `${tag}/${s}`;
  const initializer = [makeTensor(t('size_f'), DataType.FLOAT, [2], Float32Array.from(size)), int64Tensor(t('size'), size)];
  const node = (op: string, input: string[], out: string, attribute: NodeProto['attribute'] = []): NodeProto => ({ name: t(out), op_type: op, input, output: [t(out)], attribute });
  const nodes = [
    node('Shape', [x], 'shape'),
    node('Gather', [t('shape'), SHARED.axes], 'hw'),
    node('Cast', [t('hw')], 'hw_f', [intAttr('to', DataType.FLOAT)]),
    node('Sub', [t('hw_f'), t('size_f')], 'spare'),
    node('Max', [t('spare'), SHARED.zero], 'spare_pos'),
    node('Div', [t('spare_pos'), SHARED.two], 'half'),
    node('Floor', [t('half')], 'start_f'),
    node('Cast', [t('start_f')], 'start', [intAttr('to', DataType.INT64)]),
    node('Add', [t('start'), t('size')], 'end'),
  ];
  return { nodes, initializer, start: t('start'), end: t('end') };
}

/**
 * One model that cuts the windows of `crops`, to merge beside the float model. Each grid's window is
 * placed once, from the tensor of that grid the float model makes first (`order`: its producer's index),
 * so no window waits for a later tensor; every tensor of the grid is sliced there.
 */
export function cropModel(base: ModelProto, crops: Crop[], order: (tensor: string) => number): ModelProto {
  const grids = new Map<string, Crop>();
  for (const c of crops) { const g = grids.get(c.grid); if (!g || order(c.tensor) < order(g.tensor)) grids.set(c.grid, c); }
  const placed = new Map([...grids].map(([k, c], i) => [k, placement(c.tensor, c.size, `grid${i}`)]));
  const shared = [int64Tensor(SHARED.axes, [2, 3]), makeTensor(SHARED.zero, DataType.FLOAT, [2], new Float32Array(2)), makeTensor(SHARED.two, DataType.FLOAT, [2], Float32Array.of(2, 2))];
  const slices: NodeProto[] = crops.map((c) => ({ name: c.name, op_type: 'Slice', input: [c.tensor, placed.get(c.grid)!.start, placed.get(c.grid)!.end, SHARED.axes], output: [c.name] }));
  return onnx.ModelProto.create({
    ir_version: base.ir_version, opset_import: base.opset_import,
    graph: {
      name: 'windows', node: [...[...placed.values()].flatMap((p) => p.nodes), ...slices], initializer: [...shared, ...[...placed.values()].flatMap((p) => p.initializer)],
      input: [...new Set(crops.map((c) => c.tensor))].map((name) => ({ name, type: { tensor_type: { elem_type: DataType.FLOAT } } })),
      output: crops.map((c) => ({ name: c.name })),
    },
  });
}

/** A copy of `model` reading `renames`' values instead of its graph inputs of those names. */
export function readingInstead(model: ModelProto, renames: ReadonlyMap<string, string>): ModelProto {
  const g = model.graph!;
  const r = (n: string) => renames.get(n) ?? n;
  return onnx.ModelProto.create({
    ...model,
    graph: onnx.GraphProto.create({
      ...g,
      input: (g.input ?? []).map((v) => ({ ...v, name: r(v.name ?? '') })),
      node: (g.node ?? []).map((n) => ({ ...n, input: (n.input ?? []).map(r) })),
    }),
  });
}
