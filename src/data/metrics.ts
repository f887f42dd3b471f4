// The harness's per-item scoring and aggregation (lm_eval/api/task.py process_results,
// lm_eval/api/metrics.py): acc, acc_norm, the stderr of a mean, LAMBADA's perplexity.
import type { McItem } from "./requests.js";

export interface McOutcome {
  /** argmax of the log-likelihoods (the first on ties, as np.argmax). */
  pred: number;
  /** argmax of log-likelihood / normLength. */
  predNorm: number;
  acc: boolean;
  accNorm: boolean;
}

/** Score one item from the summed log-likelihood of each choice's continuation. */
export function mcOutcome(item: McItem, logLikelihoods: readonly number[]): McOutcome {
  if (logLikelihoods.length !== item.choices.length) {
    throw new Error(`item ${item.id}: ${logLikelihoods.length} log-likelihoods for ${item.choices.length} choices`);
  }
  if (logLikelihoods.some(Number.isNaN)) throw new Error(`item ${item.id}: a log-likelihood is NaN`);
  const pred = argmax(logLikelihoods);
  const predNorm = argmax(logLikelihoods.map((ll, i) => ll / item.choices[i].normLength));
  return { pred, predNorm, acc: pred === item.answer, accNorm: predNorm === item.answer };
}

/** The index of the largest value, the first on ties (as np.argmax): a choice's prediction, a greedy token. */
export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

/** Fraction correct. */
export function accuracy(correct: readonly boolean[]): number {
  return correct.filter(Boolean).length / correct.length;
}

/**
 * The harness's stderr of a mean (mean_stderr): sample standard deviation (n − 1) over sqrt(n), which for
 * 0/1 outcomes is sqrt(p(1 − p) / (n − 1)). null below two items, where the harness reports "N/A".
 */
export function accuracyStderr(correct: readonly boolean[]): number | null {
  const n = correct.length;
  if (n < 2) return null;
  const p = accuracy(correct);
  let squares = 0;
  for (const c of correct) squares += ((c ? 1 : 0) - p) ** 2;
  return Math.sqrt(squares / (n - 1)) / Math.sqrt(n);
}

/** LAMBADA's perplexity: exp(−mean over items of each continuation's summed log-likelihood). */
export function lastWordPerplexity(logLikelihoods: readonly number[]): number {
  return Math.exp(-logLikelihoods.reduce((a, b) => a + b, 0) / logLikelihoods.length);
}
