import { DataType } from './dtypes';
import type { ModelEditor } from './editor';
import type { GraphProto, NodeProto } from './proto';
import { makeTensor } from './tensor';
import { walkGraphs } from './walk';
import { attrFloat, attrFloats, attrInt, attrInts, attrString, stringAttr } from './attributes';

/** The oldest opset the upgrade takes (loadModel reads older files at 7 first: legacy-opset.ts). */
export const OLDEST_UPGRADABLE_OPSET = 7;

/**
 * Why a model at opset 7 to 9 cannot be raised to 10 (undefined when it can): ops whose meaning changed in
 * a way the upgrade does not rewrite.
 */
export function upgradeBlocker(editor: ModelEditor): string | undefined {
  const from = editor.opset();
  if (from >= 10) return undefined;
  if (from < OLDEST_UPGRADABLE_OPSET) return `opset ${from} is older than QuantLens raises (${OLDEST_UPGRADABLE_OPSET} to 9, to 10)`;
  for (const { graph } of walkGraphs(editor.graph)) {
    const rank = new Map<string, number>();
    for (const t of graph.initializer ?? []) rank.set(t.name ?? '', (t.dims ?? []).length);
    for (const node of graph.node ?? []) {
      if ((node.domain ?? '') !== '') continue;
      // spatial=0 over [N, C] (a 1-D scale: ArcFace's feature BatchNormalization) is per channel, as at opset 9.
      if (node.op_type === 'BatchNormalization' && from < 9 && attrInt(node, 'spatial', 1) !== 1 && rank.get(node.input?.[1] ?? '') !== 1) return `BatchNormalization '${node.name}' normalises per element (spatial=0), which opset 9 dropped`;
      if (node.op_type === 'Scan' && from < 9) return `Scan '${node.name}' is Scan-8 (with a batch axis), which opset 9 changed`;
      if (NO_SUCCESSOR.has(node.op_type ?? '')) return `${node.op_type} '${node.name}' is an experimental op that opset 10 removed`;
    }
  }
  return undefined;
}

/** Experimental ops opset 10 removed without an equivalent the upgrade could write. */
const NO_SUCCESSOR = new Set(['GivenTensorFill', 'ConstantFill', 'GRUUnit', 'ATen']);

/**
 * Raises a model from opset 7, 8 or 9 to 10, the first with QuantizeLinear/DequantizeLinear and the QLinear*
 * kernels onnxruntime fuses Q/DQ pairs into (call `upgradeBlocker` first). What changed in between is
 * rewritten: Slice and TopK took their attributes as inputs (10); Upsample took its scales as an input (9)
 * and gave way to Resize, which means the same at opset 10; BatchNormalization dropped `spatial` (9).
 * The experimental ops opset 10 removed (ImageScaler in the ONNX model zoo's Tiny YOLOv2, Scale, Affine,
 * ScaledTanh, ParametricSoftplus, Crop, DynamicSlice) become the standard ops they stand for.
 * Everything else at 7 to 9 means the same at 10 (later versions only added types, attributes with the
 * old default, or broadcasting). Returns the ops rewritten.
 */
export function upgradeToOpset10(editor: ModelEditor): string[] {
  const from = editor.opset();
  if (from >= 10 || from < OLDEST_UPGRADABLE_OPSET) return [];
  const rewritten: string[] = [];
  for (const { graph } of walkGraphs(editor.graph)) {
    const { ints, floats } = constantsFor(editor, graph);
    const replaced = new Map<NodeProto, NodeProto[]>();
    for (const node of graph.node ?? []) {
      if ((node.domain ?? '') !== '') continue;
      const chain = experimentalAsStandard(node, floats, ints, (what) => editor.unique(`${node.output![0]}_${what}`));
      if (chain) {
        replaced.set(node, chain.map((n) => ({ ...n, name: editor.unique(`${node.name || node.op_type}/${n.op_type}`) })));
        rewritten.push(node.name ?? node.op_type!);
      } else if (node.op_type === 'BatchNormalization') {
        node.attribute = (node.attribute ?? []).filter((a) => a.name !== 'spatial');
      } else if (node.op_type === 'Upsample') {
        // Upsample-7 kept its scales in an attribute; Upsample-9's input is the same as Resize-10's.
        const scales = from < 9 ? floats(node, 'scales', attrFloats(node, 'scales') ?? []) : node.input![1];
        node.op_type = 'Resize';
        node.input = [node.input![0], scales];
        node.attribute = [stringAttr('mode', attrString(node, 'mode') ?? 'nearest')];
        rewritten.push(node.name ?? 'Upsample');
      } else if (node.op_type === 'Slice') {
        const [starts, ends, axes] = [attrInts(node, 'starts') ?? [], attrInts(node, 'ends') ?? [], attrInts(node, 'axes')];
        node.input = [node.input![0], ints(node, 'starts', starts), ints(node, 'ends', ends), ...(axes ? [ints(node, 'axes', axes)] : [])];
        node.attribute = [];
        rewritten.push(node.name ?? 'Slice');
      } else if (node.op_type === 'TopK') {
        node.input = [node.input![0], ints(node, 'k', [Number(attrInt(node, 'k') ?? 1)])];
        node.attribute = (node.attribute ?? []).filter((a) => a.name !== 'k');
        rewritten.push(node.name ?? 'TopK');
      }
    }
    if (replaced.size) graph.node = (graph.node ?? []).flatMap((n) => replaced.get(n) ?? [n]);
  }
  editor.requireOpset('', 10);
  return rewritten;
}

type Const = (node: NodeProto, what: string, v: number[], dims?: number[]) => string;

/**
 * The opset-10 nodes an experimental op stands for (undefined: not one of them), reading its input and
 * writing its output, with intermediate tensors named after the output. Attributes' defaults as in ONNX 1.4.
 */
function experimentalAsStandard(node: NodeProto, floats: Const, ints: Const, tensor: (what: string) => string): NodeProto[] | undefined {
  const [x] = node.input ?? [], [y] = node.output ?? [];
  const f = (name: string, fallback: number) => attrFloat(node, name, fallback);
  // y = x·a + b as Mul then Add, leaving out a multiply by 1 or an add of 0.
  const affine = (a: string | undefined, b: string | undefined): NodeProto[] => {
    const mid = a && b ? tensor('scaled') : y;
    return [...(a ? [{ op_type: 'Mul', input: [x, a], output: [mid] }] : []), ...(b ? [{ op_type: 'Add', input: [a ? mid : x, b], output: [y] }] : [])];
  };
  // y = a·g(b·x) for Tanh and Softplus.
  const around = (op: string): NodeProto[] => {
    const [inner, outer] = [tensor('inner'), tensor('outer')];
    return [
      { op_type: 'Mul', input: [x, floats(node, 'beta', [f('beta', 1)], [])], output: [inner] },
      { op_type: op, input: [inner], output: [outer] },
      { op_type: 'Mul', input: [outer, floats(node, 'alpha', [f('alpha', 1)], [])], output: [y] },
    ];
  };
  switch (node.op_type) {
    case 'ImageScaler': {
      const bias = attrFloats(node, 'bias');
      const scale = f('scale', 1);
      const chain = affine(scale === 1 ? undefined : floats(node, 'scale', [scale], []), bias?.some((v) => v !== 0) ? floats(node, 'bias', bias, [1, bias.length, 1, 1]) : undefined);
      return chain.length ? chain : [{ op_type: 'Identity', input: [x], output: [y] }];
    }
    case 'Scale': return [{ op_type: 'Mul', input: [x, floats(node, 'scale', [f('scale', 1)], [])], output: [y] }];
    case 'Affine': return affine(floats(node, 'alpha', [f('alpha', 1)], []), floats(node, 'beta', [f('beta', 0)], []));
    case 'ScaledTanh': return around('Tanh');
    case 'ParametricSoftplus': return around('Softplus');
    case 'Crop': {
      // border = [left, top, right, bottom]; scale = [height, width] of the kept region from (top, left).
      const [left, top, right, bottom] = attrInts(node, 'border') ?? [0, 0, 0, 0];
      const size = attrInts(node, 'scale');
      const end = (from: number, keep: number | undefined, cut: number) => (keep !== undefined ? from + keep : cut > 0 ? -cut : 2 ** 31 - 1);
      return [{ op_type: 'Slice', input: [x, ints(node, 'starts', [top, left]), ints(node, 'ends', [end(top, size?.[0], bottom), end(left, size?.[1], right)]), ints(node, 'axes', [2, 3])], output: [y] }];
    }
    case 'DynamicSlice': return [{ op_type: 'Slice', input: [...(node.input ?? [])], output: [y] }];
    default: return undefined;
  }
}

/** Makers of a rewritten node's constant inputs, named after the node (`<node>_<what>`), in `graph`. */
function constantsFor(editor: ModelEditor, graph: GraphProto): { ints: Const; floats: Const } {
  const base = (node: NodeProto, what: string) => `${node.name || node.output![0]}_${what}`;
  return {
    ints: (node, what, v, dims) => constant(editor, graph, base(node, what), DataType.INT64, v, dims),
    floats: (node, what, v, dims) => constant(editor, graph, base(node, what), DataType.FLOAT, v, dims),
  };
}

/** A constant for a rewritten input (1-D unless `dims` says); subgraphs get theirs as initializers of their own, so scoping stays right. */
function constant(editor: ModelEditor, graph: GraphProto, base: string, dtype: DataType.INT64 | DataType.FLOAT, v: number[], dims: number[] = [v.length]): string {
  const data = dtype === DataType.FLOAT ? Float32Array.from(v) : BigInt64Array.from(v.map((x) => BigInt(x)));
  return editor.addInitializer(makeTensor(base, dtype, dims, data), graph);
}

/**
 * Raises an opset-10 model to 11 (call `upgradeToOpset10` first below 10). Static INT8 needs 11: onnxruntime
 * quantizes the bias of a float Conv/Gemm that sits between a DequantizeLinear and a QuantizeLinear
 * itself (its WeightBiasQuantization pass), with a Round, which opset 10 lacks, so an opset-10 model
 * with such a layer fails to load. What changed at 11 is rewritten: Clip and Pad took their attributes
 * as inputs; Resize took an (empty) roi input and the coordinate mode Resize-10 implied (asymmetric, nearest
 * rounding down), as onnx's version converter writes it; the deprecated Scatter became ScatterElements.
 * (Upsample is already invalid at 10; `upgradeToOpset10` turns it into Resize.) Returns the ops rewritten.
 */
export function upgradeToOpset11(editor: ModelEditor): string[] {
  if (editor.opset() !== 10) return [];
  const rewritten: string[] = [];
  for (const { graph } of walkGraphs(editor.graph)) {
    const { ints, floats } = constantsFor(editor, graph);
    const scalar = (node: NodeProto, what: string, v: number) => floats(node, what, [v], []);
    for (const node of graph.node ?? []) {
      if ((node.domain ?? '') !== '') continue;
      const done = () => rewritten.push(node.name || node.op_type!);
      const given = (name: string) => { const v = attrFloat(node, name, NaN); return Number.isNaN(v) ? undefined : v; };
      if (node.op_type === 'Clip') {
        const [lo, hi] = [given('min'), given('max')];
        node.input = [node.input![0], lo === undefined ? '' : scalar(node, 'min', lo), ...(hi === undefined ? [] : [scalar(node, 'max', hi)])];
        while (node.input.length > 1 && !node.input[node.input.length - 1]) node.input.pop();
        node.attribute = [];
        done();
      } else if (node.op_type === 'Pad') {
        const value = given('value');
        node.input = [node.input![0], ints(node, 'pads', attrInts(node, 'pads') ?? []), ...(value ? [scalar(node, 'value', value)] : [])];
        node.attribute = (node.attribute ?? []).filter((a) => a.name === 'mode');
        done();
      } else if (node.op_type === 'Resize') {
        const mode = attrString(node, 'mode') ?? 'nearest';
        // roi is a required input at 11 (optional from 13); the coordinate mode here never reads it.
        node.input = [node.input![0], floats(node, 'roi', []), node.input![1]];
        node.attribute = [stringAttr('mode', mode), stringAttr('coordinate_transformation_mode', 'asymmetric'), ...(mode === 'nearest' ? [stringAttr('nearest_mode', 'floor')] : [])];
        done();
      } else if (node.op_type === 'Scatter') {
        node.op_type = 'ScatterElements';
        done();
      }
    }
  }
  editor.requireOpset('', 11);
  return rewritten;
}
