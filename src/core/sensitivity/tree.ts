/** A module in the sensitivity tree: its dotted path, children, and its layers' sensitivities summed and maxed. */
export interface SensitivityTreeNode {
  name: string;
  path: string;
  parameters: number;
  sensitivity: { sum: number; max: number };
  /** Index into `layers` when this node is a layer itself. */
  layer?: number;
  children: SensitivityTreeNode[];
}

/** Groups layers by their dotted module path: vision_model → encoder → layers.3 → self_attn → q_proj. */
export function buildTree(layers: Array<{ name: string; parameters: number; sensitivity: number }>): SensitivityTreeNode {
  const root: SensitivityTreeNode = { name: '', path: '', parameters: 0, sensitivity: { sum: 0, max: 0 }, children: [] };
  // Children by name, so wide levels (10k layers under one module) stay linear to build.
  const index = new Map<SensitivityTreeNode, Map<string, SensitivityTreeNode>>();
  layers.forEach((l, at) => {
    // `layers.3` is one segment: split on dots not followed by a digit-only segment.
    const parts = l.name.split('.').reduce<string[]>((acc, p) => {
      if (/^\d+$/.test(p) && acc.length) acc[acc.length - 1] += `.${p}`;
      else acc.push(p);
      return acc;
    }, []);
    let node = root;
    const visit = (n: SensitivityTreeNode) => {
      n.parameters += l.parameters;
      n.sensitivity.sum += l.sensitivity;
      n.sensitivity.max = Math.max(n.sensitivity.max, l.sensitivity);
    };
    visit(root);
    parts.forEach((p, k) => {
      const byName = index.get(node) ?? index.set(node, new Map()).get(node)!;
      let child = byName.get(p);
      if (!child) {
        child = { name: p, path: parts.slice(0, k + 1).join('.'), parameters: 0, sensitivity: { sum: 0, max: 0 }, children: [] };
        node.children.push(child);
        byName.set(p, child);
      }
      visit(child);
      node = child;
    });
    node.layer = at;
  });
  return root;
}

/** Ranks (1 = most sensitive; failed layers last) and the module tree, from layers in graph order. */
export function rankLayers<L extends { name: string; parameters: number; sensitivity: number; rank: number }>(layers: L[]): { layers: L[]; tree: SensitivityTreeNode } {
  const key = (l: L) => (Number.isNaN(l.sensitivity) ? -Infinity : l.sensitivity);
  const order = [...layers.keys()].sort((a, b) => key(layers[b]) - key(layers[a]));
  const ranked = layers.map((l) => ({ ...l }));
  order.forEach((i, r) => { ranked[i].rank = r + 1; });
  return { layers: ranked, tree: buildTree(ranked) };
}
