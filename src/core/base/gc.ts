import v8 from 'node:v8';
import vm from 'node:vm';

let gc: (() => void) | undefined;

/**
 * A full garbage collection, now. Used between the phases of a memory-bound job (sensitivity's merged
 * graph is built from hundreds of encoded copies, then onnxruntime allocates its activations): V8 would
 * collect the copies only when its own heuristics say so, often after onnxruntime has grown the process,
 * and the peak is what the user's machine must hold. The flag is set at run time so that neither the CLI
 * nor the extension host needs `--expose-gc` on its command line.
 */
export function collectGarbage(): void {
  if (!gc) {
    v8.setFlagsFromString('--expose_gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  gc();
}
