// Debian packages the tests need, checked (and installed when we may: root with apt) before any tier
// runs, so a first `npm test` on a fresh machine runs the same tests as the hundredth: chromium (e2e,
// webviews, rendered text for the real-data tests), libkrb5-dev + build-essential (code-server's native
// modules), python3-onnx and python3-torch/torchvision (the official onnx checker, real PyTorch exports),
// slurmctld + slurmd + slurm-client + munge (a real one-node Slurm for the cluster tests), alsa-utils (its
// recorded voice, /usr/share/sounds/alsa, is the real speech the Silero VAD test hears), libonnx-testdata
// (onnx's own test cases, run through QuantLens against their expected outputs).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';

const PACKAGES = [
  ['/usr/bin/chromium', 'chromium'],
  ['/usr/include/gssapi/gssapi.h', 'libkrb5-dev'],
  ['/usr/bin/g++', 'build-essential'],
  // A one-node Slurm cluster for the sharded-job tests (scripts/slurm/start-slurm.sh starts it).
  ['/usr/sbin/slurmctld', 'slurmctld'],
  ['/usr/sbin/slurmd', 'slurmd'],
  ['/usr/bin/sbatch', 'slurm-client'],
  ['/usr/sbin/munged', 'munge'],
  ['/usr/share/sounds/alsa/Front_Center.wav', 'alsa-utils'],
  // onnx's own test cases (PyTorch-exported layers with their expected outputs).
  ['/usr/share/libonnx-testdata/data/pytorch-converted', 'libonnx-testdata'],
];
const PYTHON = [['onnx', 'python3-onnx'], ['torch', 'python3-torch'], ['torchvision', 'python3-torchvision']];

function missingPackages() {
  const missing = PACKAGES.filter(([f]) => !fs.existsSync(f)).map(([, p]) => p);
  for (const [mod, pkg] of PYTHON) {
    if (spawnSync('/usr/bin/python3', ['-c', `import ${mod}`], { stdio: 'ignore' }).status !== 0) missing.push(pkg);
  }
  return missing;
}

/** Returns the packages still missing (empty when all are there). */
export function ensureSystemPackages(log = console.log) {
  const missing = missingPackages();
  if (!missing.length) return [];
  if (process.getuid?.() === 0 && fs.existsSync('/usr/bin/apt-get')) {
    log(`tests: apt-get install ${missing.join(' ')}`);
    execFileSync('bash', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${missing.join(' ')} >/dev/null`], { stdio: 'inherit' });
    return missingPackages();
  }
  log(`tests: needs Debian packages: sudo apt-get install ${missing.join(' ')}`);
  return missing;
}
