import { modulePathOf } from './module-path';
import type { GraphProto } from './proto';

export type ModuleRole = 'vision' | 'projector' | 'language' | 'other';

const ROLE_PATTERNS: Array<[ModuleRole, RegExp]> = [
  ['projector', /(projector|mm_proj|multi_modal|connector|aligner|adapter|resampler|merger)/i],
  ['vision', /(vision|visual|image|vit|siglip|clip_vision|patch_embed|img)/i],
  ['language', /(language|text|llm|lm_head|decoder|transformer|model\.layers|embed_tokens|gpt|llama|qwen)/i],
];

/** The role a top-level module plays in a vision-language model, judged by its name. */
export function moduleRole(name: string): ModuleRole {
  for (const [role, re] of ROLE_PATTERNS) if (re.test(name)) return role;
  return 'other';
}

export interface ModuleGroup {
  name: string;
  role: ModuleRole;
  nodes: number;
}

/**
 * Top-level module groups (first path segment) with node counts and their VLM role. Only reported as a
 * VLM when at least two different roles are present; a plain CNN gets an empty list.
 */
export function detectModuleGroups(graph: GraphProto): ModuleGroup[] {
  const counts = new Map<string, number>();
  for (const n of graph.node ?? []) {
    if (n.op_type === 'Constant') continue;
    const first = modulePathOf(n, n.input?.[1]).split('.')[0];
    if (first) counts.set(first, (counts.get(first) ?? 0) + 1);
  }
  const groups = [...counts].map(([name, nodes]) => ({ name, role: moduleRole(name), nodes }));
  const roles = new Set(groups.map((g) => g.role).filter((r) => r !== 'other'));
  return roles.size >= 2 ? groups.filter((g) => g.role !== 'other' || g.nodes > 2) : [];
}
