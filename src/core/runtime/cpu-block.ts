import fs from 'node:fs';
import os from 'node:os';

/** The x86-64 CPU's feature flags (read once per process); undefined elsewhere or when unreadable. */
function x64Flags(): string | undefined {
  if (flags === null) {
    try {
      flags = os.arch() === 'x64' ? ` ${(fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags')) ?? '').replace(/^flags\s*:/, '')} ` : undefined;
    } catch {
      flags = undefined;
    }
  }
  return flags;
}
let flags: string | undefined | null = null;

/**
 * The channel count onnxruntime's CPU convolutions work in: its NCHWc layout blocks channels by 16 on
 * AVX-512 and by 8 on other x86-64 CPUs, and pads a conv whose channels are not a multiple (padding and
 * reorders that can make a pruned model slower than the unpruned one). Elsewhere 4 (a NEON vector).
 */
export function cpuChannelBlock(): { block: number; why: string } {
  if (os.arch() !== 'x64') return { block: 4, why: `${os.arch()} CPU` };
  const f = x64Flags();
  if (f === undefined) return { block: 8, why: 'x86-64 CPU (features unknown)' };
  return f.includes(' avx512f ') ? { block: 16, why: "onnxruntime's NCHWc block on this AVX-512 CPU" } : { block: 8, why: "onnxruntime's NCHWc block on this x86-64 CPU" };
}

/**
 * Whether onnxruntime's 8-bit integer kernels on this CPU can saturate: x86-64 without VNNI computes
 * uint8 × int8 products in pairs summed into int16 (vpmaddubsw), and 255 · 127 · 2 overflows it. Weights
 * quantized to 7 bits (onnxruntime's reduce_range) keep every pair in range there.
 */
export function int8Saturates(): { saturates: boolean; why: string } {
  if (os.arch() !== 'x64') return { saturates: false, why: `${os.arch()} CPU` };
  const f = x64Flags();
  if (f === undefined) return { saturates: true, why: 'x86-64 CPU whose features could not be read' };
  return / (avx512_vnni|avx_vnni|amx_int8) /.test(f)
    ? { saturates: false, why: 'this CPU has VNNI' }
    : { saturates: true, why: 'this x86-64 CPU has no VNNI, so onnxruntime sums uint8 × int8 products in int16 and 8-bit weights can saturate' };
}
