// quantlens.runner = slurm: long jobs (sensitivity, sweeps) go to Slurm as an array of shards; the panel
// fills as the shards' parts arrive. The extension runs where the code is (Remote-SSH on a login node, or
// code-server there), so sbatch, squeue and the job folder are local to it.
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { errorLine } from '../core/base/errors';
import { commandSpec } from '../core/jobs/options/commands';
import { argsFromRequest } from '../core/jobs/options/schema';
import { partFile, reportOf } from '../core/cluster/job-dir';
import { mergeAvailable } from '../core/jobs/merge-parts';
import type { ShardableJob } from '../core/cluster/parts';
import { cancelSlurmJob, jobFailed, slurmStatus, submitSlurmJob, writeSlurmJob } from '../core/cluster/slurm';
import type { JobRequests, JobResults } from '../core/jobs/requests';

const settings = () => vscode.workspace.getConfiguration('quantlens');

export class SlurmRunner {
  /** Each job's folder and the shard counts its panel was filled with as parts arrived (the output log says the same). */
  readonly runs: Array<{ dir: string; partials: number[] }> = [];

  constructor(private readonly extensionUri: vscode.Uri, private readonly log: vscode.OutputChannel) {}

  /**
   * Submits the job in `quantlens.slurm.shards` shards and follows it: `onPartial` gets the report merged
   * from the parts so far; resolves with the merged report, or undefined when cancelled or failed (said).
   */
  async run<K extends ShardableJob>(title: string, kind: K, req: JobRequests[K], onPartial?: (report: JobResults[K], done: number, shards: number) => void): Promise<JobResults[K] | undefined> {
    const s = settings();
    const shards = Math.max(1, Math.floor(s.get<number>('slurm.shards', 4)));
    const report = reportOf(kind, req);
    const dir = `${report.replace(/\.json$/i, '')}.slurm`;
    try {
      const args = argsFromRequest(commandSpec(kind)!, req as unknown as Record<string, unknown>);
      writeSlurmJob({
        job: kind, args, cwd: path.dirname(report), shards, report, dir,
        // Electron is not a node for the compute nodes: there, `node` from PATH (or the setting).
        launcher: { node: s.get<string>('slurm.node') || (process.versions.electron ? 'node' : process.execPath), cli: vscode.Uri.joinPath(this.extensionUri, 'bin', 'quantlens.js').fsPath },
      }, { partition: s.get<string>('slurm.partition') || undefined, time: s.get<string>('slurm.time') || undefined, gpusPerTask: s.get<number>('slurm.gpusPerTask') || undefined });
      const sub = await submitSlurmJob(dir);
      this.log.appendLine(`${title}: submitted to Slurm, array job ${sub.array} (${shards} shards), merge job ${sub.merge}; folder ${dir}`);
    } catch (e) {
      void vscode.window.showErrorMessage(`QuantLens: ${errorLine(e)}`);
      return undefined;
    }
    const record = { dir, partials: [] as number[] };
    this.runs.push(record);
    return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `${title} (Slurm)`, cancellable: true }, async (progress, token) => {
      const parts = Array.from({ length: shards }, (_, i) => partFile(dir, i + 1));
      let seen = 0;
      for (;;) {
        if (token.isCancellationRequested) {
          await cancelSlurmJob(dir).catch(() => undefined);
          this.log.appendLine(`${title}: cancelled (scancel)`);
          return undefined;
        }
        const st = await slurmStatus(dir);
        const done = st.shards.filter((x) => x.state === 'done').length;
        if (done > seen && onPartial) {
          const m = mergeAvailable(parts);
          if (m) {
            onPartial(m.report as JobResults[K], m.shardsDone, m.shards);
            record.partials.push(m.shardsDone);
            this.log.appendLine(`${title}: ${m.shardsDone}/${m.shards} shards in`);
          }
        }
        if (done > seen) progress.report({ message: `${done}/${shards} shards done`, increment: ((done - seen) / shards) * 100 });
        seen = done;
        if (st.complete) return JSON.parse(fs.readFileSync(report, 'utf8')) as JobResults[K];
        if (jobFailed(st)) {
          const failed = st.shards.filter((x) => x.state === 'failed');
          const why = failed.length ? `shard ${failed.map((x) => x.index).join(', ')} of ${shards} failed: ${failed[0].detail}` : `the merge failed: ${st.merge.detail}`;
          this.log.appendLine(`${title}: ${why}`);
          void vscode.window.showErrorMessage(`QuantLens: ${why}; rerun with: quantlens submit slurm --rerun ${dir}`, 'Show log').then((a) => { if (a) this.log.show(true); });
          return undefined;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    });
  }
}
