// npm test's runner: lint (eslint + typescript-eslint) and the unit tier (mocha, plain Node) first, then the integration and e2e tiers in a real
// VS Code; streams their output and ends with one line totalling them: 'N passed, N failed[, N skipped]'.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSystemPackages } from './system-deps.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tiers = [
  // `npm run test:unit` (argument 'unit') runs this tier too: lint counts as one test, passed or failed.
  { name: 'unit: lint', cmd: [path.join(root, 'node_modules/eslint/bin/eslint.js'), '--max-warnings', '0', '.'], lint: true },
  { name: 'unit', cmd: [path.join(root, 'node_modules/mocha/bin/mocha.js'), '--config', '.mocharc.json'] },
  { name: 'integration + e2e', cmd: [path.join(root, 'test/integration/run.mjs')] },
];
const only = process.argv[2];
// Before any tier: a unit test that needs Chromium or PyTorch must not be skipped on a first run.
const stillMissing = ensureSystemPackages();
const total = { passed: 0, failed: 0, skipped: 0 };
let status = 0;

for (const tier of tiers.filter((t) => !only || t.name.startsWith(only))) {
  console.log(`\n=== ${tier.name} ===`);
  const text = await new Promise((resolve) => {
    let out = '';
    const child = spawn(process.execPath, tier.cmd, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.on('data', (d) => { process.stdout.write(d); out += d; });
    child.on('close', (code) => { if (code !== 0) status = 1; resolve(out); });
  });
  const count = (re) => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
  if (tier.lint) {
    if (status) total.failed += 1; else { total.passed += 1; console.log('eslint: no problems'); }
  } else if (tier.name === 'unit') {
    total.passed += count(/^\s*(\d+) passing/gm);
    total.failed += count(/^\s*(\d+) failing/gm);
    total.skipped += count(/^\s*(\d+) pending/gm);
  } else {
    total.passed += count(/^(\d+) passed, \d+ failed/gm);
    total.failed += count(/^\d+ passed, (\d+) failed/gm);
    total.skipped += count(/^\d+ passed, \d+ failed, (\d+) skipped/gm);
  }
}
if (status && total.failed === 0) total.failed = 1; // a tier that crashed without reporting counts as a failure
if (stillMissing.length) console.log(`(tests that need ${stillMissing.join(', ')} were skipped)`);
console.log(`\n${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ''}`);
process.exit(status);
