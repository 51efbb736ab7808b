import { parseArgs, type ParseArgsConfig } from 'node:util';
import { errorLine } from '../core/base/errors';

/** Bad usage: exit 2 with the usage line. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * `--sparsity -1` would read as a flag: a value that looks like a negative number is joined to the
 * string option before it (`--sparsity=-1`), so validation can say what is wrong with it.
 */
function joinNegativeValues(args: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const name = a.startsWith('--') ? a.slice(2) : undefined;
    if (name && options[name]?.type === 'string' && /^-\d|^-\.\d/.test(args[i + 1] ?? '')) {
      out.push(`${a}=${args[++i]}`);
      continue;
    }
    out.push(a);
  }
  return out;
}

/**
 * parseArgs, strict, with one-line usage errors; a flag given twice (not a repeatable one) is an error
 * naming both values instead of the last silently winning.
 */
export function parse<O extends Options>(args: string[], options: O) {
  try {
    const r = parseArgs({ args: joinNegativeValues(args, options), options, allowPositionals: true, strict: true as const, tokens: true });
    const seen = new Map<string, string | undefined>();
    for (const t of r.tokens ?? []) {
      if (t.kind !== 'option' || options[t.name]?.multiple) continue;
      if (seen.has(t.name)) {
        const show = (v: string | undefined) => (v === undefined ? `--${t.name}` : `'${v}'`);
        throw new UsageError(`--${t.name} given twice (${show(seen.get(t.name))} and ${show(t.value)}): give it once`);
      }
      seen.set(t.name, t.value);
    }
    return { values: r.values, positionals: r.positionals };
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(errorLine(e));
  }
}
