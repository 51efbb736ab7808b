// Sensitivity cost: local ÷ one plain calibration pass (MinMax), and end-to-end ÷ local.
import fs from 'node:fs';
import path from 'node:path';
import { forEachFixture, median, row } from './report';
import { quantizeModel } from '../src/core/jobs/quantize-model';
import { analyzeSensitivity } from '../src/core/sensitivity/analyze';
import { spearman } from '../src/core/eval/stats';

void forEachFixture(['transformer', 'tiny-vlm'], async (name, model, dir) => {
  const calibration = 'random:16';
  const cal: number[] = [], local: number[] = [], e2e: number[] = [];
  let rho = 0;
  for (let rep = 0; rep < 3; rep++) {
    const q = await quantizeModel(model, path.join(dir, 'q.onnx'), { mode: 'static', calibration });
    cal.push(JSON.parse(fs.readFileSync(q.report, 'utf8')).timings.calibration);
    let t = performance.now();
    const l = await analyzeSensitivity(model, { mode: 'static', calibration, method: 'local', output: null });
    local.push((performance.now() - t) / 1000);
    t = performance.now();
    const e = await analyzeSensitivity(model, { mode: 'static', calibration, method: 'end-to-end', output: null });
    e2e.push((performance.now() - t) / 1000);
    rho = spearman(l.layers.map((x) => x.sensitivity), e.layers.map((x) => x.sensitivity));
  }
  row(`${name}: local sensitivity ÷ one calibration pass`, `${(median(local) / median(cal)).toFixed(2)}x  (${median(local).toFixed(2)} s vs ${median(cal).toFixed(2)} s)`);
  row(`${name}: end-to-end ÷ local`, `${(median(e2e) / median(local)).toFixed(2)}x  (Spearman ${rho.toFixed(3)})`);
});
