/** Round half to even, as onnxruntime's QuantizeLinear does (std::nearbyint in the default mode). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
