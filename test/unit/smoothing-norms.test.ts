import assert from 'node:assert/strict';
import { DataType } from '../../src/core/onnx/dtypes';
import { AttributeType, onnx, type NodeProto } from '../../src/core/onnx/proto';
import { makeTensor } from '../../src/core/onnx/tensor';
import { vi } from '../helpers/models';
import { quantizeAndMeasure } from '../helpers/quant';
import type { SmoothingDecision } from '../../src/core/quant/static/smooth';

const rnd = (n: number, seed: number, scale = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * scale);
const t = (name: string, dims: number[], seed: number, scale = 1) => makeTensor(name, DataType.FLOAT, dims, rnd(dims.reduce((a, b) => a * b, 1), seed, scale));
/** A per-channel scale of about 1 with a few channels 25x larger: the outliers smoothing is for. */
const outlierScale = (name: string, c: number) => makeTensor(name, DataType.FLOAT, [c], Float32Array.from({ length: c }, (_, i) => (i % 13 === 5 ? 25 : 0.8 + 0.4 * Math.abs(Math.sin(i)))));

function model(nodes: NodeProto[], inits: ReturnType<typeof t>[], inputs: ReturnType<typeof vi>[], outputs: ReturnType<typeof vi>[]) {
  return onnx.ModelProto.create({ ir_version: 8, opset_import: [{ domain: '', version: 17 }], graph: { name: 'g', node: nodes, initializer: inits, input: inputs, output: outputs } });
}

/**
 * Quantizes with and without smoothing; the normalization must have taken the scale (its own constants
 * divided, the readers' weights multiplied), and the smoothed model must be closer to float. Random inputs
 * through a normalization with outlier channels in its scale: mechanics, not a fidelity claim.
 */
async function smoothsInto(m: onnx.ModelProto, norm: string, tensor: string) {
  const smoothed = await quantizeAndMeasure(m, { mode: 'static', calibration: 'random:16', staticOps: 'compute', objective: 'accuracy', calibrationMethod: 'percentile' });
  const plain = await quantizeAndMeasure(m, { mode: 'static', calibration: 'random:16', staticOps: 'compute', objective: 'accuracy', calibrationMethod: 'percentile', smoothing: 'off' });
  const d = (smoothed.report.smoothing as SmoothingDecision[]).find((x) => x.tensor === tensor);
  assert.ok(d && !d.skipped && d.alpha > 0, JSON.stringify(d));
  assert.deepEqual(d.absorbedBy, [norm]);
  assert.ok(smoothed.report.calibration.smoothedInPass >= 1, 'decided in the calibration pass');
  console.log(`      SQNR ${smoothed.fidelity.sqnr.toFixed(1)} dB smoothed, ${plain.fidelity.sqnr.toFixed(1)} dB not`);
  assert.ok(smoothed.fidelity.sqnr > plain.fidelity.sqnr + 2, `SQNR ${smoothed.fidelity.sqnr} dB smoothed, ${plain.fidelity.sqnr} dB not`);
  assert.ok(smoothed.fidelity.cosine > 0.999, `cosine ${smoothed.fidelity.cosine}`);
}

describe('smoothing divides a normalization\'s scale and bias', function () {
  this.timeout(120_000);

  it('LayerNormalization before a transformer block\'s projections (opset 17, as torch exports nn.LayerNorm; its optional mean and 1/σ outputs written too)', async () => {
    const C = 64;
    const m = model([
      { name: '/ln/LayerNormalization', op_type: 'LayerNormalization', input: ['x', 'ln.weight', 'ln.bias'], output: ['h', 'ln.mean', 'ln.inv_std'], attribute: [{ name: 'axis', type: AttributeType.INT, i: -1 }, { name: 'epsilon', type: AttributeType.FLOAT, f: 1e-5 }] },
      { name: '/q/MatMul', op_type: 'MatMul', input: ['h', 'q.weight'], output: ['q'] },
      { name: '/k/MatMul', op_type: 'MatMul', input: ['h', 'k.weight'], output: ['k'] },
      { name: '/add/Add', op_type: 'Add', input: ['q', 'k'], output: ['y'] },
    ], [outlierScale('ln.weight', C), t('ln.bias', [C], 3, 0.1), t('q.weight', [C, 32], 4, 0.2), t('k.weight', [C, 32], 5, 0.2)], [vi('x', 1, [1, 24, C])], [vi('y', 1, [1, 24, 32])]);
    await smoothsInto(m, '/ln/LayerNormalization', 'h');
  });

  it('BatchNormalization before a padded conv (a pre-activation block: no Conv before it absorbs it, so static mode writes it as a depthwise 1x1 Conv, which takes the scale)', async () => {
    const C = 16;
    const m = model([
      { name: '/bn/BatchNormalization', op_type: 'BatchNormalization', input: ['x', 'bn.weight', 'bn.bias', 'bn.mean', 'bn.var'], output: ['h'] },
      { name: '/conv/Conv', op_type: 'Conv', input: ['h', 'conv.weight', 'conv.bias'], output: ['y'], attribute: [{ name: 'pads', type: AttributeType.INTS, ints: [1, 1, 1, 1] }] },
    ], [outlierScale('bn.weight', C), t('bn.bias', [C], 7, 0.1), t('bn.mean', [C], 8, 0.1), makeTensor('bn.var', DataType.FLOAT, [C], new Float32Array(C).fill(1)), t('conv.weight', [8, C, 3, 3], 9, 0.2), t('conv.bias', [8], 10, 0.05)],
    [vi('x', 1, [1, C, 12, 12])], [vi('y', 1, [1, 8, 12, 12])]);
    await smoothsInto(m, '/bn/BatchNormalization_as_conv', 'h');
  });
});
