import { DataType } from '../../onnx/dtypes';
import { makeTensor } from '../../onnx/tensor';
import type { NodeProto } from '../../onnx/proto';
import type { QuantContext } from '../context';
import type { ModelEditor } from '../../onnx/editor';
import { computeQParams } from '../qparams';
import { roundHalfEven } from '../rounding';
import { scaleTensor, weightBytes } from '../weights';
import { intAttr } from '../../onnx/attributes';

/** A weight [K, N] quantized block-wise along K for com.microsoft::MatMulNBits. */
export interface BlockQuantized {
  K: number;
  N: number;
  bits: 4 | 8;
  blockSize: number;
  /** uint4 (or uint8) values, [N][K padded to whole blocks], one per byte before packing. */
  q: Uint8Array;
  /** [N][kBlocks] */
  scales: Float32Array;
  /** [N][kBlocks], undefined for symmetric (MatMulNBits' default zero point 2^(bits−1): 8, or 128). */
  zeroPoints?: Uint8Array;
}

export const kBlocksOf = (K: number, blockSize: number) => Math.ceil(K / blockSize);

/**
 * Round-to-nearest block quantization of W[K, N] (row-major) to uint4 (or uint8) along K. Symmetric blocks
 * keep no zero points: MatMulNBits' default is the middle, 2^(bits−1).
 */
export function quantizeBlocksRtn(w: Float32Array, K: number, N: number, blockSize: number, symmetric: boolean, bits: 4 | 8 = 4): BlockQuantized {
  const kb = kBlocksOf(K, blockSize);
  const q = new Uint8Array(N * kb * blockSize);
  const scales = new Float32Array(N * kb);
  const zps = new Uint8Array(N * kb);
  const qmax = 2 ** bits - 1;
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < kb; b++) {
      let min = Infinity, max = -Infinity;
      const k1 = Math.min(K, (b + 1) * blockSize);
      for (let k = b * blockSize; k < k1; k++) {
        const v = w[k * N + n];
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const p = computeQParams(min, max, bits === 4 ? 'uint4' : 'uint8', symmetric);
      scales[n * kb + b] = p.scale;
      zps[n * kb + b] = p.zeroPoint;
      for (let k = b * blockSize; k < (b + 1) * blockSize; k++) {
        const v = k < K ? w[k * N + n] : 0;
        const x = roundHalfEven(Math.fround(v / p.scale)) + p.zeroPoint;
        q[(n * kb + b) * blockSize + (k - b * blockSize)] = x < 0 ? 0 : x > qmax ? qmax : x;
      }
    }
  }
  return { K, N, bits, blockSize, q, scales, zeroPoints: symmetric ? undefined : zps };
}

export const clamp4 = (v: number) => (v < 0 ? 0 : v > 15 ? 15 : v);

/** MatMulNBits' block for 8-bit weights: 128 along K (as fast as any here), shorter for a short K; a power of two ≥ 16. */
export const nbits8Block = (K: number) => Math.min(128, Math.max(16, 2 ** Math.ceil(Math.log2(K))));

/** Dequantized W[K, N] of a block-quantized weight (for error measurement and tests). */
export function dequantizeBlocks(bq: BlockQuantized): Float32Array {
  const { K, N, blockSize } = bq;
  const kb = kBlocksOf(K, blockSize);
  const out = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const b = Math.floor(k / blockSize);
      const zp = bq.zeroPoints ? bq.zeroPoints[n * kb + b] : 2 ** (bq.bits - 1);
      out[k * N + n] = Math.fround((bq.q[(n * kb + b) * blockSize + (k % blockSize)] - zp) * bq.scales[n * kb + b]);
    }
  }
  return out;
}

/** Packs two uint4 values per byte, low nibble first, as MatMulNBits reads B and zero points. */
export function packNibbles(values: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(count / 2));
  for (let i = 0; i < count; i++) out[i >> 1] |= (values[i] & 0x0f) << (i & 1 ? 4 : 0);
  return out;
}

/** The key under which a weight's MatMulNBits form is kept in ctx.integerWeights (one per weight and form). */
export const nbitsKey = (weight: string, bits: number, blockSize: number, symmetric: boolean, algorithm: string) => `${weight}|nbits|${bits}|${blockSize}|${symmetric ? 's' : 'a'}|${algorithm}`;

/** Replaces MatMul(A, W) (or a Gemm) by com.microsoft::MatMulNBits(A, B, scales[, zero_points][, bias]); `inputs` are the packed weight's initializers. */
export function emitMatMulNBits(ctx: QuantContext, node: NodeProto, bq: BlockQuantized, algorithm: string, dtype: DataType.FLOAT | DataType.FLOAT16 = DataType.FLOAT, bias?: string): { how: string; inputs: string[]; bytesBefore: number; bytesAfter: number } {
  const base = node.input![1].startsWith('onnx::') ? `${ctx.modulePath(node) || node.name}.weight` : node.input![1];
  const w = nbitsInitializers(ctx.editor, base, bq, dtype);
  ctx.editor.replaceNode(node, [matMulNBitsNode(node, w.inputs, bq, bias)]);
  return { how: nbitsHow(bq, algorithm), inputs: w.inputs, bytesBefore: w.bytesBefore, bytesAfter: w.bytesAfter };
}

export const nbitsHow = (bq: Pick<BlockQuantized, 'bits' | 'blockSize' | 'zeroPoints'>, algorithm: string) => `MatMulNBits int${bq.bits} block ${bq.blockSize} (${algorithm}${bq.zeroPoints ? ', asymmetric' : ', symmetric'}${bq.bits === 8 ? ', int8 compute: accuracy_level 4' : ''})`;

/** The packed weight, scales and zero points as initializers of the editor's graph; their names, in MatMulNBits' input order. */
export function nbitsInitializers(editor: ModelEditor, base: string, bq: BlockQuantized, dtype: DataType.FLOAT | DataType.FLOAT16 = DataType.FLOAT): { inputs: string[]; bytesBefore: number; bytesAfter: number } {
  const { K, N, blockSize } = bq;
  const kb = kBlocksOf(K, blockSize);
  const blob = (blockSize * bq.bits) / 8;
  const B = editor.addInitializer(makeTensor(`${base}_Q${bq.bits}`, DataType.UINT8, [N, kb, blob], bq.bits === 8 ? bq.q : packNibbles(bq.q, bq.q.length)));
  // Scales have A's type: float16 exports get float16 scales.
  const S = editor.addInitializer(scaleTensor(`${base}_scales`, dtype, [N, kb], bq.scales));
  const inputs = [B, S];
  let zpBytes = 0;
  if (bq.zeroPoints) {
    if (bq.bits !== 4) throw new Error('8-bit MatMulNBits weights are written symmetric');
    const perRow = Math.ceil(kb / 2);
    const packed = new Uint8Array(N * perRow);
    for (let n = 0; n < N; n++) packed.set(packNibbles(bq.zeroPoints.subarray(n * kb, (n + 1) * kb), kb), n * perRow);
    inputs.push(editor.addInitializer(makeTensor(`${base}_zero_points`, DataType.UINT8, [N, perRow], packed)));
    zpBytes = packed.length;
  }
  editor.requireOpset('com.microsoft', 1);
  return {
    inputs, bytesBefore: weightBytes([K, N], dtype === DataType.FLOAT16 ? 16 : 32),
    bytesAfter: N * kb * blob + bq.scales.length * (dtype === DataType.FLOAT16 ? 2 : 4) + zpBytes,
  };
}

/**
 * The MatMulNBits node that replaces a MatMul (or a Gemm), reading the packed weight `inputs` (B, scales[,
 * zero points]) and `bias`, MatMulNBits' sixth input, after the zero points and the unused g_idx.
 */
export function matMulNBitsNode(node: NodeProto, inputs: string[], bq: Pick<BlockQuantized, 'K' | 'N' | 'bits' | 'blockSize'>, bias?: string): NodeProto {
  const packed = bias ? [...inputs, ...Array<string>(4 - inputs.length).fill(''), bias] : inputs;
  return {
    name: `${node.name}_Q${bq.bits}`, op_type: 'MatMulNBits', domain: 'com.microsoft', input: [node.input![0], ...packed], output: [...node.output!],
    // 8-bit: accuracy_level 4 quantizes A per block to int8 and runs onnxruntime's int8 kernel; its float
    // path for 8-bit weights measured 2-5x slower than the float MatMul here (AVX2).
    attribute: [intAttr('K', bq.K), intAttr('N', bq.N), intAttr('bits', bq.bits), intAttr('block_size', bq.blockSize), ...(bq.bits === 8 ? [intAttr('accuracy_level', 4)] : [])],
  };
}
