// Rotary position embeddings, rotate-half form: in each head, dims i and i + d/2 form a pair.
// Tables follow transformers: inv_freq and cos/sin in float32.
import type { RopeSpec } from "../models/spec.js";

/** inv_freq[i] = 1 / theta^(2i/d), then the rope_scaling rule. */
export function inverseFrequencies(rope: RopeSpec): Float32Array {
  const half = rope.dim / 2;
  const inv = new Float32Array(half);
  // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.fround(Math.pow(rope.theta, Math.fround((2 * i) / rope.dim)));
  const s = rope.scaling;
  // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
  if (s?.type === "linear") for (let i = 0; i < half; i++) inv[i] = inv[i] / s.factor;
  // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
  if (s?.type === "frequency_factors") for (let i = 0; i < half; i++) inv[i] = inv[i] / s.factors[i];
  if (s?.type === "llama3") {
    const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositions / s.highFreqFactor;
    // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      // Stryker disable next-line EqualityOperator: equivalent, at wavelen = lowWavelen the blend's smooth is 0, the same division
      if (wavelen > lowWavelen) inv[i] = inv[i] / s.factor;
      // Stryker disable next-line EqualityOperator: equivalent, at wavelen = highWavelen the blend's smooth is 1, inv unchanged
      else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}

export interface RopeTable {
  cos: Float32Array;
  sin: Float32Array;
  half: number;
}

/** cos/sin[pos, i] for positions 0..T−1. */
export function ropeTable(rope: RopeSpec, tokens: number): RopeTable {
  const inv = inverseFrequencies(rope);
  const half = inv.length;
  const cos = new Float32Array(tokens * half),
    sin = new Float32Array(tokens * half);
  // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
  for (let t = 0; t < tokens; t++) {
    // Stryker disable next-line EqualityOperator: equivalent, the extra entry is the next row's first, written again there (or past the end)
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(t * inv[i]);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin, half };
}

/** Rotate x[T, heads·headDim] in place: (x1, x2) ← (x1·cos − x2·sin, x2·cos + x1·sin). */
export function applyRope(x: Float32Array, tokens: number, heads: number, headDim: number, table: RopeTable): void {
  const { cos, sin, half } = table;
  // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
  for (let t = 0; t < tokens; t++) {
    for (let h = 0; h < heads; h++) {
      const o = (t * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const c = cos[t * half + i],
          s = sin[t * half + i];
        const x1 = x[o + i],
          x2 = x[o + i + half];
        x[o + i] = Math.fround(x1 * c) - Math.fround(x2 * s);
        x[o + i + half] = Math.fround(x2 * c) + Math.fround(x1 * s);
      }
    }
  }
}
