/** An error the user caused or can fix: printed as one line, never with a stack trace. */
export class QuantLensError extends Error {
  constructor(readonly file: string | undefined, readonly detail: string, readonly kind = 'invalid-input') {
    super(file ? `${file}: ${detail}` : detail);
    this.name = 'QuantLensError';
  }
}

/** Thrown when a job's AbortSignal fires. */
export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}

/** One line for the user: our errors as they are, anything else reduced to its message. */
export function errorLine(err: unknown): string {
  const line = (err instanceof Error ? err.message : String(err)).split('\n')[0];
  // onnxruntime puts its source file and a C++ signature before the reason (after what it was doing):
  // both go, and so does its status code.
  const m = /^(.*?)\/onnxruntime_src\/\S+:\d+ .*?\)(?:::<lambda\(\)>)? (.+)$/.exec(line);
  return m ? `${m[1]}${m[2].replace(/^\[ONNXRuntimeError\] : \d+ : \w+ : /, '')}` : line;
}
