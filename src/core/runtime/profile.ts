import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as ort from 'onnxruntime-node';
import type { OpTimeProfile } from '../eval/op-time';
import { createSession, tensorOutputNames, type SessionOptions } from './session';

/** One kernel run as onnxruntime's profiler records it. */
export interface KernelEvent { node: string; op: string; us: number }

/**
 * Runs `model` once to warm up, then `runs` times, on `feeds` with onnxruntime's profiler on (CPU), and
 * gives the kernels of those runs in the order they ran (the warm-up's are dropped). Names are those of
 * the kernels that ran, after fusion.
 */
export async function profiledKernels(model: string | Uint8Array, feeds: Record<string, ort.Tensor>, runs = 5, opts: Pick<SessionOptions, 'noQdqFusion' | 'noMemPattern'> = {}): Promise<KernelEvent[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-profile-'));
  try {
    // Through createSession: its quiet logging, and a file at opset 1-6 read at opset 7.
    const { session } = await createSession(model, { ...opts, device: 'cpu', profileFilePrefix: path.join(dir, 'p') });
    try {
      const fetch = tensorOutputNames(session);
      await session.run(feeds, fetch); // warm-up: first-run allocations; its events are dropped below
      for (let i = 0; i < runs; i++) await session.run(feeds, fetch);
      session.endProfiling();
    } finally {
      await session.release();
    }
    // The largest: a file at opset 1-6 leaves the empty profile of the session onnxruntime refused.
    const sized = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => ({ f, size: fs.statSync(path.join(dir, f)).size }));
    const file = sized.sort((a, b) => b.size - a.size)[0]?.f;
    if (!file) throw new Error('onnxruntime wrote no profile');
    type Event = { cat?: string; name?: string; dur?: number; args?: { op_name?: string } };
    const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Event[];
    // Kernel events in run order: skip the warm-up run's share (the first 1/(runs+1) of them).
    const kernels = events.filter((e) => e.cat === 'Node' && e.name?.endsWith('_kernel_time') && e.args?.op_name);
    return kernels.slice(Math.round(kernels.length / (runs + 1))).map((e) => ({ node: e.name!.slice(0, -'_kernel_time'.length), op: e.args!.op_name!, us: e.dur ?? 0 }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Sums `model`'s kernel times per operator type over `runs` profiled runs (see profiledKernels): a Q/DQ
 * pair that did not fuse shows up as QuantizeLinear/DequantizeLinear time, a fused one as QLinearConv,
 * QGemm or the like. Also the slowest kernels by name, and every QuantizeLinear/DequantizeLinear that ran
 * (one onnxruntime could not fuse into an integer kernel: its name says which tensor it converts).
 */
export async function profileOpTypes(model: string, feeds: Record<string, ort.Tensor>, runs = 5): Promise<OpTimeProfile> {
  const by = new Map<string, { us: number; nodes: Set<string> }>();
  const perNode = new Map<string, { op: string; us: number }>();
  for (const e of await profiledKernels(model, feeds, runs)) {
    const k = by.get(e.op) ?? by.set(e.op, { us: 0, nodes: new Set() }).get(e.op)!;
    k.us += e.us;
    k.nodes.add(e.node);
    const n = perNode.get(e.node) ?? perNode.set(e.node, { op: e.op, us: 0 }).get(e.node)!;
    n.us += e.us;
  }
  const ms = (us: number) => us / 1000 / runs;
  const byOpType = [...by].map(([op, v]) => ({ op, ms: ms(v.us), nodes: v.nodes.size })).sort((a, b) => b.ms - a.ms);
  const nodes = [...perNode].map(([node, v]) => ({ node, op: v.op, ms: ms(v.us) })).sort((a, b) => b.ms - a.ms);
  const qdq = nodes.filter((n) => QDQ_OPS.has(n.op));
  return {
    runs, totalMs: byOpType.reduce((a, b) => a + b.ms, 0), byOpType, slowestNodes: nodes.slice(0, SLOWEST),
    unfusedQdq: { count: qdq.length, ms: qdq.reduce((a, b) => a + b.ms, 0), slowest: qdq.slice(0, SLOWEST) },
  };
}

const QDQ_OPS = new Set(['QuantizeLinear', 'DequantizeLinear']);
/** How many of the slowest kernels (and unfused Q/DQ) a profile lists by name. */
const SLOWEST = 20;
