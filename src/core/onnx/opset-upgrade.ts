import { DataType } from './dtypes';
import type { ModelEditor } from './editor';
import { makeTensor } from './tensor';
import { walkGraphs } from './walk';
import { attrInt, attrInts } from './attributes';

/**
 * Raises a model from opset 9 to 10, the first with QuantizeLinear/DequantizeLinear and the QLinear*
 * kernels onnxruntime fuses Q/DQ pairs into. Between 9 and 10 only Slice and TopK changed their
 * signature (attributes became inputs); they are rewritten, everything else means the same.
 * Returns the ops rewritten.
 */
export function upgradeOpset9To10(editor: ModelEditor): string[] {
  if (editor.opset() !== 9) return [];
  const rewritten: string[] = [];
  for (const { graph } of walkGraphs(editor.graph)) {
    for (const node of graph.node ?? []) {
      if ((node.domain ?? '') !== '') continue;
      if (node.op_type === 'Slice') {
        const [starts, ends, axes] = [attrInts(node, 'starts') ?? [], attrInts(node, 'ends') ?? [], attrInts(node, 'axes')];
        const base = node.name || node.output![0];
        const add = (what: string, v: number[]) =>
          graph === editor.graph
            ? editor.addInitializer(makeTensor(`${base}_${what}`, DataType.INT64, [v.length], BigInt64Array.from(v.map(BigInt))))
            : addLocalConstant(editor, graph, `${base}_${what}`, v);
        node.input = [node.input![0], add('starts', starts), add('ends', ends), ...(axes ? [add('axes', axes)] : [])];
        node.attribute = [];
        rewritten.push(node.name ?? 'Slice');
      } else if (node.op_type === 'TopK') {
        const k = attrInt(node, 'k');
        const base = node.name || node.output![0];
        const kName = graph === editor.graph
          ? editor.addInitializer(makeTensor(`${base}_k`, DataType.INT64, [1], BigInt64Array.of(BigInt(Number(k ?? 1)))))
          : addLocalConstant(editor, graph, `${base}_k`, [Number(k ?? 1)]);
        node.input = [node.input![0], kName];
        node.attribute = (node.attribute ?? []).filter((a) => a.name !== 'k');
        rewritten.push(node.name ?? 'TopK');
      }
    }
  }
  editor.requireOpset('', 10);
  return rewritten;
}

/** Subgraphs get their constants as initializers of their own, so scoping stays right. */
function addLocalConstant(editor: ModelEditor, graph: { initializer?: unknown[] | null }, base: string, v: number[]): string {
  const name = editor.unique(base);
  graph.initializer = [...((graph.initializer ?? []) as never[]), makeTensor(name, DataType.INT64, [v.length], BigInt64Array.from(v.map(BigInt))) as never];
  return name;
}
