// The same shards as a Kubernetes Indexed Job (pod I runs shard JOB_COMPLETION_INDEX+1) and a merge Job.
// Written for people to adapt: no cluster was available to test against (README says so).
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { AtomicFile } from '../fs/atomic';
import { shellJoin, shellQuote } from './shell';
import { writeClusterJob, type ClusterJob } from './job-dir';
import type { ClusterPlan } from './slurm';

export interface KubernetesOptions {
  image: string;
  /** A PersistentVolumeClaim holding the model, the data and the job folder, mounted at the same path in every pod. */
  claim: string;
  mountPath: string;
  gpusPerTask?: number;
  namespace?: string;
}

/** The two manifests (shards, then merge), as one YAML stream. */
export function kubernetesManifest(p: ClusterPlan, o: KubernetesOptions): string {
  // A DNS-1123 name from the report's (det.onnx.sensitivity.json → quantlens-det-onnx-sensitivity).
  const name = `quantlens-${path.basename(p.report, '.json').toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || p.job}`;
  const pod = (command: string, gpus?: number) => ({
    restartPolicy: 'Never',
    containers: [{
      name: 'quantlens', image: o.image, workingDir: p.cwd, command: ['bash', '-c', command],
      ...(gpus ? { resources: { limits: { 'nvidia.com/gpu': gpus } } } : {}),
      volumeMounts: [{ name: 'work', mountPath: o.mountPath }],
    }],
    volumes: [{ name: 'work', persistentVolumeClaim: { claimName: o.claim } }],
  });
  const meta = (n: string, step: 'shards' | 'merge') => ({ name: n, ...(o.namespace ? { namespace: o.namespace } : {}), labels: { app: 'quantlens', 'quantlens/job': name, 'quantlens/step': step } });
  const shards = {
    apiVersion: 'batch/v1', kind: 'Job', metadata: meta(name, 'shards'),
    spec: {
      completionMode: 'Indexed', completions: p.shards, parallelism: p.shards,
      // Each index retried on its own; a failed index does not restart the others.
      backoffLimitPerIndex: 1, maxFailedIndexes: p.shards,
      template: { spec: pod(`exec quantlens ${shellJoin(p.args)} --shard "$((JOB_COMPLETION_INDEX + 1))/${p.shards}" --part ${shellQuote(path.join(p.dir, 'parts'))}/part-"$((JOB_COMPLETION_INDEX + 1))".json`, o.gpusPerTask) },
    },
  };
  const merge = {
    apiVersion: 'batch/v1', kind: 'Job', metadata: meta(`${name}-merge`, 'merge'),
    spec: { backoffLimit: 0, template: { spec: pod(`exec quantlens merge ${shellQuote(path.join(p.dir, 'parts'))}/part-{1..${p.shards}}.json -o ${shellQuote(p.report)}`) } },
  };
  const head = [
    `# QuantLens ${p.job} in ${p.shards} shards as a Kubernetes Indexed Job, then its merge.`,
    '# Kubernetes has no job dependencies: apply the first, wait, then apply the second:',
    `#   kubectl apply -f job.yaml -l quantlens/step=shards && kubectl wait --for=condition=complete job/${name} --timeout=24h`,
    `#   kubectl apply -f job.yaml -l quantlens/step=merge`,
    `# The image needs node and quantlens on PATH; the claim '${o.claim}' holds the model, the data and this folder at ${o.mountPath}.`,
  ].join('\n');
  // lineWidth 0: commands stay on one line, as people read and edit them.
  return `${head}\n${YAML.stringify(shards, { lineWidth: 0 })}---\n${YAML.stringify(merge, { lineWidth: 0 })}`;
}

/** Writes job.yaml and job.json into the job folder. */
export function writeKubernetesJob(p: ClusterPlan, o: KubernetesOptions): ClusterJob {
  fs.mkdirSync(path.join(p.dir, 'parts'), { recursive: true });
  const f = new AtomicFile(path.join(p.dir, 'job.yaml'));
  try {
    f.write(Buffer.from(kubernetesManifest(p, o)));
    f.commit();
  } catch (e) {
    f.abort();
    throw e;
  }
  const job: ClusterJob = { quantlens: 'cluster-job', backend: 'kubernetes', job: p.job, args: p.args, cwd: p.cwd, shards: p.shards, report: p.report, created: Date.now(), submissions: [] };
  writeClusterJob(p.dir, job);
  return job;
}
