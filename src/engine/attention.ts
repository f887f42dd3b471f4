// Causal (optionally sliding-window) scaled dot-product attention with grouped-query heads, for one
// sequence: T queries over S ≥ T keys, the queries being the last T positions (S > T: after a KV cache).
// The two big products go through the matmul backend, batched over heads.
import type { MatmulBackend } from "./matmul.js";
import { softmaxRows } from "./kernels.js";

export interface AttentionShape {
  /** Queries: the last `tokens` of the `keys` positions. */
  tokens: number;
  /** Key/value positions (default: tokens). */
  keys?: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  scale: number;
  /** Keys more than `window − 1` positions back are masked (Mistral's sliding window). */
  window?: number;
  /** Scores become cap·tanh(score / cap) before the mask (Gemma2). */
  softcap?: number;
}

/**
 * out[T, heads·d] = softmax(q·kᵀ·scale + causal mask) · v for q[T, heads·d], k, v[S, kvHeads·d]; query i sits at
 * position S − T + i; query head h reads kv head h / (heads/kvHeads).
 */
export async function attention(
  backend: MatmulBackend,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  s: AttentionShape,
): Promise<Float32Array> {
  const { tokens: T, heads, kvHeads, headDim: d } = s;
  const S = s.keys ?? T,
    p0 = S - T;
  if (p0 < 0 || k.length !== S * kvHeads * d || v.length !== k.length)
    throw new RangeError(`attention: ${T} queries over ${k.length / (kvHeads * d)} keys, ${S} expected`);
  const group = heads / kvHeads;
  const out = new Float32Array(T * heads * d);
  // Heads in chunks whose score matrices stay ≤ 8 MB (fresh allocations beyond ~32 MB are page-faulted in anew).
  // Stryker disable next-line all: equivalent, the chunk size changes how much memory a step takes, not the result
  const chunk = Math.max(1, Math.min(heads, Math.floor((2 * 1024 * 1024) / (T * S))));
  // Stryker disable next-line EqualityOperator: equivalent, one more step past the last head has no heads to compute
  for (let h0 = 0; h0 < heads; h0 += chunk) {
    const hs = Math.min(chunk, heads - h0);
    // Head-major copies: qh[h, T, d]; kh, vh[h, S, d] with each kv head repeated for its query group.
    const qh = new Float32Array(hs * T * d),
      kh = new Float32Array(hs * S * d),
      vh = new Float32Array(hs * S * d);
    for (let i = 0; i < hs; i++) {
      const h = h0 + i,
        kvh = Math.floor(h / group);
      // Stryker disable next-line EqualityOperator: equivalent, one step past the end copies an empty view
      for (let t = 0; t < T; t++) qh.set(q.subarray((t * heads + h) * d, (t * heads + h + 1) * d), (i * T + t) * d);
      // Stryker disable next-line EqualityOperator: equivalent, one step past the end copies an empty view
      for (let j = 0; j < S; j++) {
        const dst = (i * S + j) * d;
        kh.set(k.subarray((j * kvHeads + kvh) * d, (j * kvHeads + kvh + 1) * d), dst);
        vh.set(v.subarray((j * kvHeads + kvh) * d, (j * kvHeads + kvh + 1) * d), dst);
      }
    }
    // scores[h, i, j] = qh[h, i]·kh[h, j] · scale, then the masked softmax over j ≤ p0 + i.
    const scores = await backend.batched(qh, kh, hs, T, d, S, true);
    // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
    for (let i = 0; i < scores.length; i++) scores[i] *= s.scale;
    const cap = s.softcap;
    if (cap !== undefined)
      // Stryker disable next-line EqualityOperator: equivalent, one step past the end reads undefined and writes nowhere
      for (let i = 0; i < scores.length; i++) scores[i] = Math.fround(Math.tanh(Math.fround(scores[i] / cap)) * cap);
    const last = (r: number) => p0 + (r % T);
    const first = (r: number) => (s.window ? Math.max(0, last(r) - s.window + 1) : 0);
    softmaxRows(scores, hs * T, S, first, last);
    // ctx[h, i, :] = Σ_j p[h, i, j] · vh[h, j, :]
    const ctx = await backend.batched(scores, vh, hs, T, S, d, false);
    // Stryker disable next-line EqualityOperator: equivalent, one head past the chunk copies an empty view
    for (let i = 0; i < hs; i++)
      for (let t = 0; t < T; t++) out.set(ctx.subarray((i * T + t) * d, (i * T + t + 1) * d), (t * heads + h0 + i) * d);
  }
  return out;
}
