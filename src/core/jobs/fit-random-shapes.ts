import { openInputs, ranAs } from '../calib/shape-hint';
import { concreteShapes, DEFAULT_LENGTH } from '../calib/symbolic-dims';
import { GraphView } from '../onnx/graph';
import { loadModel } from '../onnx/model-io';
import { shapesInferable } from '../runtime/capture';
import { randomFeeds } from '../calib/random-feeds';
import { createSession, type DevicePreference } from '../runtime/session';

/** Lengths tried for open dimensions, after the default: up to a second of 16 kHz audio and then some. */
const LENGTHS = [64, 256, 1024, 4096, 16384];

/**
 * Random inputs long enough for the model, where the default length of its open dimensions (16) is not:
 * an audio model's [batch, samples] ran as 1x16 fails inside its first conv (an openWakeWord spectrogram's
 * kernel is 512 samples), and a variant session could abort the process instead (see shapesInferable).
 * Tries longer lengths for every open dimension that took the default, and gives the first the model
 * takes (shapesInferable, and for a small model a run), as --input-shape would, with a line saying so.
 * Undefined when no dimension took the default, the default is fine, or no length helps.
 */
export async function fitRandomShapes(file: string, given: Record<string, number[]>, device: DevicePreference): Promise<{ shapes: Record<string, number[]>; note: string } | undefined> {
  const loaded = loadModel(file);
  const graph = loaded.model.graph!;
  const view = new GraphView(graph);
  const { inputs, open } = openInputs(graph, given, view);
  const names = inputs.map((v) => v.name!);
  const at = (length: number) => concreteShapes(graph, names, given, 1, view, length);
  const base = at(DEFAULT_LENGTH);
  // The inputs whose sizes follow the default length (not a batch, an image side or a size a layer implies).
  const key = (m: Map<string, number[]>, n: string) => m.get(n)!.join('x');
  const other = at(DEFAULT_LENGTH + 1);
  const longer = open.filter((v) => key(base, v.name!) !== key(other, v.name!));
  if (!longer.length) return undefined;
  const pinned = (m: Map<string, number[]>) => Object.fromEntries(names.map((n) => [n, m.get(n)!]));
  const fit = (shapes: Map<string, number[]>, why: string) => ({
    shapes: Object.fromEntries(longer.map((v) => [v.name!, shapes.get(v.name!)!])),
    note: `random inputs ran ${ranAs(longer, shapes)}: at ${longer.map((v) => key(base, v.name!)).join(', ')} ${why} (--input-shape sets the sizes)`,
  });
  // A small model is also run at each length: shape inference passes a conv 400 wide over 256 samples
  // ((256 - 400) / 160 + 1 truncates to 1 frame) that the run refuses, and sees nothing of a reflect Pad
  // inside an If branch that needs 97 samples (Silero VAD). A large one is judged by inference alone,
  // since a long sequence through attention could take more memory than the machine has.
  const session = loaded.fileBytes + loaded.externalBytes <= RUN_PROBE_BYTES ? (await createSession(file, { device: 'cpu', optimization: 'basic' })).session : undefined;
  try {
    const inferable = (m: Map<string, number[]>) => shapesInferable(loaded, pinned(m), device).catch(() => undefined); // undefined: cannot tell
    const runs = async (m: Map<string, number[]>) => !session || session.run(randomFeeds(graph, { shapes: pinned(m) })).then(() => true, () => false);
    const atBase = await inferable(base);
    // The default length is fine (or nothing tells): the job failed for another reason.
    if (atBase !== false && (!session || (await runs(base)))) return undefined;
    for (const length of LENGTHS) {
      const shapes = at(length);
      if ((await inferable(shapes)) === false || !(await runs(shapes))) continue;
      return fit(shapes, atBase === false ? 'onnxruntime\'s shape inference finds them too small for the model' : 'onnxruntime could not run it');
    }
    return undefined;
  } finally {
    await session?.release();
  }
}

/** Models up to this size are run at longer lengths when their shapes look fine (see fitRandomShapes). */
const RUN_PROBE_BYTES = 64 * 2 ** 20;
