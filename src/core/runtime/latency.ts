// Latency as a distribution, not one number: the median and quartiles of N timed runs, and whether two
// models' difference stands out of that spread. Pure (no onnxruntime): the results page uses it too.

export interface LatencyStats {
  median: number;
  /** First and third quartiles of the runs, ms. */
  q1: number;
  q3: number;
  runs: number;
}

/** Median and quartiles of run times in ms (nearest rank on the sorted times: the element at ⌊q·n⌋). */
export function latencyStats(times: number[]): LatencyStats {
  const s = [...times].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { median: at(0.5), q1: at(0.25), q3: at(0.75), runs: s.length };
}

/**
 * Whether `a` ran faster than `b` by more than `margin`, from runs interleaved round by round (a[i] and
 * b[i] in the same round, so drift and a neighbour's load fall on both): the median of the per-round
 * ratios a/b under 1 / (1 + margin), and `a` the faster in at least three rounds of four. Comparing the
 * medians against the runs' spread instead made the choice flip between runs: PaddleOCR rec's placement
 * search, three runs, twice kept boundaries 12% faster and once not, when the float runs spread 18%.
 */
export function pairedFaster(a: number[], b: number[], margin: number): boolean {
  const ratios = a.slice(0, b.length).map((x, i) => x / b[i]);
  if (!ratios.length) return false;
  const r = latencyStats(ratios);
  return r.median * (1 + margin) < 1 && r.q3 < 1;
}

/** True when the two interquartile ranges overlap: the difference of medians is within the runs' noise. */
export function withinNoise(a: LatencyStats, b: LatencyStats): boolean {
  return a.q1 <= b.q3 && b.q1 <= a.q3;
}

/** "0.64 ms (0.60–0.70)" */
export function formatLatency(s: LatencyStats): string {
  return `${s.median.toFixed(2)} ms (${s.q1.toFixed(2)}–${s.q3.toFixed(2)})`;
}
