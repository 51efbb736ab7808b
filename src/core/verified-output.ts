import fs from 'node:fs';
import path from 'node:path';
import { compareModels, type CompareReport } from './compare';
import { CancelledError, errorLine, QuantLensError } from './base/errors';
import type { JobContext } from './base/jobs';
import { saveModel, type LoadedModel } from './onnx/model-io';
import type { ModelProto } from './onnx/proto';
import { TensorSpill } from './onnx/tensor-spill';
import { verifySegmentBytes } from './runtime/segments';
import { checkWritable } from './fs/output-path';
import type { DevicePreference } from './runtime/session';

export interface VerifyOptions {
  /** Data to compare on: a folder, or `random:N`. */
  data: string;
  samples: number;
  device: DevicePreference;
  latencyRuns?: number;
  /** 'quantized', 'pruned': for the error message. */
  what: string;
  /** Shapes for inputs with dynamic dimensions (`--input-shape`). */
  inputShapes?: Record<string, number[]>;
}

/**
 * A temp folder beside the output where the edited model is written, checked, and only then moved into
 * place. For a model with external data, `spill` streams the tensors an edit creates into the staged data
 * file as they are made (see TensorSpill), so memory holds one tensor at a time.
 */
export class OutputStage {
  readonly dir: string;
  readonly staged: string;
  readonly spill?: TensorSpill;

  constructor(readonly output: string, stream: boolean) {
    this.dir = fs.mkdtempSync(path.join(path.dirname(path.resolve(output)), '.quantlens-'));
    this.staged = path.join(this.dir, path.basename(output));
    if (stream) {
      const dataName = `${path.basename(output)}.data`;
      this.spill = new TensorSpill(path.join(this.dir, dataName), dataName);
    }
  }

  /** Removes the folder and whatever is left in it (everything, unless the output was moved into place). */
  close(): void {
    this.spill?.data.abort();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Streams the edit of `loaded` when it keeps its tensors in external data (large models do). */
export const streamsOutput = (loaded: LoadedModel) => loaded.externalFiles.length > 0;

/**
 * Saves an edited model beside `output` in a temp folder (`stage`, when the edit already streamed into one), checks it in onnxruntime against `reference`
 * (the input model, or the original of an iterative run), and only then moves it into place: a model
 * that fails, or a cancelled job, leaves nothing.
 */
export async function saveVerified(model: ModelProto, loaded: LoadedModel, reference: string, output: string, v: VerifyOptions, ctx: JobContext = {}, input = reference, stage = new OutputStage(output, false)): Promise<{ check: CompareReport; sizeAfter: number; saveSeconds: number; verifySeconds: number }> {
  const outDir = path.dirname(path.resolve(output));
  try {
    const staged = stage.staged;
    const ts = performance.now();
    const saved = saveModel(model, staged, { source: loaded.loc, externalData: loaded.externalFiles.length ? 'always' : 'auto', ...(stage.spill ? { spill: stage.spill } : {}) });
    const saveSeconds = (performance.now() - ts) / 1000;
    const tv = performance.now();
    let check: CompareReport;
    try {
      // The reference's inputs and size are known here (same inputs as the edited model when it is the
      // input): no need to read either file into memory again. (Random samples made from the edited graph
      // are the float graph's: token ids follow a table through its quantized form, see indexBound.)
      const sizeStaged = fs.statSync(staged).size + (saved.dataBytes ?? 0);
      const known = reference === input ? { referenceGraph: model.graph!, referenceBytes: loaded.fileBytes + loaded.externalBytes, candidateBytes: sizeStaged } : undefined;
      check = await compareModels(reference, staged, { data: v.data, samples: v.samples, device: v.device, inputShapes: v.inputShapes, latencyRuns: v.latencyRuns ?? 3, latencyBudgetMs: 1000, ...(known ? { known } : {}), ...(stage.spill ? { mappedReference: true, segmentBytes: verifySegmentBytes() } : {}) }, ctx);
    } catch (e) {
      // The reference itself failing (on this data, or to load) is its error, not the edit's.
      if (e instanceof CancelledError || (e instanceof QuantLensError && e.file === reference)) throw e;
      throw new QuantLensError(output, `the ${v.what} model failed verification in onnxruntime: ${errorLine(e)}`, 'runtime');
    }
    const verifySeconds = (performance.now() - tv) / 1000;
    if (saved.dataFile) fs.renameSync(saved.dataFile, path.join(outDir, path.basename(saved.dataFile)));
    fs.renameSync(staged, path.resolve(output));
    return { check, sizeAfter: fs.statSync(output).size + (saved.dataBytes ?? 0), saveSeconds, verifySeconds };
  } finally {
    stage.close();
  }
}

/** The checks every command that writes a model makes on its output path before any work. */
export function checkOutputPath(input: string, output: string): void {
  if (path.resolve(input) === path.resolve(output)) throw new QuantLensError(output, 'the output would overwrite the input model; choose another path');
  const dir = path.dirname(path.resolve(output));
  if (!fs.existsSync(dir)) throw new QuantLensError(output, `folder '${dir}' does not exist`);
  if (!fs.statSync(dir).isDirectory()) throw new QuantLensError(output, `'${dir}' is not a folder`);
  if (fs.existsSync(output) && fs.statSync(output).isDirectory()) throw new QuantLensError(output, 'is a folder; give a file path for the output model');
  checkWritable(output, dir);
}
