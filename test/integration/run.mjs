// Integration tests in a real VS Code. Default: VS Code's server from the npm package code-server with
// headless Chromium (works offline, see setup-vscode.sh). With QUANTLENS_VSCODE=desktop, a desktop VS Code
// downloaded by @vscode/test-electron runs the same suite.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSystemPackages } from '../system-deps.mjs';

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
torchvisionWorkspace(path.join(workspace, 'torchvision'));
// A real export for the e2e screenshots: PaddleOCR rec and rendered text lines to calibrate it.
execFileSync(process.execPath, [path.join(root, 'out/test/integration/suite/ocr-workspace.js'), workspace], { stdio: 'inherit', cwd: root });

/**
 * Real PyTorch code for the hover tests: torchvision's own vision_transformer.py and resnet.py as installed,
 * beside the sensitivity reports the CLI made on exports of those architectures (test/python/module_oracle.py).
 * Skipped (the tests skip too) where Debian's python3-torch/torchvision are missing.
 */
function torchvisionWorkspace(dest) {
  const py = '/usr/bin/python3';
  const tv = spawnSync(py, ['-c', 'import os, torchvision; print(os.path.dirname(torchvision.__file__))'], { encoding: 'utf8' });
  if (tv.status !== 0) return console.log('integration: no python3-torchvision; the torchvision hover test will skip');
  const exports = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-tv-'));
  try {
    execFileSync(py, [path.join(root, 'test/python/module_oracle.py'), exports], { stdio: ['ignore', 'ignore', 'ignore'] });
    fs.mkdirSync(dest);
    for (const [source, model] of [['vision_transformer.py', 'vit'], ['resnet.py', 'resnet18']]) {
      fs.cpSync(path.join(tv.stdout.trim(), 'models', source), path.join(dest, source));
      fs.cpSync(path.join(exports, `${model}.onnx`), path.join(dest, `${model}.onnx`));
      execFileSync(process.execPath, [path.join(root, 'bin/quantlens.js'), 'sensitivity', path.join(dest, `${model}.onnx`), '--calibration', 'random:2', '--mode', 'weight'], { stdio: ['ignore', 'ignore', 'inherit'] });
    }
  } finally {
    fs.rmSync(exports, { recursive: true, force: true });
  }
}

if (process.env.QUANTLENS_VSCODE === 'desktop') {
  const { runTests } = await import('@vscode/test-electron');
  await runTests({ extensionDevelopmentPath: root, extensionTestsPath: suite, launchArgs: [workspace, '--disable-extensions'] });
  process.exit(0);
}

// Debian packages the real VS Code and the browser need (run-all.mjs checked them already; again here
// when this tier runs alone).
if (ensureSystemPackages().some((p) => ['chromium', 'libkrb5-dev', 'build-essential'].includes(p))) process.exit(2);
const setup = spawnSync('bash', [path.join(root, 'test/integration/setup-vscode.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
if (setup.status !== 0) {
  console.error('integration: could not set up VS Code (code-server)');
  process.exit(2);
}
// Screenshots of the e2e flows (what a user sees) land here unless QUANTLENS_SCREENSHOT_DIR says otherwise.
const env = { ...process.env, QUANTLENS_SCREENSHOT_DIR: process.env.QUANTLENS_SCREENSHOT_DIR ?? path.join(root, 'test-results', 'screenshots') };
for (const line of setup.stdout.split('\n')) {
  const m = line.match(/^(NODE24|CODE_SERVER_DIR)=(.*)$/);
  if (m) env[m[1]] = m[2];
}
const harness = (mode, shot) => spawnSync(process.execPath, [path.join(root, 'test/integration/vscode-server-harness.mjs'),
  `--extensionDevelopmentPath=${root}`, mode, workspace, '--timeout=240',
  `--screenshot=${path.join(env.QUANTLENS_SCREENSHOT_DIR, shot)}`], { stdio: 'inherit', env }).status ?? 2;
fs.mkdirSync(env.QUANTLENS_SCREENSHOT_DIR, { recursive: true });
// QUANTLENS_SKIP_SUITE=1 / QUANTLENS_SKIP_VSIX=1: one tier alone, while working on the other.
console.log('integration: extension-host suite');
const suiteStatus = process.env.QUANTLENS_SKIP_SUITE === '1' ? 0 : harness(`--extensionTestsPath=${suite}`, 'integration.png');
console.log('e2e: the workbench UI in Chromium');
const e2eStatus = harness(`--e2e=${path.join(root, 'test/e2e/explorer.e2e.mjs')}`, 'e2e.png');
// The same UI steps against the packaged extension installed into VS Code, as a user installs it.
let vsixStatus = 0;
if (process.env.QUANTLENS_SKIP_VSIX !== '1') {
  console.log('e2e: the packaged VSIX, installed');
  const pack = spawnSync('npm', ['run', 'package', '--silent'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const file = path.join(root, 'quantlens.vsix');
  if (pack.status !== 0 || !fs.existsSync(file)) {
    console.log(`0 passed, 1 failed\n  npm run package failed:\n${(pack.stderr || pack.stdout).slice(-1500)}`);
    vsixStatus = 1;
  } else {
    vsixStatus = spawnSync(process.execPath, [path.join(root, 'test/integration/vscode-server-harness.mjs'), `--installVsix=${file}`,
      `--e2e=${path.join(root, 'test/e2e/explorer.e2e.mjs')}`, workspace, '--timeout=240', `--screenshot=${path.join(env.QUANTLENS_SCREENSHOT_DIR, 'vsix.png')}`],
    { stdio: 'inherit', env: { ...env, QUANTLENS_SCREENSHOT_DIR: path.join(env.QUANTLENS_SCREENSHOT_DIR, 'installed-vsix') } }).status ?? 2;
  }
}
fs.rmSync(workspace, { recursive: true, force: true });
process.exit(Math.max(suiteStatus, e2eStatus, vsixStatus));
