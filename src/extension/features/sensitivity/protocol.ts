// The sensitivity feature's view model and messages (the tree tab). No `vscode` import: the page uses it too.
export interface SensitivityLayerView {
  name: string;
  opType: string;
  parameters: number;
  sensitivity: number;
  sensitivityDb: number;
  rank: number;
  split?: { weight: number; activation: number };
  reverse?: number;
  ranges?: { input?: [number, number]; output?: [number, number] };
  /** Local: the window [height, width] of the map its copies ran on (absent: the whole map). */
  window?: [number, number];
}

export interface SensitivityView {
  report: string;
  model: string;
  method: string;
  scheme: string;
  layers: SensitivityLayerView[];
}

export type LayerPolicy = 'float' | 'int8' | 'int4';

/** From the page: the tree's policy edits as a recipe, optionally quantizing again with it. */
export type SensitivityFromView = { type: 'saveRecipe'; rules: Array<{ module: string; policy: LayerPolicy }>; rerun: boolean };

/** To the page: select a layer (the hover's link). */
export type SensitivityToView = { type: 'focus'; layer: string };

export function isSensitivityMessage(m: Record<string, unknown>): m is SensitivityFromView {
  return m.type === 'saveRecipe' && typeof m.rerun === 'boolean' && Array.isArray(m.rules) && m.rules.length <= 100_000 && m.rules.every((r) => {
    const x = r as Record<string, unknown>;
    return !!x && typeof x.module === 'string' && x.module.length < 4096 && /^[\w.\-/:*]+$/.test(x.module) && ['float', 'int8', 'int4'].includes(x.policy as string);
  });
}
