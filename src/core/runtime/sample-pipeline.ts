import { CancelledError } from '../base/errors';

/**
 * A loop over samples that runs each (`launch`) and hands each result over in order. With `ahead` (the
 * session runs in a worker thread, see threadedVariantSession), the next sample's run starts before this
 * one is handed over and the sample after is made while it runs, so this thread's work overlaps the runs;
 * `settle`, called before that launch, does what the next run depends on (a threshold that follows this
 * sample). Without it, one sample at a time: a result may be large, and on this thread nothing overlaps.
 * Returns how many samples ran.
 */
export async function pipelineSamples<F, R>(
  samples: Iterator<F>, ahead: boolean, launch: (feeds: F, index: number) => Promise<R>,
  handle: (result: R, feeds: F, index: number) => void | Promise<void>,
  opts: { settle?: (result: R, index: number) => void; signal?: AbortSignal; first?: IteratorResult<F> } = {},
): Promise<number> {
  const start = (feeds: F, index: number) => {
    const result = launch(feeds, index);
    result.catch(() => {}); // (awaited below, or abandoned when an earlier sample fails)
    return { feeds, result };
  };
  let next = opts.first ?? samples.next();
  if (next.done) return 0;
  let inFlight: ReturnType<typeof start> | undefined = start(next.value, 0);
  next = samples.next();
  let i = 0;
  while (inFlight) {
    if (opts.signal?.aborted) throw new CancelledError();
    const { feeds, result } = inFlight;
    const out = await result;
    opts.settle?.(out, i);
    inFlight = ahead && !next.done ? start(next.value, i + 1) : undefined;
    await handle(out, feeds, i++);
    if (!ahead && !next.done) inFlight = start(next.value, i);
    if (inFlight) next = samples.next();
  }
  return i;
}
