#!/usr/bin/env node
'use strict';
// The bundled CLI is built by `npm run build` (esbuild.js) into dist/cli.js.
try {
  require('../dist/cli.js');
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes('dist/cli.js')) {
    process.stderr.write('quantlens: error: dist/cli.js is missing; run `npm run build` first\n');
    process.exit(1);
  }
  throw e;
}
