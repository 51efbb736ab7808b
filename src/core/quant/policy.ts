import fs from 'node:fs';
import picomatch from 'picomatch';
import { LineCounter, parseDocument, isMap, isScalar, type Pair } from 'yaml';
import { QuantLensError } from '../base/errors';
import type { QuantizeOptions } from './options';

/** What a recipe rule may set for the modules it matches. */
export interface ModuleRule {
  keep?: 'float';
  mode?: QuantizeOptions['mode'];
  bits?: 8 | 4;
  algorithm?: QuantizeOptions['algorithm'];
  blockSize?: number;
  perChannel?: boolean;
  symmetric?: boolean;
}

export interface Recipe {
  file: string;
  rules: Array<{ pattern: string; rule: ModuleRule; line: number }>;
}

const RULE_KEYS: Record<keyof ModuleRule, (v: unknown) => boolean> = {
  keep: (v) => v === 'float',
  mode: (v) => v === 'weight' || v === 'dynamic' || v === 'static',
  bits: (v) => v === 8 || v === 4,
  algorithm: (v) => v === 'rtn' || v === 'gptq',
  blockSize: (v) => typeof v === 'number' && [16, 32, 64, 128, 256].includes(v),
  perChannel: (v) => typeof v === 'boolean',
  symmetric: (v) => typeof v === 'boolean',
};
const EXPECTED: Record<keyof ModuleRule, string> = {
  keep: "'float'", mode: 'weight, dynamic or static', bits: '8 or 4', algorithm: 'rtn or gptq', blockSize: '16, 32, 64, 128 or 256',
  perChannel: 'true or false', symmetric: 'true or false',
};

/**
 * Reads a recipe (YAML or JSON; JSON is YAML): a mapping of module-path globs to rules, either at the
 * top level or under `rules:`. Every problem is reported as `file:line: what`.
 */
export function loadRecipe(file: string): Recipe {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new QuantLensError(file, 'recipe file not found');
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const lineOf = (offset?: number) => (offset === undefined ? 1 : lc.linePos(offset).line);
  if (doc.errors.length) {
    const e = doc.errors[0];
    throw new QuantLensError(undefined, `${file}:${lineOf(e.pos[0])}: ${e.message.split('\n')[0]}`);
  }
  let root = doc.contents;
  if (!isMap(root)) throw new QuantLensError(undefined, `${file}:1: a recipe is a mapping of module patterns to rules`);
  const rulesPair = root.items.find((p) => isScalar(p.key) && p.key.value === 'rules');
  if (rulesPair) {
    if (!isMap(rulesPair.value)) throw new QuantLensError(undefined, `${file}:${lineOf((rulesPair.key as { range?: number[] }).range?.[0])}: 'rules' must be a mapping of module patterns to rules`);
    root = rulesPair.value;
  }
  const rules: Recipe['rules'] = [];
  for (const pair of (root as { items: Pair[] }).items) {
    const key = pair.key as { value?: unknown; range?: number[] };
    const line = lineOf(key.range?.[0]);
    const pattern = String(key.value ?? '');
    if (!pattern) throw new QuantLensError(undefined, `${file}:${line}: empty module pattern`);
    if (!isMap(pair.value)) throw new QuantLensError(undefined, `${file}:${line}: the rule for '${pattern}' must be a mapping like {mode: weight, bits: 4}`);
    const rule: Record<string, unknown> = {};
    for (const item of pair.value.items) {
      const k = item.key as { value?: unknown; range?: number[] };
      const kl = lineOf(k.range?.[0]);
      const name = String(k.value) as keyof ModuleRule;
      const value = isScalar(item.value) ? item.value.value : item.value;
      if (!(name in RULE_KEYS)) throw new QuantLensError(undefined, `${file}:${kl}: unknown key '${name}' (expected ${Object.keys(RULE_KEYS).join(', ')})`);
      if (!RULE_KEYS[name](value)) throw new QuantLensError(undefined, `${file}:${kl}: '${name}' must be ${EXPECTED[name]}, not ${JSON.stringify(value)}`);
      rule[name] = value;
    }
    rules.push({ pattern, rule: rule as ModuleRule, line });
  }
  return { file, rules };
}

const asSlashes = (dotted: string) => dotted.split('.').join('/');

/** A glob over dotted module paths (`vision_model.**`) that also matches plain node names. */
export function moduleMatcher(glob: string): (s: string) => boolean {
  const onPath = picomatch(asSlashes(glob), { dot: true });
  const onName = picomatch(glob, { dot: true });
  return (s: string) => onPath(asSlashes(s)) || onName(s);
}

/** Decides per node: kept float (and why), or the options that apply to it. */
export class QuantPolicy {
  private readonly excludes: Array<{ glob: string; test: (s: string) => boolean }>;
  private readonly rules: Array<{ pattern: string; test: (s: string) => boolean; rule: ModuleRule; line: number }>;

  constructor(private readonly base: QuantizeOptions, recipe?: Recipe) {
    const matcher = moduleMatcher;
    this.excludes = base.exclude.map((glob) => ({ glob, test: matcher(glob) }));
    this.rules = (recipe?.rules ?? []).map((r) => ({ ...r, test: matcher(r.pattern) }));
  }

  /** The later rules override earlier ones, key by key, as in a CSS cascade. */
  resolve(modulePath: string, nodeName: string): { keep: string } | { options: QuantizeOptions; rules: string[] } {
    const hit = (t: (s: string) => boolean) => t(modulePath) || t(nodeName);
    const ex = this.excludes.find((e) => hit(e.test));
    if (ex) return { keep: `excluded by --exclude ${ex.glob}` };
    let options = this.base;
    const applied: string[] = [];
    for (const r of this.rules) {
      if (!hit(r.test)) continue;
      if (r.rule.keep === 'float') return { keep: `kept float by recipe rule '${r.pattern}' (line ${r.line})` };
      options = { ...options, ...Object.fromEntries(Object.entries(r.rule).filter(([k]) => k !== 'keep')) };
      applied.push(r.pattern);
    }
    return { options, rules: applied };
  }
}
