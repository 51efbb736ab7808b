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
  if (err instanceof Error) return err.message.split('\n')[0];
  return String(err).split('\n')[0];
}
