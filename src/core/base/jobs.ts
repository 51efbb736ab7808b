/** Progress of a long job: a stage name and, when known, the fraction done in [0, 1]. */
export interface Progress<P = unknown> {
  stage: string;
  fraction?: number;
  message?: string;
  /** A result that is ready before the job ends (a sweep point), for views that grow live. */
  partial?: P;
}

/** The third argument of every long job: `(input, options, { onProgress, signal })`. */
export interface JobContext<P = never> {
  onProgress?: (p: Progress<P>) => void;
  signal?: AbortSignal;
}
