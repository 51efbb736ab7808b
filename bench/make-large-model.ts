// Writes a generated MatMul chain of about `GB` gigabytes: inline (under protobuf's 2 GB limit), or with
// `external` as a third argument, with its weights in an external data file (any size).
import { DataType } from '../src/core/onnx/dtypes';
import { saveModel } from '../src/core/onnx/model-io';
import { onnx } from '../src/core/onnx/proto';
import { makeTensor } from '../src/core/onnx/tensor';

const [output, gbArg, storage] = process.argv.slice(2);
const dim = 4096;
const layers = Math.max(1, Math.round((Number(gbArg ?? '1') * 2 ** 30) / (dim * dim * 4)));
const nodes = [];
const inits = [];
let x = 'input';
for (let i = 0; i < layers; i++) {
  const w = new Float32Array(dim * dim);
  for (let k = 0; k < w.length; k += 1021) w[k] = Math.sin(k + i) / 64;
  inits.push(makeTensor(`layers.${i}.weight`, DataType.FLOAT, [dim, dim], w));
  nodes.push({ name: `/layers.${i}/MatMul`, op_type: 'MatMul', input: [x, `layers.${i}.weight`], output: [`/layers.${i}/MatMul_output_0`] });
  x = `/layers.${i}/MatMul_output_0`;
}
nodes[nodes.length - 1].output = ['output'];
const vi = (name: string) => ({ name, type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_param: 'batch' }, { dim_value: dim }] } } } });
const model = onnx.ModelProto.create({ ir_version: 8, opset_import: [{ domain: '', version: 17 }], producer_name: 'quantlens-bench', graph: { name: 'large', node: nodes, initializer: inits, input: [vi('input')], output: [vi('output')] } });
const r = saveModel(model, output, { externalData: storage === 'external' ? 'always' : 'never' });
process.stdout.write(JSON.stringify({ output, bytes: r.bytes + (r.dataBytes ?? 0), layers }) + '\n');
