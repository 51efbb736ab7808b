import { matrixIndex, type PrunableLayer } from './layers';

/** A layer's weight seen as [outputs, fan-in], averaged over tiles: what the heatmap view draws. */
export interface SparsityMap {
  /** Tile size in weights (rows = outputs, cols = fan-in); grown so the map stays at most `maxTiles` a side. */
  tile: [number, number];
  rows: number;
  cols: number;
  /** The weight's real size seen as [outputs, fan-in] (the last tiles of a side may be partial). */
  shape?: [number, number];
  /** Row-major, rows × cols: share of weights kept (1 = dense), and mean |w| of the kept weights' tile. */
  density: number[];
  magnitude: number[];
}

const round = (v: number) => Math.round(v * 1000) / 1000;

/** Block density and mean magnitude per tile of the pruned weight (zeros count as removed). */
export function sparsityMap(l: PrunableLayer, w: Float32Array, tile: number, maxTiles = 64): SparsityMap {
  const O = l.outputs, F = l.fanIn;
  const th = Math.max(tile, Math.ceil(O / maxTiles)), tw = Math.max(tile, Math.ceil(F / maxTiles));
  const rows = Math.ceil(O / th), cols = Math.ceil(F / tw);
  const kept = new Float64Array(rows * cols), mag = new Float64Array(rows * cols), count = new Float64Array(rows * cols);
  const at = matrixIndex(l);
  for (let o = 0; o < O; o++) {
    const r = Math.floor(o / th) * cols;
    for (let f = 0; f < F; f++) {
      const v = w[at(o, f)];
      const k = r + Math.floor(f / tw);
      count[k]++;
      if (v !== 0) { kept[k]++; mag[k] += Math.abs(v); }
    }
  }
  return {
    tile: [th, tw], rows, cols, shape: [O, F],
    density: Array.from(kept, (v, k) => round(v / count[k])),
    magnitude: Array.from(mag, (v, k) => (kept[k] ? Number((v / count[k]).toPrecision(4)) : 0)),
  };
}
