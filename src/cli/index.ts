import { cliAbort, main } from './main';

// The first Ctrl-C asks the job to stop cleanly (staging removed, exit 130); a second one ends at once.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (cliAbort.signal.aborted) process.exit(130);
    cliAbort.abort();
  });
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
