// Rewrites a model with every tensor in one external data file beside it.
import { loadModel, saveModel } from '../src/core/onnx/model-io';

const [input, output] = process.argv.slice(2);
const m = loadModel(input);
saveModel(m.model, output, { externalData: 'always', source: m.loc });
