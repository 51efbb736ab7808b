// Where run time goes, as onnxruntime's profiler reports it (runtime/profile.ts measures it): pure data
// and arithmetic, shared by reports, the CLI and the panels.

/** Where one model's run time goes: milliseconds per run by operator type (as onnxruntime ran them, after its fusions). */
export interface OpTimeProfile {
  runs: number;
  /** Sum of kernel times per run. */
  totalMs: number;
  /** Per operator type, sorted by time, largest first. */
  byOpType: Array<{ op: string; ms: number; nodes: number }>;
  /** The slowest kernels by node name (as onnxruntime named them after its fusions), largest first. */
  slowestNodes?: Array<{ node: string; op: string; ms: number }>;
  /** QuantizeLinear/DequantizeLinear kernels that ran (not fused into an integer kernel): how many, their time, the slowest by name. */
  unfusedQdq?: { count: number; ms: number; slowest: Array<{ node: string; op: string; ms: number }> };
}

/** Per operator type, the time a candidate spends beyond (or under) a reference, largest growth first. */
export function profileDelta(reference: OpTimeProfile, candidate: OpTimeProfile): Array<{ op: string; referenceMs: number; candidateMs: number }> {
  const ops = new Set([...reference.byOpType, ...candidate.byOpType].map((o) => o.op));
  const ms = (p: OpTimeProfile, op: string) => p.byOpType.find((o) => o.op === op)?.ms ?? 0;
  return [...ops].map((op) => ({ op, referenceMs: ms(reference, op), candidateMs: ms(candidate, op) })).sort((a, b) => (b.candidateMs - b.referenceMs) - (a.candidateMs - a.referenceMs));
}

/**
 * The warning a slower result carries (undefined when it is not slower than 1.05× the reference): the two
 * medians, and the operator types that grew most per run.
 */
export function slowerWarning(what: string, latencyMs: { reference: number; candidate: number }, profile?: { reference: OpTimeProfile; candidate: OpTimeProfile }): string | undefined {
  if (!(latencyMs.candidate > latencyMs.reference * 1.05)) return undefined;
  const grew = profile ? profileDelta(profile.reference, profile.candidate).filter((d) => d.candidateMs - d.referenceMs > 0.01).slice(0, 4) : [];
  const where = grew.length ? `; where the time went (kernel ms per run, float -> ${what}): ${grew.map((d) => `${d.op} ${d.referenceMs.toFixed(2)} -> ${d.candidateMs.toFixed(2)}`).join(', ')}` : '';
  const q = profile?.candidate.unfusedQdq;
  const unfused = q?.count ? `; ${q.count} QuantizeLinear/DequantizeLinear onnxruntime could not fuse took ${q.ms.toFixed(2)} ms, the slowest ${q.slowest.slice(0, 3).map((n) => `'${n.node}'`).join(', ')} (the report lists them)` : '';
  return `the ${what} model ran slower than the original here (median ${latencyMs.reference.toFixed(2)} ms -> ${latencyMs.candidate.toFixed(2)} ms)${where}${unfused}`;
}
