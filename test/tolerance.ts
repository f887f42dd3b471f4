// The fixtures' elementwise bound, as a number: ≤ 1 passes.
import assert from "node:assert/strict";

/** max over elements of |a − b| / (abs + rel·|b|): ≤ 1 passes. */
export function toleranceUsed(actual: ArrayLike<number>, expected: number[], abs = 1e-4, rel = 1e-4): number {
  assert.equal(actual.length, expected.length, "length");
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const r = Math.abs(actual[i] - expected[i]) / (abs + rel * Math.abs(expected[i]));
    if (!(r <= worst)) worst = Number.isNaN(r) ? Infinity : r;
  }
  return worst;
}
