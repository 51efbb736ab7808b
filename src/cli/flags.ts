import type { ParseArgsConfig } from 'node:util';
import { checkRules, fromText, setPath, type CommandSpec, type View } from '../core/jobs/options/schema';
import { parse, UsageError } from './args';

/** parseArgs' option table from a command's declarations. */
function parseArgsOptions(spec: CommandSpec): NonNullable<ParseArgsConfig['options']> {
  return Object.fromEntries(spec.options.map((o) => [o.flag, { type: o.kind === 'flag' ? 'boolean' : 'string', ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]));
}

/**
 * A command line into the job's request, by the command's declarations: each value converted and
 * checked, flags that do nothing with the others refused, required flags and positionals present.
 * Returns the request and the typed values by flag (the CLI's own flags, such as --json, included).
 */
export function requestFromArgs(spec: CommandSpec, args: string[]): { request: Record<string, unknown>; values: View } {
  const { values: raw, positionals } = parse(args, parseArgsOptions(spec));
  const names = spec.positionals.map((p) => p.name);
  const variadic = spec.positionals.at(-1)?.variadic;
  if (variadic && positionals.length < names.length) throw new UsageError(`expected ${names.join(' ')}...`);
  if (!variadic && positionals.length !== names.length) {
    throw new UsageError(names.length === 1 ? `expected one ${names[0]}, got ${positionals.length}` : `${spec.command} takes ${names.join(' and ')}, got ${positionals.length} paths`);
  }
  const values: View = {};
  const given = new Set<string>();
  // Conversion and rule errors are QuantLensErrors of kind 'usage': exit 2 like UsageError.
  for (const o of spec.options) {
    const v = raw[o.flag];
    if (v === undefined || v === false) continue;
    given.add(o.flag);
    if (o.kind === 'flag') values[o.flag] = true;
    else if (o.multiple) {
      const items = (v as string[]).flatMap((t) => (o.separator ? t.split(o.separator).filter((x) => x.trim()) : [t])).map((t) => fromText(o, t));
      values[o.flag] = o.collect ? o.collect(items) : items;
    } else values[o.flag] = fromText(o, v as string);
  }
  checkRules(spec, values, given);
  for (const r of spec.required ?? []) if (!given.has(r.flag)) throw new UsageError(r.message);
  const request: Record<string, unknown> = {};
  // The request's option objects exist even when no flag fills them (jobs read request.options.*).
  for (const o of spec.options) if (o.target?.includes('.')) request[o.target.split('.')[0]] ??= {};
  spec.positionals.forEach((p, i) => setPath(request, p.target as string, p.variadic ? positionals.slice(i) : positionals[i]));
  for (const o of spec.options) {
    if (!o.target || !given.has(o.flag)) continue;
    setPath(request, o.target as string, o.kind === 'flag' && o.sets !== undefined ? o.sets : values[o.flag]);
  }
  return { request, values };
}
