// Integration tests in a real VS Code. Default: VS Code's server from the npm package code-server with
// headless Chromium (works offline, see setup-vscode.sh). With QUANTLENS_VSCODE=desktop, a desktop VS Code
// downloaded by @vscode/test-electron runs the same suite.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const suite = path.join(root, 'out/test/integration/suite/index.js');
if (!fs.existsSync(suite) || !fs.existsSync(path.join(root, 'dist/extension.js'))) {
  console.error('integration: build first (npm run build)');
  process.exit(2);
}

// The workspace the tests open: a fixture model and the sample training code.
const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-ws-'));
execFileSync(process.execPath, [path.join(root, 'bin/quantlens.js'), 'fixture', 'tiny-vlm', '-o', path.join(workspace, 'tiny-vlm.onnx')], { stdio: 'inherit' });
fs.cpSync(path.join(root, 'samples/tiny_vlm/model.py'), path.join(workspace, 'model.py'));

if (process.env.QUANTLENS_VSCODE === 'desktop') {
  const { runTests } = await import('@vscode/test-electron');
  await runTests({ extensionDevelopmentPath: root, extensionTestsPath: suite, launchArgs: [workspace, '--disable-extensions'] });
  process.exit(0);
}

const setup = spawnSync('bash', [path.join(root, 'test/integration/setup-vscode.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
if (setup.status !== 0) {
  console.error('integration: could not set up VS Code (code-server)');
  process.exit(2);
}
const env = { ...process.env };
for (const line of setup.stdout.split('\n')) {
  const m = line.match(/^(NODE24|CODE_SERVER_DIR)=(.*)$/);
  if (m) env[m[1]] = m[2];
}
const r = spawnSync(process.execPath, [path.join(root, 'test/integration/vscode-server-harness.mjs'),
  `--extensionDevelopmentPath=${root}`, `--extensionTestsPath=${suite}`, workspace, '--timeout=240',
  ...(process.env.QUANTLENS_SCREENSHOT ? [`--screenshot=${process.env.QUANTLENS_SCREENSHOT}`] : [])], { stdio: 'inherit', env });
fs.rmSync(workspace, { recursive: true, force: true });
process.exit(r.status ?? 2);
