// Shared by the benchmark scripts: the median of repeated runs and one aligned output row.
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const row = (name: string, v: string) => console.log(`${name.padEnd(52)} ${v}`);
