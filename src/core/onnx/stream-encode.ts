import type { Writer } from 'protobufjs/minimal';

/** What the encoder writes to: an open output file. */
export interface ByteSink {
  write(bytes: Uint8Array): void;
}

// protobufjs' Writer keeps a list of operations {fn, len, val} and copies them all into one buffer in
// finish(). For a 1 GB model that is a second gigabyte of memory and a slow first-touch copy, so this walks
// the same list itself: small operations go through a staging buffer, large byte fields (tensor data) are
// written straight from where they already are.
interface Op {
  fn: (val: unknown, buf: Uint8Array, pos: number) => void;
  len: number;
  val: unknown;
  next: Op | null;
}

const STAGING = 8 << 20;
const DIRECT = 1 << 20;

/** Writes what `writer.finish()` would return, without building it in memory. Returns the byte count. */
export function writeEncoded(writer: Writer, sink: ByteSink): number {
  const w = writer as unknown as { head: Op; len: number };
  const staging = Buffer.allocUnsafe(STAGING);
  let used = 0;
  let total = 0;
  const flush = () => {
    if (used) sink.write(staging.subarray(0, used));
    total += used;
    used = 0;
  };
  for (let op = w.head.next; op; op = op.next) {
    if (op.len >= DIRECT && op.val instanceof Uint8Array && op.val.length === op.len) {
      flush();
      sink.write(op.val);
      total += op.len;
      continue;
    }
    if (op.len > STAGING) {
      flush();
      const big = Buffer.allocUnsafe(op.len);
      op.fn(op.val, big, 0);
      sink.write(big);
      total += op.len;
      continue;
    }
    if (used + op.len > STAGING) flush();
    op.fn(op.val, staging, used);
    used += op.len;
  }
  flush();
  if (total !== w.len) throw new Error(`protobuf stream encoder wrote ${total} bytes, expected ${w.len}`);
  return total;
}
