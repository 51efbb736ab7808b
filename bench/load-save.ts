// One measured load+save in a fresh process: prints {seconds, peakRssBytes} as JSON.
import { loadModel, saveModel } from '../src/core/onnx/model-io';

const [input, output] = process.argv.slice(2);
const t0 = performance.now();
const m = loadModel(input);
saveModel(m.model, output, { source: m.loc });
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(JSON.stringify({ seconds, peakRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\n');
