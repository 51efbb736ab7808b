// The hover's cached index over the workspace's sensitivity reports: Python attribute name → the layers
// whose module path ends with it (or runs through it). No vscode import: unit tests and the bench use it directly.
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

/** One report, indexed: leaf attributes (`q_proj`, a Sequential's name for its numbered children) and every module name on the paths. */
interface IndexedReport {
  report: string;
  model: string;
  scheme: string;
  total: number;
  mtimeMs: number;
  leaf: Map<string, IndexedLayer[]>;
  /** Every module name on any layer's path (containers too: `layers`, `encoder`), with the layers under it. */
  under: Map<string, IndexedLayer[]>;
}

const push = (m: Map<string, IndexedLayer[]>, k: string, l: IndexedLayer) => (m.get(k) ?? m.set(k, []).get(k)!).push(l);

/**
 * Every sensitivity report in the workspace, the newest per model. A hover asks with the attributes its
 * Python file assigns (`self.x = ...`): the report whose module names share the most of them answers, so
 * each training file meets its own model; ties and files that share none go to the newest report.
 */
export class SensitivityIndex {
  private reports = new Map<string, IndexedReport>();

  /** The newest report held. */
  get report(): string | undefined {
    return this.newest()?.report;
  }

  private newest(): IndexedReport | undefined {
    let best: IndexedReport | undefined;
    for (const r of this.reports.values()) if (!best || r.mtimeMs > best.mtimeMs) best = r;
    return best;
  }

  /** Loads `file` unless a newer report of the same model is held; false when it is not a sensitivity report (or older). */
  offer(file: string): boolean {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      return false;
    }
    let r: ReportFile;
    try {
      r = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      return false;
    }
    if (!r || !Array.isArray(r.layers) || typeof r.model !== 'string') return false;
    const held = this.reports.get(r.model);
    if (held && held.report !== file && st.mtimeMs < held.mtimeMs) return false;
    const leaf = new Map<string, IndexedLayer[]>(), under = new Map<string, IndexedLayer[]>();
    for (const l of r.layers) {
      if (typeof l?.name !== 'string' || typeof l.sensitivity !== 'number') continue;
      const parts = l.name.split('.');
      const entry: IndexedLayer = { name: l.name, opType: l.opType, sensitivity: l.sensitivity, sensitivityDb: l.sensitivityDb, rank: l.rank };
      const attr = parts[parts.length - 1];
      push(leaf, attr, entry);
      // nn.Sequential / nn.ModuleList children are numbered (features.3): the attribute is the container.
      if (/^\d+$/.test(attr) && parts.length > 1) push(leaf, parts[parts.length - 2], entry);
      for (const p of new Set(parts)) if (!/^\d+$/.test(p)) push(under, p, entry);
    }
    for (const [k, v] of this.reports) if (v.report === file) this.reports.delete(k);
    this.reports.set(r.model, { report: file, model: r.model, scheme: `${r.scheme?.mode ?? '?'} ${r.scheme?.bits ?? '?'}-bit, ${r.method}`, total: r.layers.length, mtimeMs: st.mtimeMs, leaf, under });
    return true;
  }

  /** Drops the report if it was `file` (deleted). */
  forget(file: string): void {
    for (const [k, v] of this.reports) if (v.report === file) this.reports.delete(k);
  }

  /** The report for a Python file that assigns `attributes`: most module names in common, then newest. */
  private pick(attributes?: readonly string[]): IndexedReport | undefined {
    if (!attributes?.length || this.reports.size < 2) return this.newest();
    let best: IndexedReport | undefined, bestScore = 0;
    for (const r of this.reports.values()) {
      const score = attributes.filter((a) => r.under.has(a)).length;
      if (score > bestScore || (score === bestScore && score > 0 && best && r.mtimeMs > best.mtimeMs)) { best = r; bestScore = score; }
    }
    return best ?? this.newest();
  }

  /** The report a file assigning `attributes` reads (for links into the tree). */
  reportFor(attributes?: readonly string[]): string | undefined {
    return this.pick(attributes)?.report;
  }

  /** The layers of `attribute`: a leaf module's instances, else every layer under a container of that name. */
  lookup(attribute: string, attributes?: readonly string[]): HoverAnswer | undefined {
    const r = this.pick(attributes);
    const layers = r?.leaf.get(attribute) ?? r?.under.get(attribute);
    if (!layers?.length || !r) return undefined;
    const sorted = layers.map((l) => l.sensitivity).sort((a, b) => a - b);
    const worst = layers.reduce((a, b) => (b.sensitivity > a.sensitivity ? b : a));
    return {
      attribute, report: r.report, model: r.model, scheme: r.scheme, layers,
      min: sorted[0], median: sorted[Math.floor((sorted.length - 1) / 2)], max: sorted[sorted.length - 1], worst, total: r.total,
    };
  }

  /** The leaf attributes whose worst instance ranks among the `top` most sensitive layers (for CodeLens). */
  worstAttributes(top: number, attributes?: readonly string[]): Map<string, IndexedLayer> {
    const out = new Map<string, IndexedLayer>();
    for (const [attr, layers] of this.pick(attributes)?.leaf ?? []) {
      const w = layers.reduce((a, b) => (b.sensitivity > a.sensitivity ? b : a));
      if (w.rank <= top) out.set(attr, w);
    }
    return out;
  }
}

/** The attributes a Python file assigns (`self.x = ...`, `self.x: T = ...`): which model its classes build. */
export function assignedAttributes(text: string): string[] {
  return [...new Set([...text.matchAll(/\bself\.([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=\n]*)?=(?!=)/g)].map((m) => m[1]))];
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
