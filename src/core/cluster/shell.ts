// Shell quoting for the scripts QuantLens writes (sbatch scripts, Kubernetes commands).

/** One argument, quoted for bash only when it needs it ($VARS the script sets are the caller's to leave bare). */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export const shellJoin = (args: string[]) => args.map(shellQuote).join(' ');
