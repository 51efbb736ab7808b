import { DataType } from '../onnx/dtypes';
import { onnx } from '../onnx/proto';
import { createSession, ort, type ModelSession } from './session';

/**
 * XᵀX and XᵀR of row blocks, computed by onnxruntime's MatMul (tens of GFLOP/s) instead of JavaScript
 * loops: least-squares refits sum these over every calibration row of every layer they fit. Float32 per
 * block; callers sum blocks in float64.
 */
export class GramSession {
  private constructor(private readonly s: ModelSession) {}

  static async open(): Promise<GramSession> {
    const value = (name: string, dims: string[]) => ({ name, type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: dims.map((d) => ({ dim_param: d })) } } } });
    const model = onnx.ModelProto.create({
      ir_version: 8, producer_name: 'quantlens', opset_import: [{ domain: '', version: 13 }],
      graph: {
        name: 'gram',
        input: [value('x', ['rows', 'cols']), value('r', ['rows', 'outs'])],
        output: [value('xx', ['cols', 'cols']), value('xr', ['cols', 'outs'])],
        node: [
          { op_type: 'Transpose', input: ['x'], output: ['xt'], name: 'xt' },
          { op_type: 'MatMul', input: ['xt', 'x'], output: ['xx'], name: 'xx' },
          { op_type: 'MatMul', input: ['xt', 'r'], output: ['xr'], name: 'xr' },
        ],
      },
    });
    return new GramSession(await createSession(onnx.ModelProto.encode(model).finish(), { device: 'cpu', label: 'gram' }));
  }

  /** x [rows, cols], r [rows, outs] → XᵀX [cols, cols] and XᵀR [cols, outs]. */
  async products(x: Float32Array, r: Float32Array, rows: number, cols: number, outs: number): Promise<{ xx: Float32Array; xr: Float32Array }> {
    const out = await this.s.session.run({ x: new ort.Tensor('float32', x, [rows, cols]), r: new ort.Tensor('float32', r, [rows, outs]) });
    return { xx: out.xx.data as Float32Array, xr: out.xr.data as Float32Array };
  }

  release(): Promise<void> {
    return this.s.session.release();
  }
}
