import type { JobContext } from '../base/jobs';
import type { BudgetMetric, VariantScorer } from '../quant/variant-scorer';
import type { MeasuredLayer } from '../sensitivity/analyze';

export interface BudgetResult {
  budget: number;
  metric: BudgetMetric | 'evaluator';
  met: boolean;
  drop: number;
  /** Layers kept float, most sensitive first. */
  keptFloat: string[];
  evaluations: Array<{ keptFloat: number; drop: number }>;
}

/**
 * Automatic mixed precision: the fewest most-sensitive layers to keep float so the drop stays within
 * the budget. Binary search over k (layers kept, in sensitivity order), each k verified by a real run.
 */
export async function fitBudget(scorer: VariantScorer, layers: MeasuredLayer[], budget: number, ctx: JobContext = {}): Promise<BudgetResult> {
  const ranked = [...layers].sort((a, b) => b.nsr - a.nsr);
  const evaluations: BudgetResult['evaluations'] = [];
  const cache = new Map<number, number>();
  const dropAt = async (k: number) => {
    if (!cache.has(k)) {
      const keep = new Set(ranked.slice(0, k).flatMap((l) => l.nodes));
      const { drop } = await scorer.score((n) => !keep.has(n), ctx.signal);
      cache.set(k, drop);
      evaluations.push({ keptFloat: k, drop });
      ctx.onProgress?.({ stage: 'mixed precision', message: `${k} layers float: drop ${drop.toFixed(4)}` });
    }
    return cache.get(k)!;
  };
  let lo = 0, hi = ranked.length;
  if ((await dropAt(0)) <= budget) hi = 0;
  else {
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if ((await dropAt(mid)) <= budget) hi = mid;
      else lo = mid;
    }
  }
  const drop = hi === ranked.length ? 0 : await dropAt(hi);
  return { budget, metric: scorer.metric, met: drop <= budget, drop, keptFloat: ranked.slice(0, hi).map((l) => l.name), evaluations };
}

export interface ProgressiveStep {
  step: number;
  layersQuantized: number;
  added: string[];
  sizeBytes: number;
  drop: number;
}

/**
 * Progressive quantization: least sensitive layers first, a step at a time, measuring after each; stops
 * past the budget (the last step within it is the result). Returns the curve and how many layers to keep.
 */
export async function progressive(scorer: VariantScorer, layers: MeasuredLayer[], steps: number, budget: number | undefined, ctx: JobContext = {}): Promise<{ curve: ProgressiveStep[]; quantized: MeasuredLayer[] }> {
  const order = [...layers].sort((a, b) => a.nsr - b.nsr);
  const per = Math.max(1, Math.ceil(order.length / steps));
  const curve: ProgressiveStep[] = [];
  let accepted = 0;
  for (let prev = 0, step = 1; prev < order.length; step++) {
    const n = Math.min(prev + per, order.length);
    const chosen = new Set(order.slice(0, n).flatMap((l) => l.nodes));
    const { drop, sizeBytes } = await scorer.score((x) => chosen.has(x), ctx.signal);
    curve.push({ step, layersQuantized: n, added: order.slice(prev, n).map((l) => l.name), sizeBytes, drop });
    prev = n;
    ctx.onProgress?.({ stage: 'progressive', fraction: n / order.length, message: `${n} layers: drop ${drop.toFixed(4)}` });
    if (budget !== undefined && drop > budget) break;
    accepted = n;
  }
  return { curve, quantized: order.slice(0, budget === undefined ? order.length : accepted) };
}
