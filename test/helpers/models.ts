import { DataType } from '../../src/core/onnx/dtypes';
import { AttributeType, onnx, type ModelProto, type TensorProto } from '../../src/core/onnx/proto';
import { floatToHalf } from '../../src/core/onnx/half';
import { makeTensor, readTensor as read } from '../../src/core/onnx/tensor';
import { walkTensors } from '../../src/core/onnx/walk';

export const IR_FOR_OPSET = (opset: number) => (opset <= 9 ? 4 : opset === 10 ? 5 : opset === 11 ? 6 : opset <= 14 ? 7 : opset <= 18 ? 8 : opset <= 20 ? 9 : 10);

/** A tensor ValueInfoProto: numbers are fixed dims, strings symbolic ones. */
export const vi = (name: string, elem: number, dims: Array<number | string>) => ({
  name, type: { tensor_type: { elem_type: elem, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
});

/** X[n, 4] -> MatMul W -> Add B -> Relu -> Y, valid in every opset from 9 on. */
export function linearReluModel(opset: number): ModelProto {
  const w = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i + 1));
  return onnx.ModelProto.create({
    ir_version: IR_FOR_OPSET(opset), opset_import: [{ domain: '', version: opset }], producer_name: 'test',
    graph: {
      name: 'g',
      node: [
        { name: 'mm', op_type: 'MatMul', input: ['X', 'W'], output: ['h'] },
        { name: 'add', op_type: 'Add', input: ['h', 'B'], output: ['h2'] },
        { name: 'relu', op_type: 'Relu', input: ['h2'], output: ['Y'] },
      ],
      initializer: [makeTensor('W', DataType.FLOAT, [4, 3], w), makeTensor('B', DataType.FLOAT, [3], new Float32Array([0.1, -0.2, 0.3]))],
      input: [vi('X', DataType.FLOAT, ['n', 4])],
      output: [vi('Y', DataType.FLOAT, ['n', 3])],
    },
  });
}

/**
 * Two 3×3 convs whose equal biases torch.onnx stored once: each conv reads it through its own Identity
 * node (what every export of a randomly initialized or BatchNorm-folded net with equal biases looks like).
 */
export function identitySharedBiasModel(): ModelProto {
  const k3 = [{ name: 'kernel_shape', type: AttributeType.INTS, ints: [3, 3] }, { name: 'pads', type: AttributeType.INTS, ints: [1, 1, 1, 1] }];
  const t = (name: string, dims: number[], seed: number, scale: number) => makeTensor(name, DataType.FLOAT, dims, Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * scale));
  return onnx.ModelProto.create({
    ir_version: 8, opset_import: [{ domain: '', version: 17 }], producer_name: 'test',
    graph: {
      name: 'g',
      node: [
        { name: '/c1/Identity', op_type: 'Identity', input: ['onnx::Conv_7'], output: ['onnx::Conv_8'] },
        { name: '/c1/Conv', op_type: 'Conv', input: ['x', 'c1.weight', 'onnx::Conv_8'], output: ['a'], attribute: k3 },
        { name: '/r/Relu', op_type: 'Relu', input: ['a'], output: ['r'] },
        { name: '/c2/Identity', op_type: 'Identity', input: ['onnx::Conv_8'], output: ['onnx::Conv_9'] },
        { name: '/c2/Conv', op_type: 'Conv', input: ['r', 'c2.weight', 'onnx::Conv_9'], output: ['y'], attribute: k3 },
      ],
      initializer: [t('c1.weight', [8, 3, 3, 3], 4, 0.3), t('c2.weight', [8, 8, 3, 3], 5, 0.2), t('onnx::Conv_7', [8], 6, 0.1)],
      input: [vi('x', DataType.FLOAT, ['n', 3, 8, 8])],
      output: [vi('y', DataType.FLOAT, ['n', 8, 8, 8])],
    },
  });
}

/** If(cond) with a subgraph holding an initializer and another holding a Constant node; both capture X. */
export function ifModel(): ModelProto {
  const thenG = {
    name: 'then', node: [{ name: 'then_add', op_type: 'Add', input: ['X', 'C1'], output: ['t_out'] }],
    initializer: [makeTensor('C1', DataType.FLOAT, [3], new Float32Array([1, 2, 3]))], output: [vi('t_out', DataType.FLOAT, [3])],
  };
  const elseG = {
    name: 'else',
    node: [
      { name: 'c2', op_type: 'Constant', input: [], output: ['C2'], attribute: [{ name: 'value', type: AttributeType.TENSOR, t: makeTensor('', DataType.FLOAT, [3], new Float32Array([10, 20, 30])) }] },
      { name: 'else_mul', op_type: 'Mul', input: ['X', 'C2'], output: ['e_out'] },
    ],
    output: [vi('e_out', DataType.FLOAT, [3])],
  };
  return onnx.ModelProto.create({
    ir_version: 8, opset_import: [{ domain: '', version: 17 }], producer_name: 'test',
    graph: {
      name: 'g',
      node: [{ name: 'if', op_type: 'If', input: ['cond'], output: ['Y'], attribute: [
        { name: 'then_branch', type: AttributeType.GRAPH, g: thenG },
        { name: 'else_branch', type: AttributeType.GRAPH, g: elseG },
      ] }],
      input: [vi('cond', DataType.BOOL, []), vi('X', DataType.FLOAT, [3])],
      output: [vi('Y', DataType.FLOAT, [3])],
    },
  });
}

/** The same model with every initializer turned into a Constant node, as Paddle's exporter writes them. */
export function initializersToConstants(model: ModelProto): ModelProto {
  const m = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const g = m.graph!;
  const consts = (g.initializer ?? []).map((t) => onnx.NodeProto.create({
    name: `const_${t.name}`, op_type: 'Constant', output: [t.name!],
    attribute: [{ name: 'value', type: AttributeType.TENSOR, t: { ...t, name: t.name } }],
  }));
  g.node = [...consts, ...(g.node ?? [])];
  g.initializer = [];
  return m;
}

/** Every stored tensor's identity and bytes, to compare two models tensor by tensor. */
export function tensorFingerprints(model: ModelProto, bytesOf: (t: TensorProto) => Uint8Array): Array<[string, number, string, string]> {
  return [...walkTensors(model.graph!)].map(({ tensor }) => [tensor.name ?? '', tensor.data_type ?? 0, (tensor.dims ?? []).join('x'), Buffer.from(bytesOf(tensor)).toString('base64')]);
}

/** The same model in float16: every float32 tensor (initializers, Constant values) and graph input/output. */
export function toHalfModel(model: ModelProto): ModelProto {
  const m = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const half = (t: TensorProto) => {
    if (t.data_type !== DataType.FLOAT) return t;
    const v = read(t).data as Float32Array;
    return makeTensor(t.name ?? '', DataType.FLOAT16, (t.dims ?? []).map(Number), Uint16Array.from(v, floatToHalf));
  };
  const g = m.graph!;
  g.initializer = (g.initializer ?? []).map(half);
  for (const n of g.node ?? []) for (const a of n.attribute ?? []) if (a.t) a.t = half(a.t);
  for (const v of [...(g.input ?? []), ...(g.output ?? [])]) if (v.type?.tensor_type?.elem_type === DataType.FLOAT) v.type.tensor_type.elem_type = DataType.FLOAT16;
  return m;
}
