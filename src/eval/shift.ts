// How an intervention moves the next-token distribution (the paper's Figure 5): the tokens whose average
// probability rises and falls most, and the probability of English stopwords (the `stopword` package's
// English list) before and after.
import { eng } from "stopword";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";

const STOPWORDS = new Set(eng);

/** mask[id] = 1 where the token's text, trimmed and lower-cased, is an English stopword. */
export function stopwordMask(tokenizer: TextTokenizer, vocab: number): Uint8Array {
  const mask = new Uint8Array(vocab);
  for (let id = 0; id < vocab; id++) if (STOPWORDS.has(tokenizer.decode([id]).trim().toLowerCase())) mask[id] = 1;
  return mask;
}

/** Σ p over the stopword tokens. */
export function stopwordMass(p: ArrayLike<number>, mask: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) s += p[i];
  return s;
}

export interface TokenShift {
  id: number;
  before: number;
  after: number;
}

export interface Shift {
  /** KL(before ‖ after) of the two distributions, nats. */
  kl: number;
  rises: TokenShift[];
  falls: TokenShift[];
  /** null without a tokenizer to say which tokens are stopwords. */
  stopwordMass: { before: number; after: number } | null;
}

/** The `k` largest rises and falls of p(after) − p(before), ids ascending among equal changes. */
export function probabilityShift(before: Float64Array, after: Float64Array, k: number, mask?: Uint8Array): Shift {
  const ids = [...before.keys()];
  const change = (i: number) => after[i] - before[i];
  const pick = (sign: number) =>
    ids
      // Stryker disable next-line ArithmeticOperator: equivalent, sign is ±1, so sign / change has the product's sign.
      .filter((i) => sign * change(i) > 0)
      .sort((a, b) => sign * (change(b) - change(a)) || a - b)
      .slice(0, k)
      .map((id) => ({ id, before: before[id], after: after[id] }));
  let kl = 0;
  for (const i of ids) if (before[i] > 0) kl += before[i] * Math.log(before[i] / after[i]);
  return {
    kl,
    rises: pick(1),
    falls: pick(-1),
    stopwordMass: mask ? { before: stopwordMass(before, mask), after: stopwordMass(after, mask) } : null,
  };
}
