import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const CORE = path.resolve('src/core');

/** Every .ts file under src/core (generated protobuf code excluded) with the relative modules it imports, type imports included. */
function imports(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) { if (e.name !== 'generated') walk(p); } else if (p.endsWith('.ts')) {
        const src = fs.readFileSync(p, 'utf8');
        out.set(p, [...src.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => path.resolve(path.dirname(p), m[1])));
      }
    }
  };
  walk(CORE);
  return out;
}

/** The top folder of src/core a path belongs to ('.' for files at its root). */
const folderOf = (p: string) => { const rel = path.relative(CORE, p); return rel.includes(path.sep) ? rel.split(path.sep)[0] : '.'; };

/** Strongly connected components with more than one folder (Tarjan), each with one import that closes it. */
function folderCycles(edges: Map<string, Map<string, string>>): string[][] {
  const index = new Map<string, number>(), low = new Map<string, number>(), onStack = new Set<string>(), stack: string[] = [];
  const cycles: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next); low.set(v, next++); stack.push(v); onStack.add(v);
    for (const w of edges.get(v)?.keys() ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); scc.push(w); } while (w !== v);
      if (scc.length > 1) cycles.push(scc.map((a) => `${a} (${[...(edges.get(a) ?? [])].filter(([b]) => scc.includes(b)).map(([b, why]) => `→ ${b}: ${why}`).join('; ')})`));
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

describe('src/core structure', function () {
  it('has no import cycles between its folders (type imports included)', () => {
    const edges = new Map<string, Map<string, string>>();
    for (const [file, targets] of imports()) {
      const a = folderOf(file);
      for (const t of targets) {
        if (!t.startsWith(CORE)) continue;
        const b = folderOf(t + '.ts');
        if (a === b) continue;
        if (!edges.has(a)) edges.set(a, new Map());
        if (!edges.get(a)!.has(b)) edges.get(a)!.set(b, `${path.relative(CORE, file)} imports ${path.relative(CORE, t)}`);
      }
    }
    assert.ok(edges.size > 5, 'the walk found the folders');
    assert.deepEqual(folderCycles(edges), []);
  });

  it('the cycle finder reports a cycle it is given', () => {
    const edges = new Map([['a', new Map([['b', 'x']])], ['b', new Map([['c', 'y']])], ['c', new Map([['a', 'z']])], ['d', new Map([['a', 'w']])]]);
    const found = folderCycles(edges);
    assert.equal(found.length, 1);
    assert.equal(found[0].length, 3);
  });

  it('never imports vscode', () => {
    for (const file of imports().keys()) assert.doesNotMatch(fs.readFileSync(file, 'utf8'), /from 'vscode'|require\('vscode'\)/, file);
  });

  it('stays out of the extension host\'s bundle where it runs models: onnxruntime loads in the engine process only', function () {
    const bundle = path.resolve('dist/extension.js');
    if (!fs.existsSync(bundle)) this.skip(); // npm test builds it first
    assert.doesNotMatch(fs.readFileSync(bundle, 'utf8'), /require\("onnxruntime-node"\)/);
  });
});
