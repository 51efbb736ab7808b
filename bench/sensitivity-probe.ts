import path from 'node:path';
import os from 'node:os';
import fs from 'node:fs';
import { FIXTURES } from '../src/core/fixtures';
import { saveModel } from '../src/core/onnx/model-io';
import { analyzeSensitivity } from '../src/core/sensitivity/analyze';
import { spearman } from '../src/core/sensitivity/stats';
(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sens-'));
  for (const name of ['transformer', 'tiny-vlm']) {
    const f = path.join(dir, `${name}.onnx`);
    saveModel(FIXTURES[name].build(), f);
    for (const mode of [{ mode: 'static' }, { mode: 'weight', bits: 4 }] as const) {
      let t = performance.now();
      const local = await analyzeSensitivity(f, { ...mode, calibration: 'random:8', method: 'local', output: null });
      const tl = performance.now() - t; t = performance.now();
      const e2e = await analyzeSensitivity(f, { ...mode, calibration: 'random:8', method: 'end-to-end', output: null });
      const te = performance.now() - t;
      console.log(name, JSON.stringify(mode), 'layers', local.layers.length, 'spearman', spearman(local.layers.map((l) => l.sensitivity), e2e.layers.map((l) => l.sensitivity)).toFixed(3), 'local', (tl / 1000).toFixed(2), 's e2e', (te / 1000).toFixed(2), 's');
    }
  }
})();
