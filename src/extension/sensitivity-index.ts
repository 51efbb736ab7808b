// The hover's cached index over the newest sensitivity report: Python attribute name → the layers whose
// module path ends with it. No vscode import: unit tests and the bench use it directly.
import fs from 'node:fs';

export interface IndexedLayer {
  name: string;
  opType: string;
  sensitivity: number;
  sensitivityDb: number;
  rank: number;
}

export interface HoverAnswer {
  attribute: string;
  report: string;
  model: string;
  scheme: string;
  /** Every layer defined by this attribute (one per instance: layers.0.self_attn.q_proj, layers.1...). */
  layers: IndexedLayer[];
  min: number;
  median: number;
  max: number;
  worst: IndexedLayer;
  total: number;
}

interface ReportFile {
  model: string;
  method: string;
  scheme: { mode: string; bits: number };
  layers: IndexedLayer[];
}

export class SensitivityIndex {
  private byAttribute = new Map<string, IndexedLayer[]>();
  private meta?: { report: string; model: string; scheme: string; total: number; mtimeMs: number };

  get report(): string | undefined {
    return this.meta?.report;
  }

  /** Loads `file` when it is newer than the report held; false when it is not a sensitivity report. */
  offer(file: string): boolean {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      return false;
    }
    if (this.meta && this.meta.report !== file && st.mtimeMs < this.meta.mtimeMs) return false;
    let r: ReportFile;
    try {
      r = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      return false;
    }
    if (!r || !Array.isArray(r.layers) || typeof r.model !== 'string') return false;
    const by = new Map<string, IndexedLayer[]>();
    for (const l of r.layers) {
      if (typeof l?.name !== 'string' || typeof l.sensitivity !== 'number') continue;
      const parts = l.name.split('.');
      const entry: IndexedLayer = { name: l.name, opType: l.opType, sensitivity: l.sensitivity, sensitivityDb: l.sensitivityDb, rank: l.rank };
      const attr = parts[parts.length - 1];
      (by.get(attr) ?? by.set(attr, []).get(attr)!).push(entry);
      // nn.Sequential / nn.ModuleList children are numbered (features.3): the attribute is the container.
      if (/^\d+$/.test(attr) && parts.length > 1) {
        const owner = parts[parts.length - 2];
        (by.get(owner) ?? by.set(owner, []).get(owner)!).push(entry);
      }
    }
    this.byAttribute = by;
    this.meta = { report: file, model: r.model, scheme: `${r.scheme?.mode ?? '?'} ${r.scheme?.bits ?? '?'}-bit, ${r.method}`, total: r.layers.length, mtimeMs: st.mtimeMs };
    return true;
  }

  /** Drops the report if it was `file` (deleted). */
  forget(file: string): void {
    if (this.meta?.report === file) {
      this.meta = undefined;
      this.byAttribute.clear();
    }
  }

  lookup(attribute: string): HoverAnswer | undefined {
    const layers = this.byAttribute.get(attribute);
    if (!layers?.length || !this.meta) return undefined;
    const sorted = layers.map((l) => l.sensitivity).sort((a, b) => a - b);
    const worst = layers.reduce((a, b) => (b.sensitivity > a.sensitivity ? b : a));
    return {
      attribute, report: this.meta.report, model: this.meta.model, scheme: this.meta.scheme, layers,
      min: sorted[0], median: sorted[Math.floor((sorted.length - 1) / 2)], max: sorted[sorted.length - 1], worst, total: this.meta.total,
    };
  }

  /** The attributes whose worst instance ranks among the `top` most sensitive layers (for CodeLens). */
  worstAttributes(top: number): Map<string, IndexedLayer> {
    const out = new Map<string, IndexedLayer>();
    for (const [attr, layers] of this.byAttribute) {
      const w = layers.reduce((a, b) => (b.sensitivity > a.sensitivity ? b : a));
      if (w.rank <= top) out.set(attr, w);
    }
    return out;
  }
}

/**
 * The attribute under the cursor when it names a layer: `self.q_proj = nn.Linear(...)`, `self.q_proj(x)`,
 * or a bare name assigned from nn.* (`q_proj = nn.Linear(...)` in a dataclass-style module).
 */
export function attributeAt(line: string, character: number): string | undefined {
  const re = /\bself\.([A-Za-z_][A-Za-z0-9_]*)|^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=]*)?=\s*(?:nn|torch\.nn)\./g;
  for (let m = re.exec(line); m; m = re.exec(line)) {
    const name = m[1] ?? m[2];
    const start = m.index + m[0].indexOf(name);
    if (character >= start && character <= start + name.length) return name;
  }
  return undefined;
}

const BARS = '▁▂▃▄▅▆▇█';
const db = (v: number) => (v > 0 ? 10 * Math.log10(v) : -200);

/** A bar per instance, on a dB scale from the quietest to the loudest layer of the attribute. */
export function sparkline(values: number[]): string {
  const d = values.map(db);
  const lo = Math.min(...d), hi = Math.max(...d);
  return d.map((v) => BARS[hi - lo < 1e-9 ? BARS.length - 1 : Math.round(((v - lo) / (hi - lo)) * (BARS.length - 1))]).join('');
}

/** The hover's markdown: the instances' spread, the worst one, the bars, and a link into the tree. */
export function hoverMarkdown(a: HoverAnswer, openCommand = 'quantlens.openSensitivityTree'): string {
  const f = (v: number) => `${db(v).toFixed(1)} dB`;
  const args = encodeURIComponent(JSON.stringify([a.report, a.worst.name]));
  const lines = [
    `**QuantLens sensitivity** of \`${a.attribute}\` (${a.scheme})`,
    '',
    a.layers.length === 1
      ? `\`${a.worst.name}\`: ${f(a.worst.sensitivity)}, rank ${a.worst.rank} of ${a.total}`
      : `${a.layers.length} layers: min ${f(a.min)} · median ${f(a.median)} · max ${f(a.max)}; worst \`${a.worst.name}\` (rank ${a.worst.rank} of ${a.total})`,
    '',
    `\`${sparkline(a.layers.map((l) => l.sensitivity))}\` ${a.layers.map((l) => l.name.split('.').slice(-3, -1).join('.')).join(' · ')}`,
    '',
    `[Open in the sensitivity tree](command:${openCommand}?${args})`,
  ];
  return lines.join('\n');
}
