/** Round half to even, as onnxruntime's QuantizeLinear does (std::nearbyint in the default mode). */
export function roundHalfEven(v: number): number {
  // Math.round sends halves up; a half that landed on an odd number goes back down.
  const r = Math.round(v);
  return r - v === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}
