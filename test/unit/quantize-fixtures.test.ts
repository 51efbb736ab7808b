import assert from 'node:assert/strict';
import { FIXTURES } from '../../src/core/fixtures';
import path from 'node:path';
import { compareModels } from '../../src/core/compare';
import { quantizeModel } from '../../src/core/jobs/quantize-model';
import { loadModel, saveModel } from '../../src/core/onnx/model-io';
import { quantizeAndMeasure } from '../helpers/quant';
import { tmpDir } from '../helpers/util';

interface Decision { opType: string; how?: string; weightBytesBefore?: number; weightBytesAfter?: number }
/** Float bytes ÷ quantized bytes of the MatMul weights alone (scales and zero points included). */
function matMulShrink(report: { nodes: Decision[] }): number {
  const mm = report.nodes.filter((n) => n.opType === 'MatMul' && n.how);
  return mm.reduce((a, n) => a + (n.weightBytesBefore ?? 0), 0) / mm.reduce((a, n) => a + (n.weightBytesAfter ?? 0), 0);
}

// The bar on the transformer and tiny-vlm fixtures, measured by onnxruntime on both models.
describe('quantize the transformer and tiny-vlm fixtures: fidelity and size', function () {
  this.timeout(300_000);
  for (const name of ['transformer', 'tiny-vlm']) {
    it(`${name}: weight INT8 cosine ≥ 0.999 and MatMul weights ≥ 3.5x smaller`, async () => {
      // One weight form (the default times the forms and may write MatMulNBits, whose block scales cost more bytes).
      const r = await quantizeAndMeasure(FIXTURES[name].build(), { mode: 'weight', bits: 8, weightFormat: 'dequantize' });
      assert.ok(r.fidelity.cosine >= 0.999, `cosine ${r.fidelity.cosine}`);
      assert.ok(matMulShrink(r.report) >= 3.5, `MatMul weights shrink ${matMulShrink(r.report)}x`);
    });

    it(`${name}: dynamic INT8 cosine ≥ 0.995`, async () => {
      const r = await quantizeAndMeasure(FIXTURES[name].build(), { mode: 'dynamic' });
      assert.ok(r.ops.MatMulInteger > 0);
      assert.ok(r.fidelity.cosine >= 0.995, `cosine ${r.fidelity.cosine}`);
    });

    it(`${name}: static INT8 with 32 calibration samples cosine ≥ 0.99`, async () => {
      const r = await quantizeAndMeasure(FIXTURES[name].build(), { mode: 'static', calibration: 'random:32' });
      assert.ok(r.ops.QuantizeLinear > 10);
      assert.ok(r.fidelity.cosine >= 0.99, `cosine ${r.fidelity.cosine}`);
      assert.equal(r.report.calibration.samples, 32);
    });

    it(`${name}: INT4 GPTQ has lower output error than INT4 RTN at block 32, and weights shrink ≥ 6x`, async () => {
      const rtn = await quantizeAndMeasure(FIXTURES[name].build(), { mode: 'weight', bits: 4, blockSize: 32 }, 'random:32');
      const gptq = await quantizeAndMeasure(FIXTURES[name].build(), { mode: 'weight', bits: 4, blockSize: 32, algorithm: 'gptq', calibration: 'random:32' });
      assert.ok(gptq.fidelity.sqnr > rtn.fidelity.sqnr, `GPTQ ${gptq.fidelity.sqnr} dB, RTN ${rtn.fidelity.sqnr} dB`);
      assert.ok(rtn.ops['com.microsoft.MatMulNBits'] > 0, JSON.stringify(rtn.ops));
      assert.equal(matMulShrink(rtn.report) >= 6, true, `MatMul weights shrink ${matMulShrink(rtn.report)}x`);
      // tiny-vlm's patch embedding is a Conv and its token table a Gather: MatMulNBits takes neither, and the
      // warning says they went to 8 bits.
      const at8 = rtn.report.warnings.filter((w: string) => w.startsWith('--bits 4 applies to MatMul and Gemm weights'));
      assert.deepEqual(at8, name === 'tiny-vlm' ? ['--bits 4 applies to MatMul and Gemm weights (MatMulNBits): 1 Conv, 1 Gather written at 8 bits'] : []);
    });
  }

  it('tiny-vlm: the report\'s fidelity is what compare measures on the same random data (token ids from the whole vocabulary behind a quantized table)', async () => {
    const dir = tmpDir();
    const input = path.join(dir, 'tiny-vlm.onnx');
    saveModel(FIXTURES['tiny-vlm'].build(), input);
    // The table read through DequantizeLinear, as GatherBlockQuantized, and as int8 Cast then Mul by its
    // scales: ids once fell back to {0, 1} there.
    for (const weightFormat of ['dequantize', 'nbits', 'expand'] as const) {
      const output = path.join(dir, `${weightFormat}.onnx`);
      const r = await quantizeModel(input, output, { mode: 'weight', weightFormat });
      const cmp = await compareModels(input, output, { data: 'random:4', latencyRuns: 0 });
      assert.deepEqual(r.fidelity, cmp.outputs, weightFormat);
    }
  });

  it('cnn: --bits 4 on a conv net writes its convs at 8 bits and says so; its Gemm head becomes MatMulNBits, C its bias', async () => {
    const r = await quantizeAndMeasure(FIXTURES.cnn.build(), { mode: 'weight', bits: 4 });
    assert.ok(r.report.warnings.some((w: string) => /^--bits 4 applies to MatMul and Gemm weights \(MatMulNBits\): \d+ Conv written at 8 bits$/.test(w)), r.report.warnings.join('\n'));
    const head = loadModel(r.output).model.graph!.node!.filter((n) => n.op_type === 'MatMulNBits');
    assert.equal(head.length, 1);
    assert.equal(head[0].input!.length, 6, 'A, B, scales, zero points, no g_idx, the bias');
    assert.ok(r.fidelity.cosine >= 0.99, `cosine ${r.fidelity.cosine}`);
  });
});
