import path from 'node:path';
import { dataTypeInfo, DataType } from './onnx/dtypes';
import { GraphView } from './onnx/graph';
import { detectModuleGroups, type ModuleGroup } from './onnx/module-groups';
import type { LoadedModel } from './onnx/model-io';
import { tensorNumel } from './onnx/tensor';
import { describeValue, type ValueTypeInfo } from './onnx/value-type';
import { walkGraphs, walkNodes, walkTensors } from './onnx/walk';

/** `quantlens inspect --json`: the contract's fields first, extras after. */
export interface ModelSummary {
  opset: number;
  nodes: number;
  parameters: number;
  opTypes: Record<string, number>;
  inputs: ValueTypeInfo[];
  outputs: ValueTypeInfo[];
  sizeBytes: number;
  externalData: boolean;
  file: string;
  irVersion: number;
  producer: string;
  opsetImports: Record<string, number>;
  externalDataFiles: string[];
  subgraphs: number;
  /** Weight elements by where they are stored: initializers vs Constant nodes (sparse initializers: their dense size). */
  parametersIn: { initializers: number; constants: number; sparse?: number };
  /** A file at opset 1-6 (onnxruntime runs 7 and later): read, run and quantized as opset 7, with this many nodes rewritten. */
  readAsOpset7?: { rewritten: number };
  /** The model's local functions and how many nodes call each (quantize, prune and sensitivity inline them). */
  functions?: Array<{ name: string; calls: number }>;
  /** Weight elements by data type name. */
  parametersByType: Record<string, number>;
  /** Vision / projector / language module groups of a VLM (empty for other models). */
  moduleGroups: ModuleGroup[];
}

/** Index/shape types are not weights; everything numeric and float-like or narrow-int is. */
const isWeightType = (code: number) => {
  const info = dataTypeInfo(code);
  return !!info && info.bits > 0 && code !== DataType.INT64 && code !== DataType.INT32 && code !== DataType.BOOL && code !== DataType.UINT64;
};

export function summarizeModel(m: LoadedModel): ModelSummary {
  const graph = m.model.graph!;
  const opsetImports: Record<string, number> = {};
  for (const o of m.model.opset_import ?? []) opsetImports[o.domain || 'ai.onnx'] = Number(o.version);
  // The file's own opset, not the 7 it was read at (loadModel's upgradeLegacyOpset).
  if (m.legacyOpset) opsetImports['ai.onnx'] = m.legacyOpset.from;
  const opTypes: Record<string, number> = {};
  let nodes = 0;
  for (const { node } of walkNodes(graph)) {
    nodes++;
    const key = node.domain && node.domain !== 'ai.onnx' ? `${node.domain}.${node.op_type}` : node.op_type ?? '';
    opTypes[key] = (opTypes[key] ?? 0) + 1;
  }
  const parametersByType: Record<string, number> = {};
  const parametersIn = { initializers: 0, constants: 0 };
  const seen = new Set<object>();
  for (const s of walkTensors(graph)) {
    if (seen.has(s.tensor) || !isWeightType(s.tensor.data_type ?? 0) || s.kind === 'sparse') continue;
    seen.add(s.tensor);
    const n = tensorNumel(s.tensor, m.loc);
    const name = dataTypeInfo(s.tensor.data_type!)!.name;
    parametersByType[name] = (parametersByType[name] ?? 0) + n;
    if (s.kind === 'constant' || s.kind === 'attribute') parametersIn.constants += n;
    else parametersIn.initializers += n;
  }
  // A sparse initializer holds a whole weight: counted at its dense size, under its values' type.
  let sparse = 0;
  for (const { graph: g } of walkGraphs(graph)) {
    for (const t of g.sparse_initializer ?? []) {
      if (!t.values || !isWeightType(t.values.data_type ?? 0)) continue;
      const n = (t.dims ?? []).reduce((a: number, b) => a * Number(b), 1);
      sparse += n;
      const name = dataTypeInfo(t.values.data_type!)!.name;
      parametersByType[name] = (parametersByType[name] ?? 0) + n;
    }
  }
  const calls = new Map((m.model.functions ?? []).map((f) => [`${f.domain ? `${f.domain}.` : ''}${f.name}`, 0]));
  for (const [op, n] of Object.entries(opTypes)) if (calls.has(op)) calls.set(op, n);
  const view = new GraphView(graph);
  return {
    opset: opsetImports['ai.onnx'] ?? 0,
    nodes,
    parameters: parametersIn.initializers + parametersIn.constants + sparse,
    opTypes,
    inputs: (graph.input ?? []).filter((v) => view.graphInputs.has(v.name ?? '')).map(describeValue),
    outputs: (graph.output ?? []).map(describeValue),
    sizeBytes: m.fileBytes + m.externalBytes,
    externalData: m.externalFiles.length > 0,
    file: m.loc.file,
    irVersion: Number(m.model.ir_version),
    producer: [m.model.producer_name, m.model.producer_version].filter(Boolean).join(' '),
    opsetImports,
    externalDataFiles: m.externalFiles.map((f) => path.relative(m.loc.dir, f)),
    subgraphs: [...walkGraphs(graph)].length - 1,
    parametersIn: { ...parametersIn, ...(sparse ? { sparse } : {}) },
    ...(m.legacyOpset ? { readAsOpset7: { rewritten: m.legacyOpset.rewritten } } : {}),
    ...(calls.size ? { functions: [...calls].map(([name, n]) => ({ name, calls: n })) } : {}),
    parametersByType,
    moduleGroups: detectModuleGroups(graph),
  };
}

const fmtBytes = (n: number) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
const fmtShape = (v: ValueTypeInfo) => (v.shape ? `[${v.shape.map((d) => d ?? '?').join(', ')}]` : '(unknown shape)');

/** The readable form of `inspect` without --json. */
export function formatSummary(s: ModelSummary): string {
  const lines = [
    `${s.file}`,
    `  IR ${s.irVersion}, opset ${s.opset}${s.readAsOpset7 ? ` (read as opset 7, the oldest onnxruntime runs: ${s.readAsOpset7.rewritten} nodes rewritten)` : ''}${Object.keys(s.opsetImports).length > 1 ? ` (${Object.entries(s.opsetImports).map(([d, v]) => `${d} ${v}`).join(', ')})` : ''}${s.producer ? `, produced by ${s.producer}` : ''}`,
    `  size ${fmtBytes(s.sizeBytes)}${s.externalData ? ` (external data: ${s.externalDataFiles.join(', ')})` : ''}`,
    `  ${s.parameters.toLocaleString('en-US')} parameters (${s.parametersIn.initializers.toLocaleString('en-US')} in initializers, ${s.parametersIn.sparse ? `${s.parametersIn.sparse.toLocaleString('en-US')} in sparse initializers, ` : ''}${s.parametersIn.constants.toLocaleString('en-US')} in Constant nodes)`,
    `  ${s.nodes} nodes${s.subgraphs ? ` in ${s.subgraphs + 1} graphs` : ''}`,
    ...(s.functions?.length ? [`  local functions: ${s.functions.map((f) => `${f.name} (${f.calls} call${f.calls === 1 ? '' : 's'})`).join(', ')}; quantize, prune and sensitivity inline them`] : []),
    ...(s.moduleGroups.length ? [`  module groups: ${s.moduleGroups.map((g) => `${g.name} (${g.role}, ${g.nodes} nodes)`).join(', ')}`] : []),
    '  inputs:',
    ...s.inputs.map((v) => `    ${v.name}: ${v.type} ${fmtShape(v)}`),
    '  outputs:',
    ...s.outputs.map((v) => `    ${v.name}: ${v.type} ${fmtShape(v)}`),
    '  operators:',
    ...Object.entries(s.opTypes).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([op, n]) => `    ${String(n).padStart(6)}  ${op}`),
  ];
  return lines.join('\n');
}
