// Next-token negative log-likelihood, perplexity and top-k predictions from logits [T, vocab].

/** nll[i] = −log softmax(logits[i])[ids[i+1]] for i = 0..T−2 (float64 log-sum-exp). */
export function nextTokenNll(logits: Float32Array, ids: readonly number[], vocab: number): number[] {
  const nll: number[] = [];
  for (let i = 0; i + 1 < ids.length; i++)
    nll.push(logSumExp(logits, i * vocab, vocab) - logits[i * vocab + ids[i + 1]]);
  return nll;
}

export function logSumExp(x: Float32Array, offset: number, n: number): number {
  let max = -Infinity;
  for (let j = 0; j < n; j++) max = Math.max(max, x[offset + j]);
  let sum = 0;
  for (let j = 0; j < n; j++) sum += Math.exp(x[offset + j] - max);
  return max + Math.log(sum);
}

/** exp(mean nll); NaN for no predictions. */
export function perplexity(nll: readonly number[]): number {
  return nll.length ? Math.exp(nll.reduce((a, b) => a + b, 0) / nll.length) : NaN;
}

export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** The k most likely next tokens after position `pos`, with probabilities. */
export function topK(
  logits: Float32Array,
  pos: number,
  vocab: number,
  k: number,
): { id: number; prob: number; logit: number }[] {
  const o = pos * vocab;
  const lse = logSumExp(logits, o, vocab);
  const best: number[] = [];
  for (let j = 0; j < vocab; j++) {
    if (best.length < k) best.push(j);
    else if (logits[o + j] > logits[o + best[k - 1]]) best[k - 1] = j;
    else continue;
    best.sort((a, b) => logits[o + b] - logits[o + a]);
  }
  return best.map((id) => ({ id, logit: logits[o + id], prob: Math.exp(logits[o + id] - lse) }));
}
