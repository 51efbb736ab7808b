import { AtomicFile } from '../fs/atomic';
import type { TensorProto } from './proto';

/** Offsets of tensors this big are page aligned, so onnxruntime can memory-map them. */
const ALIGN = 4096;
const ALIGN_FROM = 1 << 20;

/** Appends `bytes` to an external data file (aligned when large) and points `t` at them. */
export function appendExternal(t: TensorProto, bytes: Uint8Array, file: AtomicFile, dataName: string): void {
  if (bytes.length >= ALIGN_FROM) file.pad(ALIGN);
  const offset = file.position;
  file.write(bytes);
  Object.assign(t, {
    raw_data: new Uint8Array(0), data_location: 1,
    external_data: [{ key: 'location', value: dataName }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(bytes.length) }],
  });
}

/**
 * Streams the tensors an edit creates straight into the output's external data file, as they are made,
 * so a model with external data is rewritten tensor by tensor: memory holds one layer's weights at a
 * time, never the whole quantized model. `saveModel` then appends the rest to the same file and leaves
 * these tensors where they are.
 */
export class TensorSpill {
  readonly data: AtomicFile;
  private readonly spilled = new WeakSet<TensorProto>();
  /** Bytes written so far, for reports and tests. */
  bytes = 0;
  count = 0;

  /** `dataPath`: the external data file the saved model will name (`<output>.data` beside the output). */
  constructor(readonly dataPath: string, readonly dataName: string, readonly threshold = 1024) {
    this.data = new AtomicFile(dataPath);
  }

  /** Writes a new tensor's raw_data to the data file now (when at least `threshold` bytes) and points the tensor there. */
  take(t: TensorProto): TensorProto {
    const raw = t.raw_data;
    if (!raw || raw.length < this.threshold || (t.external_data?.length ?? 0) > 0) return t;
    appendExternal(t, raw, this.data, this.dataName);
    this.spilled.add(t);
    this.bytes += raw.length;
    this.count++;
    return t;
  }

  /** Whether `t` already lives in this data file (saveModel leaves it alone). */
  has(t: TensorProto): boolean {
    return this.spilled.has(t);
  }
}
