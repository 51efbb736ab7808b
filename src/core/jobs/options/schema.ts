// One declaration per option: the CLI's parser and help, the engine's request checks and the editor's
// pickers are all built from these (see commands.ts for the declarations).
import { QuantLensError } from '../../base/errors';
import type { JobKind } from '../requests';

type Prev = [never, 0, 1, 2];
/** Dotted paths into a request ('options.mode', 'sweep.evaluator.command'), checked by the compiler. */
export type Path<T, D extends number = 3> = [D] extends [never]
  ? never
  : T extends readonly unknown[]
    ? never
    : T extends object
      ? { [K in keyof T & string]-?: K | (NonNullable<T[K]> extends readonly unknown[] ? never : NonNullable<T[K]> extends object ? `${K}.${Path<NonNullable<T[K]>, Prev[D]>}` : never) }[keyof T & string]
      : never;

/** The options' values by flag (defaults filled in), and which flags were given. */
export type View = Record<string, unknown>;
/** Why an option does nothing (or cannot be given) with the others' values, or undefined when it applies. */
export type Rule = (v: View, given: ReadonlySet<string>) => string | undefined | false;

export interface OptionSpec {
  flag: string;
  short?: string;
  /** Where the value goes in the job's request; none for flags only the CLI reads (--json). */
  target?: string;
  /** flag: a switch; text: a string; number: checked against `range`; choice: one of `choices`. */
  kind: 'flag' | 'text' | 'number' | 'choice';
  /** choice: each value and what it does (help text, editor pickers). */
  choices?: Record<string, string>;
  /** choice values stored as numbers (--bits 8 → 8). */
  numeric?: boolean;
  /** number: [min, max] and which ends are open; whole numbers only with `whole`. */
  range?: { min?: number; max?: number; minOpen?: boolean; maxOpen?: boolean; whole?: boolean };
  /** Given more than once, each value collected (--exclude A --exclude B). */
  multiple?: boolean;
  /** A repeated flag whose one value may also list items (--input-shape a=1x8,b=1x12): what separates them. */
  separator?: string;
  /** A switch that stores this value at `target` (--per-tensor stores perChannel: false). */
  sets?: unknown;
  /** text: the request's value from the text (one item of a repeated flag), throwing a usage error. */
  parse?: (text: string) => unknown;
  /** text with `parse`: the request's value back into the flag's text, one item per repeat (scripts the CLI runs). */
  format?: (v: unknown) => string[];
  /** A repeated flag's parsed items into the request's value (--input-shape items into a record). */
  collect?: (items: unknown[]) => unknown;
  /** A request's value is valid (parsed options, which the engine receives already typed). */
  valid?: (v: unknown) => boolean;
  /** What the value looks like in help: N, DIR|random:N, GLOB. */
  metavar?: string;
  /** Shown in help and used by rules; otherwise the job's own default at `target`. */
  default?: unknown;
  help: string;
  /** When the option does nothing: a usage error naming both flags. */
  applies?: Rule;
  /** Flags this one cannot be given with. */
  conflicts?: string[];
}

/** An option declared for request type R: its target is checked by the compiler. */
export type Declared<R> = Omit<OptionSpec, 'target'> & { target?: Path<R> };

export interface CommandSpec {
  command: string;
  job: JobKind;
  /** Positional arguments and where they go; a `variadic` last one takes the rest, as a list (at least one). */
  positionals: Array<{ name: string; target: string; variadic?: boolean }>;
  /** Required flags shown in the synopsis, each with its message when missing. */
  required?: Array<{ flag: string; message: string }>;
  summary: string[];
  options: OptionSpec[];
  /** Quick jobs (inspect, run, compare) print no progress lines: their stdout or one error line is all. */
  quiet?: boolean;
  /** The job's defaults, shaped like its request (the core's DEFAULT_* objects). */
  defaults?: Record<string, unknown>;
}

const usage = (m: string) => new QuantLensError(undefined, m, 'usage');

export function getPath(o: unknown, path: string): unknown {
  let v = o;
  for (const k of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

export function setPath(o: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let at = o;
  for (const k of keys.slice(0, -1)) at = (at[k] ??= {}) as Record<string, unknown>;
  at[keys[keys.length - 1]] = value;
}

/** The interval a number must lie in, as help and errors write it: [0, 1), (50, 100]. */
export function rangeText(r: NonNullable<OptionSpec['range']>): string {
  if (r.min !== undefined && r.max !== undefined) return `${r.minOpen ? '(' : '['}${r.min}, ${r.max}${r.maxOpen ? ')' : ']'}`;
  if (r.min !== undefined) return `${r.minOpen ? '>' : '≥'} ${r.min}`;
  return `${r.maxOpen ? '<' : '≤'} ${r.max}`;
}

function inRange(n: number, r: NonNullable<OptionSpec['range']>): boolean {
  if (!Number.isFinite(n) || (r.whole && !Number.isInteger(n))) return false;
  if (r.min !== undefined && (r.minOpen ? n <= r.min : n < r.min)) return false;
  if (r.max !== undefined && (r.maxOpen ? n >= r.max : n > r.max)) return false;
  return true;
}

function rangeError(o: OptionSpec, shown: string): QuantLensError {
  const r = o.range!;
  const what = r.whole ? (r.min === 1 && r.max === undefined ? 'a positive whole number' : `a whole number ${rangeText(r).replace(/^\[(\S+), (\S+)\]$/, 'from $1 to $2')}`) : `in ${rangeText(r)}`;
  return usage(`--${o.flag} must be ${what}, not ${shown}`);
}

/** A flag's text as the request's value, or a usage error naming the flag. */
export function fromText(o: OptionSpec, text: string): unknown {
  if (o.parse) return o.parse(text);
  let v: unknown = text;
  if (o.kind === 'choice' && o.numeric && text in o.choices!) v = Number(text);
  if (o.kind === 'number') {
    v = text.trim() === '' ? NaN : Number(text);
    if (!Number.isFinite(v)) throw usage(`--${o.flag} takes a number, not '${text}'`);
  }
  // The same checks as a value that arrives typed (an engine request).
  checkValue({ ...o, multiple: false }, v);
  return v;
}

/** Checks a value that arrived typed (an engine request): the same rules as the flag's text. */
export function checkValue(o: OptionSpec, v: unknown): void {
  const bad = () => usage(`--${o.flag}: ${JSON.stringify(v)} is not a valid value`);
  if (o.multiple && !o.collect) {
    if (!Array.isArray(v)) throw bad();
    return v.forEach((x) => checkValue({ ...o, multiple: false }, x));
  }
  if (o.valid) { if (!o.valid(v)) throw bad(); return; }
  if (o.kind === 'flag') { if (o.sets === undefined ? typeof v !== 'boolean' : v !== o.sets && typeof v !== typeof o.sets) throw bad(); return; }
  if (o.kind === 'choice') {
    if (!Object.keys(o.choices!).some((c) => (o.numeric ? Number(c) : c) === v)) throw usage(`--${o.flag} must be ${Object.keys(o.choices!).join(', ')}, not '${String(v)}'`);
    return;
  }
  if (o.kind === 'number') {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw usage(`--${o.flag} takes a number, not ${JSON.stringify(v)}`);
    if (o.range && !inRange(v, o.range)) throw rangeError(o, String(v));
    return;
  }
  if (typeof v !== 'string') throw bad();
}

/** The default a flag shows and rules see: its own, or the job's at its target. */
export function defaultOf(spec: CommandSpec, o: OptionSpec): unknown {
  if (o.default !== undefined) return o.default;
  if (o.kind === 'flag' || !o.target || !spec.defaults) return undefined;
  return getPath(spec.defaults, o.target);
}

/** Runs the conflict and applicability rules of the given flags; the first broken one is a usage error. */
export function checkRules(spec: CommandSpec, values: View, given: ReadonlySet<string>): void {
  const view: View = {};
  for (const o of spec.options) view[o.flag] = given.has(o.flag) ? values[o.flag] : defaultOf(spec, o);
  for (const o of spec.options) {
    if (!given.has(o.flag)) continue;
    for (const c of o.conflicts ?? []) if (given.has(c)) throw usage(`choose one of --${o.flag} and --${c}`);
    const why = o.applies?.(view, given);
    if (why) throw usage(`--${o.flag} ${why}`);
  }
}

/** Checks the values a request holds (no applicability rules: a job's full options hold every field). */
export function checkValues(spec: CommandSpec, request: Record<string, unknown>): void {
  for (const o of spec.options) {
    const v = o.target ? getPath(request, o.target) : undefined;
    if (v !== undefined && o.sets === undefined) checkValue(o, v);
  }
}

/**
 * Checks a request as the engine receives it against the command's options: every value valid, and no
 * option that does nothing with the others. Fields the schema does not declare pass through untouched.
 */
export function checkRequest(spec: CommandSpec, request: Record<string, unknown>): void {
  const values: View = {};
  const given = new Set<string>();
  for (const o of spec.options) {
    if (!o.target) continue;
    const v = getPath(request, o.target);
    if (v === undefined) continue;
    if (o.sets !== undefined) {
      // Two switches can share a target (--per-channel / --per-tensor): the value says which was given.
      if (v === o.sets) { given.add(o.flag); values[o.flag] = true; }
      else checkValue(o, v);
      continue;
    }
    checkValue(o, v);
    given.add(o.flag);
    values[o.flag] = v;
  }
  checkRules(spec, values, given);
}

/**
 * A request back into the command line that makes it (the inverse of the CLI's parsing): what a cluster
 * job's script runs for a request the editor built.
 */
export function argsFromRequest(spec: CommandSpec, request: Record<string, unknown>): string[] {
  const args: string[] = [spec.command];
  for (const p of spec.positionals) {
    const v = getPath(request, p.target);
    if (v === undefined) throw usage(`${spec.command} needs ${p.name}`);
    args.push(...(p.variadic ? (v as unknown[]).map(String) : [String(v)]));
  }
  for (const o of spec.options) {
    const v = o.target ? getPath(request, o.target) : undefined;
    if (v === undefined || v === null) continue;
    if (o.kind === 'flag') {
      if (o.sets !== undefined ? JSON.stringify(v) === JSON.stringify(o.sets) : v === true) args.push(`--${o.flag}`);
      continue;
    }
    const items = o.format ? o.format(v) : o.multiple && Array.isArray(v) ? v.map(String) : [String(v)];
    for (const t of items) args.push(`--${o.flag}`, t);
  }
  return args;
}
