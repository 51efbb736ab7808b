/** The ONNX ops that are layers with a weight (nn.Conv*, nn.Linear): the ones integer kernels exist for. */
export const LAYER_OPS: ReadonlySet<string> = new Set(['Conv', 'ConvTranspose', 'MatMul', 'Gemm']);
