import { QuantLensError } from '../base/errors';
import type { GraphProto } from '../onnx/proto';
import { describeValue } from '../onnx/value-type';

/** Sizes for model inputs by name (`--input-shape x=1x3x48x320`), for dynamic dimensions. */
export type InputShapes = Record<string, number[]>;

/** 'name=1x3x48x320' → ['name', [1, 3, 48, 320]]; a usage error otherwise. */
export function parseInputShape(text: string): [string, number[]] {
  const m = /^(.+)=(\d+(?:x\d+)*)$/.exec(text.trim());
  const dims = m ? m[2].split('x').map(Number) : [];
  if (!m || dims.some((d) => !(d > 0))) throw new QuantLensError(undefined, `--input-shape takes NAME=DxDx... with positive sizes (e.g. x=1x3x48x320), not '${text}'`, 'usage');
  return [m[1], dims];
}

/** The graph's data inputs (not initializers listed as inputs), as declared. */
export function dataInputs(graph: GraphProto) {
  const stored = new Set((graph.initializer ?? []).map((t) => t.name));
  return (graph.input ?? []).filter((v) => v.name && !stored.has(v.name));
}

/**
 * Checks given shapes against the declared inputs: the input exists, the rank matches and fixed
 * dimensions keep their size. Errors name the file, the input and the dimension.
 */
export function checkInputShapes(graph: GraphProto, shapes: InputShapes | undefined, file?: string): void {
  if (!shapes) return;
  const inputs = new Map(dataInputs(graph).map((v) => [v.name!, describeValue(v).shape]));
  for (const [name, dims] of Object.entries(shapes)) {
    const declared = inputs.get(name);
    if (declared === null) continue; // no shape declared: any rank goes
    if (!declared) throw new QuantLensError(file, `--input-shape names '${name}', which is not an input of the model (inputs: ${[...inputs.keys()].join(', ')})`, 'usage');
    if (declared.length !== dims.length) throw new QuantLensError(file, `--input-shape ${name}: ${dims.length} dimensions given, the model's input has ${declared.length} ([${declared.join(', ')}])`, 'usage');
    declared.forEach((d, k) => {
      if (typeof d === 'number' && d > 0 && d !== dims[k]) throw new QuantLensError(file, `--input-shape ${name}: dimension ${k} is fixed at ${d} in the model, not ${dims[k]}`, 'usage');
    });
  }
}

/**
 * What was chosen for each symbolic dimension of the inputs (the given shape, or the default rule of
 * random inputs), as 'x: p2o.DynamicDimension.1 = 320', so reports can say which sizes ran.
 */
export function chosenDims(graph: GraphProto, used: Record<string, readonly number[]>): string[] {
  const out: string[] = [];
  const named = new Set<string>();
  for (const v of dataInputs(graph)) {
    const declared = describeValue(v).shape ?? [];
    const dims = used[v.name!];
    if (!dims) continue;
    declared.forEach((d, k) => {
      if (typeof d === 'number' && d > 0) return;
      // A named dimension once (inputs that share it share its size); an unnamed one per input.
      if (typeof d === 'string' && d) {
        if (!named.has(d)) out.push(`${d} = ${dims[k]}`);
        named.add(d);
      } else out.push(`${v.name}: dim ${k} = ${dims[k]}`);
    });
  }
  return out;
}
