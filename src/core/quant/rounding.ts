/** 1.5·2^52: (v + MAGIC) - MAGIC rounds a double to the nearest integer, ties to even (the FPU's default mode). */
const MAGIC = 6755399441055744;

/** Round half to even, as onnxruntime's QuantizeLinear does (std::nearbyint in the default mode). */
export function roundHalfEven(v: number): number {
  // Beyond 2^51 every double is already an integer.
  if (!(Math.abs(v) < 2251799813685248)) return v;
  const r = (v + MAGIC) - MAGIC;
  return r === 0 && v < 0 ? -0 : r; // keep the sign of a negative value that rounds to zero, as Math.round does
}
