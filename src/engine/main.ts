// The engine process: reads job requests as JSON lines on stdin, writes events as JSON lines on stdout.
// Heavy passes run here, never on the extension host's thread; a crash here is an error event there.
import readline from 'node:readline';
import { CancelledError, errorLine, QuantLensError } from '../core/base/errors';
import { isEngineRequest, type EngineEvent, type JobRequest } from '../protocol/engine';
import { JOB_KINDS, runRequest } from '../core/jobs/handlers';
import { checkJobRequest } from '../core/jobs/options/commands';

const send = (e: EngineEvent) => process.stdout.write(JSON.stringify(e) + '\n');
const running = new Map<number, AbortController>();

async function start(id: number, job: JobRequest): Promise<void> {
  const ac = new AbortController();
  running.set(id, ac);
  send({ type: 'started', id });
  try {
    // The same option rules as the CLI's: a value out of range or an option that does nothing is a usage error.
    checkJobRequest(job.kind, job);
    const result = await runRequest(job, { signal: ac.signal, onProgress: (progress: object) => send({ type: 'progress', id, progress } as EngineEvent) });
    send(ac.signal.aborted ? { type: 'cancelled', id } : { type: 'result', id, result });
  } catch (e) {
    if (e instanceof CancelledError || ac.signal.aborted) send({ type: 'cancelled', id });
    else send({ type: 'error', id, message: errorLine(e), errorKind: e instanceof QuantLensError ? e.kind : 'internal' });
  } finally {
    running.delete(id);
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    send({ type: 'log', message: `dropped a line that is not JSON: ${line.slice(0, 80)}` });
    return;
  }
  if (!isEngineRequest(msg, JOB_KINDS)) {
    send({ type: 'log', message: `dropped an unknown request: ${line.slice(0, 80)}` });
    return;
  }
  if (msg.type === 'cancel') running.get(msg.id)?.abort();
  else void start(msg.id, msg.job);
});
// The client closing our stdin means nobody wants the results: stop.
rl.on('close', () => process.exit(0));
send({ type: 'ready', pid: process.pid });
