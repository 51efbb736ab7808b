// Runs a VS Code extension's tests inside a real VS Code extension host, offline: VS Code's own server
// (from the npm package code-server) and headless Debian Chromium driven by playwright-core.
// Accepts the arguments a VS Code binary takes from @vscode/test-electron, so it can stand in for one:
//   --extensionDevelopmentPath=DIR --extensionTestsPath=FILE [FOLDER] [--timeout=S] [--screenshot=FILE]
// Env: NODE24, CODE_SERVER_DIR (from setup-vscode.sh), CHROMIUM (default /usr/bin/chromium).
// Prints mocha's output and a final 'N passed, N failed' line; exit 0 pass, 1 failures, 2 harness error.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const args = process.argv.slice(2);
const flag = (name) => args.filter((a) => a.startsWith(`--${name}=`)).map((a) => a.slice(name.length + 3));
const devPaths = flag('extensionDevelopmentPath').map((p) => path.resolve(p));
const testsPath = flag('extensionTestsPath')[0] && path.resolve(flag('extensionTestsPath')[0]);
// --e2e=FILE: no extension-host suite; FILE's default export drives the workbench UI through playwright.
const e2ePath = flag('e2e')[0] && path.resolve(flag('e2e')[0]);
// --installVsix=FILE: install the packaged extension into the server first (what a user does) and drive
// that one: e2e only, no extension under development.
const vsix = flag('installVsix')[0] && path.resolve(flag('installVsix')[0]);
if (!(devPaths.length || (vsix && e2ePath)) || !(testsPath || e2ePath)) {
  console.error('usage: vscode-server-harness (--extensionDevelopmentPath=DIR | --installVsix=FILE) (--extensionTestsPath=FILE | --e2e=FILE) [FOLDER]');
  process.exit(2);
}
const timeoutMs = (Number(flag('timeout')[0]) || 300) * 1000;
const screenshot = flag('screenshot')[0];
const node24 = process.env.NODE24;
const csDir = process.env.CODE_SERVER_DIR;
if (!node24 || !csDir) {
  console.error('vscode-server-harness: NODE24 and CODE_SERVER_DIR must be set (run test/integration/setup-vscode.sh)');
  process.exit(2);
}

const t0 = Date.now();
const say = (m) => console.log(`[harness ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-vscode-'));
const dirs = Object.fromEntries(['user', 'server', 'extensions', 'rt', 'workspace'].map((d) => [d, path.join(tmp, d)]));
for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
const folder = path.resolve(args.find((a) => !a.startsWith('-')) ?? dirs.workspace);
fs.mkdirSync(path.join(dirs.user, 'User'), { recursive: true });
fs.writeFileSync(path.join(dirs.user, 'User/settings.json'), JSON.stringify({
  'telemetry.telemetryLevel': 'off', 'update.mode': 'none', 'extensions.autoCheckUpdates': false, 'extensions.autoUpdate': false,
  'workbench.startupEditor': 'none', 'workbench.enableExperiments': false, 'security.workspace.trust.enabled': false,
  'chat.disableAIFeatures': true, 'git.enabled': false,
  // The secondary side bar (chat) opens by default and, with AI features off, stays empty: the screenshots'
  // "empty group" on the right. Users close it; the harness starts without it.
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
}));

if (vsix) {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(node24, [path.join(csDir, 'lib/vscode/out/server-main.js'), '--extensions-dir', dirs.extensions, '--server-data-dir', dirs.server,
    '--user-data-dir', dirs.user, '--accept-server-license-terms', '--install-extension', vsix], { encoding: 'utf8', env: { ...process.env, TMPDIR: dirs.rt } });
  if (r.status !== 0 || !fs.readdirSync(dirs.extensions).some((d) => d.startsWith('quantlens.'))) {
    console.error(`vscode-server-harness: installing ${vsix} failed:\n${r.stdout}\n${r.stderr}`);
    process.exit(2);
  }
  console.log(`[harness] installed ${path.basename(vsix)} into the server's extensions`);
}

const port = await new Promise((resolve, reject) => {
  const s = net.createServer().on('error', reject);
  s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
});
const authority = `127.0.0.1:${port}`;
const testOutput = path.join(tmp, 'test-output.txt');
fs.writeFileSync(testOutput, '');
const serverLog = fs.openSync(path.join(tmp, 'server.log'), 'a');
// Own process group, so cleanup ends the server and everything it forked (extension host included).
const server = spawn(node24, [path.join(csDir, 'lib/vscode/out/server-main.js'), '--host', '127.0.0.1', '--port', String(port),
  '--without-connection-token', '--accept-server-license-terms', '--enable-smoke-test-driver', '--disable-telemetry',
  '--user-data-dir', dirs.user, '--server-data-dir', dirs.server, '--extensions-dir', dirs.extensions], {
  detached: true, stdio: ['ignore', serverLog, serverLog],
  env: { ...process.env, TMPDIR: dirs.rt, XDG_RUNTIME_DIR: dirs.rt, QUANTLENS_TEST_OUTPUT: testOutput, QUANTLENS_REAL_TESTS: testsPath },
});

let shown = 0;
let text = '';
const pump = () => {
  const b = fs.readFileSync(testOutput);
  if (b.length > shown) {
    const chunk = b.subarray(shown).toString();
    process.stdout.write(chunk);
    text += chunk;
    shown = b.length;
  }
};
const pumpTimer = setInterval(pump, 250);
let browser;
let code = 2;
const cleanup = async () => {
  clearInterval(pumpTimer);
  try { await browser?.close(); } catch { /* already closed */ }
  for (const sig of ['SIGTERM', 'SIGKILL']) {
    try { process.kill(-server.pid, sig); } catch { /* gone */ }
    await new Promise((r) => setTimeout(r, 300));
  }
};
process.on('SIGINT', async () => { await cleanup(); process.exit(130); });

try {
  for (let i = 0; ; i++) {
    try { if ((await fetch(`http://${authority}/version`)).status < 500) break; } catch { /* not up yet */ }
    if (server.exitCode !== null || i > 600) throw new Error(`the VS Code server did not start; see ${tmp}/server.log`);
    await new Promise((r) => setTimeout(r, 100));
  }
  say(`VS Code server on ${authority}`);
  const remote = (p) => `vscode-remote://${authority}${p}`;
  const payload = [...devPaths.map((p) => ['extensionDevelopmentPath', remote(p)]),
    ...(testsPath ? [['extensionTestsPath', remote(path.join(here, 'ext-host-entry.cjs'))]] : []), ['skipWelcome', 'true'], ['skipReleaseNotes', 'true']];
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  const browserLog = fs.createWriteStream(path.join(tmp, 'browser.log'));
  let exited;
  const done = new Promise((r) => (exited = r));
  await page.exposeFunction('codeAutomationLog', (type, a) => browserLog.write(`[${type}] ${JSON.stringify(a)}\n`));
  await page.exposeFunction('codeAutomationExit', (c) => exited(c));
  page.on('console', (m) => browserLog.write(`[console.${m.type()}] ${m.text()}\n`));
  await page.goto(`http://${authority}/?folder=${encodeURIComponent(folder)}&payload=${encodeURIComponent(JSON.stringify(payload))}`);
  if (e2ePath) {
    say('workbench loading; driving the UI');
    const steps = (await import(e2ePath)).default;
    let passed = 0, failed = 0;
    for (const [name, step] of Object.entries(steps)) {
      try {
        await step(page, { say, folder, tmp, installed: !!vsix });
        console.log(`    ✔ ${name}`);
        passed++;
      } catch (e) {
        console.log(`    ✗ ${name}\n      ${String(e?.message ?? e).split('\n').join('\n      ')}`);
        failed++;
        await page.screenshot({ path: path.join(tmp, `failed-${passed + failed}.png`) }).catch(() => {});
      }
    }
    if (screenshot) await page.screenshot({ path: screenshot }).catch(() => {});
    console.log(`${passed} passed, ${failed} failed`);
    code = failed ? 1 : 0;
    throw { done: true };
  }
  say('workbench loading; the tests run in the extension host');
  const result = await Promise.race([done, new Promise((r) => setTimeout(() => r('timeout'), timeoutMs - (Date.now() - t0)))]);
  if (screenshot) await page.screenshot({ path: screenshot }).catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
  pump();
  if (result === 'timeout') {
    say(`timed out; logs in ${tmp}`);
  } else {
    code = result;
    const n = (re) => Number((text.match(re) ?? [])[1] ?? 0);
    const passed = n(/^\s*(\d+) passing/m), failed = n(/^\s*(\d+) failing/m), pending = n(/^\s*(\d+) pending/m);
    if (!text) {
      say(`no test output: the suite never started; see ${tmp}/browser.log`);
      code = 2;
    } else {
      console.log(`${passed} passed, ${failed} failed${pending ? `, ${pending} skipped` : ''}`);
    }
  }
} catch (e) {
  if (!e?.done) {
    say(`error: ${e?.message ?? e}`);
    code = 2;
  }
} finally {
  await cleanup();
  if (code === 0 && !process.env.KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
  else say(`logs kept in ${tmp}`);
}
process.exit(code);
