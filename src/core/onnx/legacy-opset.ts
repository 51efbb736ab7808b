import { QuantLensError } from '../base/errors';
import { attrFloat, attrInt, attrInts, attrString, floatsAttr, intAttr, intsAttr, stringAttr } from './attributes';
import { DataType } from './dtypes';
import { ModelEditor, opsetImport } from './editor';
import { AttributeType, type ModelProto, type NodeProto } from './proto';
import { int64Tensor, readTensor } from './tensor';
import { GraphView } from './graph';
import { walkGraphs } from './walk';
import { inferRanks } from './ranks';

/** The oldest opset onnxruntime runs: below it, it has no kernels at all (not even Add). */
export const OLDEST_RUNNABLE_OPSET = 7;

/** Elementwise ops that broadcast by attribute (`broadcast`, `axis`) before opset 7. */
const LEGACY_BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'And', 'Or', 'Xor', 'Equal', 'Greater', 'Less']);

/** Cast's `to` before opset 6: the type's name. */
const CAST_NAMES: Record<string, DataType> = {
  FLOAT: DataType.FLOAT, UINT8: DataType.UINT8, INT8: DataType.INT8, UINT16: DataType.UINT16, INT16: DataType.INT16, INT32: DataType.INT32,
  INT64: DataType.INT64, STRING: DataType.STRING, BOOL: DataType.BOOL, FLOAT16: DataType.FLOAT16, DOUBLE: DataType.DOUBLE, UINT32: DataType.UINT32, UINT64: DataType.UINT64,
};

/**
 * Raises a model stamped with opset 1 to 6 (or none: IR 1-2) to opset 7, the oldest onnxruntime has
 * kernels for, in place. What changed up to 7 is rewritten (onnx's operator changelog):
 * - elementwise ops broadcast only when told (`broadcast=1`), B aligned with A's axes from `axis`: B gets the
 *   trailing 1s numpy-style broadcasting needs (an initializer or Constant reshaped, a computed B
 *   unsqueezed); with no `axis`, or B a scalar, the old rule is numpy's;
 * - Gemm's `broadcast` goes (C broadcasts anyway); PRelu's per-channel slope gets its trailing 1s;
 * - `consumed_inputs` (before 6) and `is_test` (BatchNormalization, Dropout, before 7) go; BatchNormalization's
 *   training outputs, unread in an inference graph, are dropped;
 * - Reshape's `shape` (before 5) becomes its input; Concat's default axis (1, before 4) is written;
 *   Cast's `to` (before 6) becomes the type code; Pad's `paddings` (before 2) is `pads`; Upsample-1's
 *   `height_scale`/`width_scale` become Upsample-7's `scales`; RNN/GRU/LSTM lose `output_sequence`.
 * Throws, naming the node, where the old meaning cannot be written at 7 (a computed Split or Tile count, a
 * broadcast axis on a tensor whose rank is unknown). Returns the opset it came from and the nodes changed;
 * undefined for a model at 7 or later.
 */
export function upgradeLegacyOpset(model: ModelProto, file: string): { from: number; rewritten: number } | undefined {
  const from = Math.max(1, Number(opsetImport(model)?.version ?? 0));
  if (from >= OLDEST_RUNNABLE_OPSET) return undefined;
  // Only now: every model is loaded through here, and the editor indexes every name.
  const editor = new ModelEditor(model);
  let rewritten = 0;
  const fail = (node: NodeProto, why: string): never => {
    throw new QuantLensError(file, `is opset ${from}, which onnxruntime cannot run, and ${node.op_type} '${node.name || node.output?.[0]}' ${why}, which QuantLens cannot write at opset 7: re-export at opset 7 or later`);
  };
  // Readers of each name in every graph (a subgraph may read the main graph's initializers).
  const consumers = new Map<string, number>();
  for (const { graph } of walkGraphs(editor.graph)) for (const n of graph.node ?? []) for (const i of n.input ?? []) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  for (const { graph } of walkGraphs(editor.graph)) {
    const view = new GraphView(graph);
    const ranks = inferRanks(view);
    const used = new Set([...consumers.keys(), ...(graph.output ?? []).map((o) => o.name ?? '')]);
    const out: NodeProto[] = [];
    for (const node of graph.node ?? []) {
      if ((node.domain ?? '') !== '' && node.domain !== 'ai.onnx') { out.push(node); continue; }
      const op = node.op_type ?? '';
      let touched = false;
      const drop = (...names: string[]) => {
        const kept = (node.attribute ?? []).filter((a) => !names.includes(a.name ?? ''));
        touched ||= kept.length !== (node.attribute ?? []).length;
        node.attribute = kept;
      };
      drop('consumed_inputs');
      const pre: NodeProto[] = [];
      // B reshaped or unsqueezed so that numpy-style broadcasting lines its axes up from `axis` of A.
      const alignTrailing = (input: number, trailing: number) => {
        touched = true;
        const name = node.input![input];
        const shaped = reshapedConstant(editor, view, name, trailing, consumers.get(name) ?? 0);
        if (shaped) node.input![input] = shaped;
        else {
          const rank = ranks.get(name);
          if (rank === undefined) fail(node, `broadcasts '${name}', whose rank is unknown, along an axis`);
          const y = editor.unique(`${name}_unsqueezed`);
          pre.push({ op_type: 'Unsqueeze', name: editor.unique(`${node.name || op}/Unsqueeze`), input: [name], output: [y], attribute: [intsAttr('axes', Array.from({ length: trailing }, (_, k) => rank! + k))] });
          node.input![input] = y;
        }
      };
      if (LEGACY_BROADCAST.has(op)) {
        const axis = attrInt(node, 'axis');
        if (attrInt(node, 'broadcast', 0) === 1 && axis !== undefined) {
          const [ra, rb] = [ranks.get(node.input![0]), ranks.get(node.input![1])];
          if (ra === undefined || rb === undefined) fail(node, 'broadcasts along an axis between tensors of unknown rank');
          const trailing = ra! - (axis < 0 ? axis + ra! : axis) - rb!;
          if (trailing < 0) fail(node, `broadcasts a rank-${rb} tensor from axis ${axis} of a rank-${ra} one`);
          if (trailing > 0) alignTrailing(1, trailing);
        }
        drop('broadcast', 'axis');
      } else if (op === 'Gemm') {
        drop('broadcast');
      } else if (op === 'PRelu') {
        // The slope of PRelu-6 and before: one value per channel (axis 1) when 1-D.
        const [rx, rs] = [ranks.get(node.input![0]), ranks.get(node.input![1])];
        if (rs === 1 && rx !== undefined && rx > 2 && sizeOf(view, node.input![1]) !== 1) alignTrailing(1, rx - 2);
      } else if (op === 'BatchNormalization' || op === 'Dropout') {
        drop('is_test');
        if (op === 'BatchNormalization') {
          const outs = node.output ?? [];
          if (outs.slice(1).some((o) => o && used.has(o))) fail(node, 'reads its training outputs (running mean and variance)');
          touched ||= outs.length > 1;
          node.output = outs.slice(0, 1);
        }
      } else if (op === 'Reshape' && node.input!.length < 2) {
        const shape = attrInts(node, 'shape');
        if (!shape) fail(node, 'has no shape');
        node.input = [node.input![0], editor.addInitializer(int64Tensor(`${node.name || node.output![0]}_shape`, shape!), graph)];
        drop('shape');
      } else if (op === 'Concat' && attrInt(node, 'axis') === undefined) {
        node.attribute = [...(node.attribute ?? []), intAttr('axis', 1)];
        touched = true;
      } else if (op === 'Cast' && node.attribute!.some((a) => a.name === 'to' && a.type === AttributeType.STRING)) {
        const name = attrString(node, 'to')!.toUpperCase();
        if (!(name in CAST_NAMES)) fail(node, `casts to '${name}'`);
        drop('to');
        node.attribute = [...(node.attribute ?? []), intAttr('to', CAST_NAMES[name])];
      } else if (op === 'Pad' && attrInts(node, 'paddings')) {
        const pads = attrInts(node, 'paddings')!;
        drop('paddings');
        node.attribute = [...(node.attribute ?? []), intsAttr('pads', pads)];
      } else if (op === 'Upsample' && node.attribute!.some((a) => a.name === 'height_scale' || a.name === 'width_scale')) {
        const [h, w] = [attrFloat(node, 'height_scale', 1), attrFloat(node, 'width_scale', 1)];
        const mode = attrString(node, 'mode') ?? 'nearest';
        node.attribute = [stringAttr('mode', mode === 'bilinear' ? 'linear' : mode), floatsAttr('scales', [1, 1, h, w])];
        touched = true;
      } else if (op === 'Split' && node.input!.length > 1) {
        const split = storedInts(view, node.input![1]);
        if (!split) fail(node, 'takes its split sizes from a computed tensor');
        node.input = [node.input![0]];
        node.attribute = [...(node.attribute ?? []), intsAttr('split', split!)];
        touched = true;
      } else if (op === 'Tile' && node.input!.length > 2) {
        fail(node, 'is Tile-1 (tiles along one axis), which Tile-6 replaced');
      } else if (op === 'RNN' || op === 'GRU' || op === 'LSTM') {
        drop('output_sequence');
      }
      if (touched) rewritten++;
      out.push(...pre, node);
    }
    graph.node = out;
  }
  editor.requireOpset('', OLDEST_RUNNABLE_OPSET);
  // IR 3 is the first that names opsets at all (IR 1-2 files carry none).
  if (Number(model.ir_version) < 3) model.ir_version = 3;
  return { from, rewritten };
}

/** A stored integer tensor's values (undefined: computed, or not integers). */
function storedInts(view: GraphView, name: string): number[] | undefined {
  const t = view.constant(name);
  return t && (t.data_type === DataType.INT64 || t.data_type === DataType.INT32) ? Array.from(readTensor(t).data as ArrayLike<number | bigint>, Number) : undefined;
}

function sizeOf(view: GraphView, name: string): number | undefined {
  const t = view.constant(name);
  return t ? (t.dims ?? []).reduce((a: number, d) => a * Number(d), 1) : undefined;
}

/**
 * `name` with `trailing` 1s appended to its dims when it is an initializer or a Constant: edited in place
 * when this is its only reader, else a copy under a new name (the same bytes, other dims). Undefined for a
 * computed tensor.
 */
function reshapedConstant(editor: ModelEditor, view: GraphView, name: string, trailing: number, readers: number): string | undefined {
  const t = view.constant(name);
  if (!t) return undefined;
  const dims = [...(t.dims ?? []).map(Number), ...Array<number>(trailing).fill(1)];
  if (readers <= 1) {
    t.dims = dims;
    // Before IR 4 every initializer is also a graph input, whose declared shape must follow (onnxruntime
    // refuses a declared [C] against the stored [C, 1, 1]: onnx's test_PReLU_2d_multiparam).
    const declared = view.graph.input?.find((v) => v.name === name)?.type?.tensor_type;
    if (declared?.shape) declared.shape = { dim: dims.map((d) => ({ dim_value: d })) };
    return name;
  }
  return editor.addInitializer({ ...t, name: `${name}_aligned`, dims }, view.graph);
}
