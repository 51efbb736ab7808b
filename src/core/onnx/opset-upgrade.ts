import { DataType } from './dtypes';
import type { ModelEditor } from './editor';
import type { NodeProto } from './proto';
import { makeTensor } from './tensor';
import { walkGraphs } from './walk';
import { attrFloats, attrInt, attrInts, attrString, stringAttr } from './attributes';

/** The oldest opset the upgrade takes: below 7, Add/Mul/Gemm broadcast by attribute and need more than a rename. */
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
    for (const node of graph.node ?? []) {
      if ((node.domain ?? '') !== '') continue;
      if (node.op_type === 'BatchNormalization' && from < 9 && attrInt(node, 'spatial', 1) !== 1) return `BatchNormalization '${node.name}' normalises per element (spatial=0), which opset 9 dropped`;
      if (node.op_type === 'Scan' && from < 9) return `Scan '${node.name}' is Scan-8 (with a batch axis), which opset 9 changed`;
    }
  }
  return undefined;
}

/**
 * Raises a model from opset 7, 8 or 9 to 10, the first with QuantizeLinear/DequantizeLinear and the QLinear*
 * kernels onnxruntime fuses Q/DQ pairs into (call `upgradeBlocker` first). What changed in between is
 * rewritten: Slice and TopK took their attributes as inputs (10); Upsample took its scales as an input (9)
 * and gave way to Resize, which means the same at opset 10; BatchNormalization dropped `spatial` (9).
 * Everything else at 7 to 9 means the same at 10 (later versions only added types, attributes with the
 * old default, or broadcasting). Returns the ops rewritten.
 */
export function upgradeToOpset10(editor: ModelEditor): string[] {
  const from = editor.opset();
  if (from >= 10 || from < OLDEST_UPGRADABLE_OPSET) return [];
  const rewritten: string[] = [];
  for (const { graph } of walkGraphs(editor.graph)) {
    const ints = (node: NodeProto, what: string, v: number[]) => constant(editor, graph, `${node.name || node.output![0]}_${what}`, DataType.INT64, v);
    for (const node of graph.node ?? []) {
      if ((node.domain ?? '') !== '') continue;
      if (node.op_type === 'BatchNormalization') {
        node.attribute = (node.attribute ?? []).filter((a) => a.name !== 'spatial');
      } else if (node.op_type === 'Upsample') {
        // Upsample-7 kept its scales in an attribute; Upsample-9's input is the same as Resize-10's.
        const scales = from < 9 ? constant(editor, graph, `${node.name || node.output![0]}_scales`, DataType.FLOAT, attrFloats(node, 'scales') ?? []) : node.input![1];
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
  }
  editor.requireOpset('', 10);
  return rewritten;
}

/** A 1-D constant for a rewritten input; subgraphs get theirs as initializers of their own, so scoping stays right. */
function constant(editor: ModelEditor, graph: { initializer?: unknown[] | null }, base: string, dtype: DataType.INT64 | DataType.FLOAT, v: number[]): string {
  const data = dtype === DataType.FLOAT ? Float32Array.from(v) : BigInt64Array.from(v.map((x) => BigInt(x)));
  if (graph === editor.graph) return editor.addInitializer(makeTensor(base, dtype, [v.length], data));
  const name = editor.unique(base);
  graph.initializer = [...((graph.initializer ?? []) as never[]), makeTensor(name, dtype, [v.length], data) as never];
  return name;
}
