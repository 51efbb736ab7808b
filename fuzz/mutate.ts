// Mutations of real ONNX files for the fuzzer: byte-level damage (truncation, bit flips, corrupt length
// fields, inserted garbage) and structural lies made through the codec (absurd or negative dims, wrong
// data-type tags, raw_data shorter than the shape, deeply nested subgraphs, duplicate names, cycles,
// dangling inputs, hostile external-data locations).
import * as $protobuf from 'protobufjs/minimal';
import { onnx, type ModelProto, type TensorProto } from '../src/core/onnx/proto';
import { walkTensors } from '../src/core/onnx/walk';

export class Rand {
  constructor(private s: number) {}
  next(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = Math.imul(this.s ^ (this.s >>> 15), 1 | this.s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
}

export interface Mutant {
  kind: string;
  bytes: Uint8Array;
}

/** Offsets of length-delimited fields (wire type 2) found by walking the top-level protobuf and one level down. */
function lengthFields(b: Uint8Array): number[] {
  const out: number[] = [];
  const walk = (start: number, end: number, depth: number) => {
    let p = start;
    while (p < end && out.length < 4096) {
      let tag = 0, shift = 0, q = p;
      while (q < end && b[q] & 0x80) { tag |= (b[q] & 0x7f) << shift; shift += 7; q++; if (shift > 28) return; }
      if (q >= end) return;
      tag |= b[q++] << shift;
      const wt = tag & 7;
      if (wt === 0) { while (q < end && b[q] & 0x80) q++; q++; }
      else if (wt === 1) q += 8;
      else if (wt === 5) q += 4;
      else if (wt === 2) {
        const at = q;
        let len = 0; shift = 0;
        while (q < end && b[q] & 0x80) { len += (b[q] & 0x7f) * 2 ** shift; shift += 7; q++; if (shift > 35) return; }
        if (q >= end) return;
        len += b[q++] * 2 ** shift;
        out.push(at);
        if (depth < 2 && q + len <= end) walk(q, q + len, depth + 1);
        q += len;
      } else return;
      p = q;
    }
  };
  walk(0, b.length, 0);
  return out;
}

const varint = (v: number) => {
  const out: number[] = [];
  while (v >= 0x80) { out.push((v % 128) | 0x80); v = Math.floor(v / 128); }
  out.push(v);
  return out;
};

function bytesLevel(r: Rand, src: Uint8Array): Mutant {
  const b = Uint8Array.from(src);
  switch (r.int(4)) {
    case 0: return { kind: 'truncate', bytes: b.subarray(0, r.int(b.length)) };
    case 1: {
      for (let i = 1 + r.int(8); i > 0; i--) b[r.int(b.length)] ^= 1 << r.int(8);
      return { kind: 'bit flips', bytes: b };
    }
    case 2: {
      const fields = lengthFields(src);
      if (!fields.length) return { kind: 'truncate', bytes: b.subarray(0, r.int(b.length)) };
      const at = r.pick(fields);
      let end = at;
      while (end < src.length && src[end] & 0x80) end++;
      const huge = r.pick([2 ** 31 - 1, 2 ** 32 + 7, 2 ** 40, src.length + 1 + r.int(1000), 0]);
      return { kind: 'length field', bytes: Uint8Array.from([...src.subarray(0, at), ...varint(huge), ...src.subarray(end + 1)]) };
    }
    default: {
      const at = r.int(b.length);
      const junk = Array.from({ length: 1 + r.int(64) }, () => r.int(256));
      return { kind: 'inserted bytes', bytes: Uint8Array.from([...src.subarray(0, at), ...junk, ...src.subarray(at)]) };
    }
  }
}

function tensors(m: ModelProto): TensorProto[] {
  return [...walkTensors(m.graph!)].map((s) => s.tensor);
}

function structural(r: Rand, src: Uint8Array): Mutant {
  const m = onnx.ModelProto.decode(src);
  const g = m.graph!;
  const ts = tensors(m);
  const nodes = g.node ?? [];
  const kinds = ['absurd dims', 'negative dims', 'data type tag', 'short raw_data', 'nested subgraphs', 'duplicate names', 'cycle', 'dangling input', 'external location', 'empty graph'];
  const kind = r.pick(kinds);
  const t = ts.length ? r.pick(ts) : undefined;
  switch (kind) {
    case 'absurd dims': if (t) t.dims = [2 ** 20, 2 ** 20, ...(r.int(2) ? [2 ** 10] : [])]; break;
    case 'negative dims': if (t) t.dims = [-1 - r.int(5), ...(t.dims ?? []).slice(1)]; break;
    case 'data type tag': if (t) t.data_type = r.pick([0, 8, 17, 23, 99, 2 ** 30]); break;
    case 'short raw_data': if (t?.raw_data?.length) t.raw_data = t.raw_data.subarray(0, r.int(t.raw_data.length)); break;
    case 'nested subgraphs': {
      // An If whose then-branch nests another If, deeper than any real model (protobufjs itself stops at 100).
      const leaf = (name: string): onnx.IGraphProto => ({ name, node: [], output: [] });
      let inner = leaf('leaf');
      for (let d = 0; d < 20 + r.int(60); d++) inner = { name: `g${d}`, node: [{ op_type: 'If', input: ['cond'], output: [`o${d}`], attribute: [{ name: 'then_branch', type: 5, g: inner }, { name: 'else_branch', type: 5, g: leaf(`e${d}`) }] }], output: [{ name: `o${d}` }] };
      g.node = [...nodes, { op_type: 'If', input: [g.input?.[0]?.name ?? 'x'], output: ['deep'], attribute: [{ name: 'then_branch', type: 5, g: inner }, { name: 'else_branch', type: 5, g: leaf('else') }] }];
      break;
    }
    case 'duplicate names': if (nodes.length > 1) { const a = r.pick(nodes), b = r.pick(nodes); if (a.output?.length && b.output?.length) b.output[0] = a.output[0]; } break;
    case 'cycle': if (nodes.length > 1) { const i = r.int(nodes.length - 1); nodes[i].input = [...(nodes[i].input ?? []), nodes[nodes.length - 1].output![0]]; } break;
    case 'dangling input': if (nodes.length) { const n = r.pick(nodes); n.input = [...(n.input ?? []), 'nowhere_to_be_found']; } break;
    case 'external location': if (t) { t.data_location = 1; t.raw_data = new Uint8Array(0); t.external_data = [{ key: 'location', value: r.pick(['/etc/passwd', '../../../../etc/shadow', 'missing.bin', '', 'a/../../b']) }, { key: 'offset', value: String(r.pick([0, -5, 2 ** 53])) }, { key: 'length', value: String(r.pick([16, 2 ** 40, -1])) }]; } break;
    case 'empty graph': g.node = []; g.output = []; break;
  }
  // Let the encoder write nesting deeper than the loader's protobufjs accepts (this runs in the fuzzer's main
  // thread only; the loader under test keeps its own limit in the worker).
  const limit = $protobuf.util.recursionLimit;
  $protobuf.util.recursionLimit = 100_000;
  try {
    return { kind, bytes: onnx.ModelProto.encode(m).finish() };
  } finally {
    $protobuf.util.recursionLimit = limit;
  }
}

export function mutate(r: Rand, src: Uint8Array): Mutant {
  return r.int(2) ? bytesLevel(r, src) : structural(r, src);
}
