// Bundles the extension, the engine process, the CLI and the webview entries; tests are bundled too so
// mocha runs plain JavaScript. `vscode` and `onnxruntime-node` (a native addon) stay external.
// Usage: node esbuild.js [--production] [--watch]
const esbuild = require('esbuild');
const fs = require('fs');
const path = require('path');

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const node = {
  bundle: true, platform: 'node', target: 'node20', format: 'cjs', sourcemap: !production, minify: production,
  external: ['vscode', 'onnxruntime-node', 'mocha', 'playwright-core'], logLevel: 'warning',
};

const listTests = (dir) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f)) : []);

const builds = [
  { ...node, entryPoints: { extension: 'src/extension/extension.ts', engine: 'src/engine/main.ts', cli: 'src/cli/index.ts' }, outdir: 'dist' },
  { bundle: true, platform: 'browser', target: 'es2022', format: 'iife', sourcemap: !production, minify: production, logLevel: 'warning',
    entryPoints: { 'webview/model-summary': 'webview/model-summary/main.ts', 'webview/results': 'webview/results/main.ts' }, outdir: 'dist' },
];
if (!production) {
  builds.push({ ...node, entryPoints: listTests('test/unit'), outdir: 'out/test/unit' });
  builds.push({ ...node, entryPoints: [...listTests('test/integration/suite')], outdir: 'out/test/integration/suite' });
  builds.push({ ...node, entryPoints: listTests('bench'), outdir: 'out/bench' });
  builds.push({ ...node, entryPoints: listTests('fuzz'), outdir: 'out/fuzz' });
}

async function main() {
  if (watch) {
    for (const b of builds) await (await esbuild.context(b)).watch();
    console.log('esbuild: watching');
    return;
  }
  await Promise.all(builds.map((b) => esbuild.build(b)));
  // uPlot's stylesheet travels beside the panel bundle (the webview CSP allows local styles only).
  fs.mkdirSync('dist/webview', { recursive: true });
  fs.copyFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'dist/webview/uPlot.min.css');
  // Codicons (VS Code's icon font) for the panels' buttons and tabs.
  for (const f of ['codicon.css', 'codicon.ttf']) fs.copyFileSync(require.resolve(`@vscode/codicons/dist/${f}`), `dist/webview/${f}`);
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
