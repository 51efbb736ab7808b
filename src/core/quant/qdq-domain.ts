import type { ModelEditor } from '../onnx/editor';

/**
 * Domain for QuantizeLinear/DequantizeLinear: the standard ops need opset 13 for per-axis scales (10 at
 * all); below that, onnxruntime's com.microsoft versions do the same job, so older exports (Paddle's
 * opset 9 among them) quantize without an opset conversion.
 */
export function qdqDomain(editor: ModelEditor, halfScales = false): string {
  // float16 scales joined the standard DequantizeLinear in opset 19.
  if (editor.opset() >= (halfScales ? 19 : 13)) return '';
  editor.requireOpset('com.microsoft', 1);
  return 'com.microsoft';
}
