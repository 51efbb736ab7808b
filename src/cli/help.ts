import { COMMANDS, commandSpec } from '../core/jobs/options/commands';
import { defaultOf, rangeText, type CommandSpec, type OptionSpec } from '../core/jobs/options/schema';

/** What a flag's value looks like: its metavar, its choices, N or VALUE. */
const valueText = (o: OptionSpec) => o.metavar ?? (o.choices ? Object.keys(o.choices).join('|') : o.kind === 'number' ? 'N' : 'VALUE');

/** How a flag is written in a synopsis: --mode weight|dynamic|static, --samples N, -o OUT. */
function flagForm(o: OptionSpec): string {
  if (o.kind === 'flag') return `--${o.flag}`;
  return `${o.short ? `-${o.short}` : `--${o.flag}`} ${valueText(o)}`;
}

/** The one-line synopsis: positionals and required flags. */
function synopsis(spec: CommandSpec): string {
  const req = (spec.required ?? []).map((r) => flagForm(spec.options.find((o) => o.flag === r.flag)!));
  return [spec.command, ...spec.positionals.map((p) => (p.variadic ? `${p.name}...` : p.name)), ...req, '[options]'].join(' ');
}

/** One option's help: its form, what it does, its values and default. */
function optionLines(spec: CommandSpec, o: OptionSpec): string[] {
  const dflt = defaultOf(spec, o);
  const facts = [
    o.multiple ? 'repeatable' : '',
    o.choices && o.metavar ? `one of ${Object.keys(o.choices).join('|')}` : '',
    o.kind === 'number' && o.range ? `in ${rangeText(o.range)}` : '',
    dflt !== undefined && typeof dflt !== 'object' ? `default ${String(dflt)}` : '',
  ].filter(Boolean);
  const form = `${o.short ? `-${o.short}, ` : ''}--${o.flag}${o.kind === 'flag' ? '' : ` ${valueText(o)}`}`;
  const lines = [`    ${form}`, `        ${o.help}${facts.length ? ` (${facts.join(', ')})` : ''}`];
  for (const [value, what] of Object.entries(o.choices ?? {})) if (what) lines.push(`          ${value}: ${what}`);
  return lines;
}

/** `quantlens CMD --help`: the synopsis, what it does, and every option. */
export function commandHelp(command: string): string | undefined {
  const spec = commandSpec(command);
  if (!spec) return undefined;
  return [`usage: quantlens ${synopsis(spec)}`, ...spec.summary.map((l) => `  ${l}`), '', 'options:', ...spec.options.flatMap((o) => optionLines(spec, o))].join('\n');
}

/** `quantlens --help`: every command's synopsis and summary. */
export const USAGE = [
  'usage: quantlens <command> [options]',
  '',
  'commands:',
  ...COMMANDS.flatMap((s) => [`  ${synopsis(s)}`, ...s.summary.map((l) => `      ${l}`)]),
  '  submit slurm|kubernetes [options] sensitivity|sweep JOB-ARGS...',
  '      run a job in N shards on a cluster (sbatch array + afterok merge, or an Indexed Job manifest)',
  '  status DIR [--wait]',
  '      where a submitted job stands: shards done, running or failed (and why), the merge, the report',
  '',
  'quantlens CMD --help lists a command\'s options, their values and defaults.',
  '--input-shape NAME=DxD...: sizes for an input with dynamic dimensions (random samples take them, images are',
  'resized to them); without it, random inputs use 1 for the batch, 224 for image height/width, 16 otherwise.',
  '',
  'exit status: 0 success, 1 failure, 2 bad usage',
].join('\n');
