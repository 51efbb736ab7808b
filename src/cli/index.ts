import { cliAbort, main } from './main';

// The first Ctrl-C asks the job to stop cleanly (staging removed, exit 130); a second one ends at once.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (cliAbort.signal.aborted) process.exit(130);
    cliAbort.abort();
  });
}

// A reader that stops early (`quantlens inspect M | head`) closes the pipe: end quietly, not with a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
