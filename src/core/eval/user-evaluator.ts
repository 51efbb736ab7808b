import { spawn } from 'node:child_process';
import { QuantLensError } from '../base/errors';

export interface UserEvaluator {
  /** Shell command; `{model}` is replaced by the (quoted) path of the model to evaluate. */
  command: string;
  /** Seconds before the command is killed (default 600). */
  timeoutSeconds?: number;
  /** True when a smaller number is better (a loss, an error rate). */
  lowerIsBetter?: boolean;
  cwd?: string;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Runs the user's evaluation command on a model and reads its metric: the last line of stdout, either a
 * number or a JSON object with one numeric field (e.g. {"accuracy": 0.91}). The command comes from the user
 * (CLI flag) or from a recipe the user confirmed; the editor runs it only in trusted workspaces.
 */
export function runUserEvaluator(ev: UserEvaluator, model: string, signal?: AbortSignal): Promise<number> {
  const command = ev.command.includes('{model}') ? ev.command.split('{model}').join(quote(model)) : `${ev.command} ${quote(model)}`;
  const timeout = (ev.timeoutSeconds ?? 600) * 1000;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], { cwd: ev.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout = (stdout + d).slice(-65536)));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4096)));
    const tail = () => stderr.trim().split('\n').slice(-3).join(' | ');
    const kill = () => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } };
    const timer = setTimeout(() => {
      kill();
      reject(new QuantLensError(undefined, `the evaluator timed out after ${timeout / 1000} s: ${ev.command}${tail() ? `; stderr: ${tail()}` : ''}`, 'evaluator'));
    }, timeout);
    signal?.addEventListener('abort', kill, { once: true });
    child.on('error', (e) => { clearTimeout(timer); reject(new QuantLensError(undefined, `the evaluator could not start: ${e.message}`, 'evaluator')); });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (signal?.aborted) return reject(new QuantLensError(undefined, 'cancelled', 'cancelled'));
      if (code !== 0) return reject(new QuantLensError(undefined, `the evaluator exited with code ${code}: ${ev.command}${tail() ? `; stderr: ${tail()}` : ''}`, 'evaluator'));
      const last = stdout.trim().split('\n').pop()?.trim() ?? '';
      let value: unknown = Number(last);
      if (last.startsWith('{')) {
        try {
          const nums = Object.values(JSON.parse(last)).filter((v) => typeof v === 'number');
          value = nums.length === 1 ? nums[0] : NaN;
        } catch {
          value = NaN;
        }
      }
      if (last === '' || typeof value !== 'number' || !Number.isFinite(value)) {
        return reject(new QuantLensError(undefined, `the evaluator printed '${last.slice(0, 80)}', not a number (print one number, or one JSON object with one numeric field, on the last line)`, 'evaluator'));
      }
      resolve(value);
    });
  });
}
