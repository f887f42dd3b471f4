// Greedy continuations, every model of the runner side by side in lockstep: the prompt runs once into a KV
// cache, then each step runs one token per variant (each its own) after it. Beside each intervened variant
// runs a shadow fed the baseline's tokens, so the KL divergence of the next-token distributions is measured
// on the same context at every step. Also the repetition rate and the stopword mass.
import type { Model } from "../engine/model.js";
import { KvCache } from "../engine/kv-cache.js";
import { logSumExp } from "../engine/nll.js";
import { stopwordMass } from "./shift.js";
import type { ArmRunner } from "./runner.js";
import { argmax } from "../data/metrics.js";

export interface GenerateOptions {
  tokens: number;
  /** End-of-sequence ids: a continuation stops at the first. */
  eos?: readonly number[];
  stopwords?: Uint8Array;
}

export interface Generation {
  /** The continuation's ids, without the EOS that ended it. */
  ids: number[];
  stoppedAtEos: boolean;
  /** 1 − distinct 4-grams / 4-grams of the continuation (seq-rep-4); null below 4 tokens. */
  repetition: number | null;
  /** Mean over steps of KL(baseline ‖ this) on the baseline's context; at the first step (the prompt alone).
   * null for the baseline itself. */
  klToBaseline: number | null;
  klFirst: number | null;
  /** Mean over steps of the next-token probability on stopwords; share of generated tokens that are stopwords. */
  stopwordMass: number | null;
  stopwordShare: number | null;
}

/** 1 − |distinct n-grams| / |n-grams|. */
export function repetitionRate(ids: readonly number[], n = 4): number | null {
  if (ids.length < n) return null;
  const grams = new Set<string>();
  for (let i = 0; i + n <= ids.length; i++) grams.add(ids.slice(i, i + n).join(","));
  return 1 - grams.size / (ids.length - n + 1);
}

/** KL(p ‖ q) from two rows of logits, in nats. */
export function klFromLogits(p: Float32Array, q: Float32Array): number {
  const lp = logSumExp(p, 0, p.length),
    lq = logSumExp(q, 0, q.length);
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i] - lp;
    kl += Math.exp(a) * (a - (q[i] - lq));
  }
  return Math.max(0, kl);
}

/** Greedy continuations of `prompt` for every distinct model of the runner. */
export async function generate(
  model: Model,
  prompt: readonly number[],
  runner: ArmRunner,
  o: GenerateOptions,
): Promise<Generation[]> {
  const V = model.spec.vocab;
  // Stryker disable next-line ArrayDeclaration: equivalent, a string in the set is never a token id.
  const eos = new Set(o.eos ?? []);
  return runner.run(async (batch) => {
    const n = batch.variants.length;
    // Variants 0..n−1 follow their own tokens; n + i − 1 shadows variant i on the baseline's tokens.
    const variants = [...batch.variants, ...batch.variants.slice(1)];
    const cache = new KvCache(variants.length);
    let out = await runner.forward({ ...batch, variants }, prompt, { cache, head: { logitsAt: [prompt.length - 1] } });
    const ids: number[][] = Array.from({ length: n }, () => []);
    const stopped = new Array<boolean>(n).fill(false);
    const kl: number[][] = Array.from({ length: n }, () => []);
    const mass: number[][] = Array.from({ length: n }, () => []);
    for (let step = 0; step < o.tokens; step++) {
      const logits = out.logitsAt!;
      const next = variants.map((_, v) => argmax(logits[v]));
      const baselineOn = !stopped[0];
      for (let v = 0; v < n; v++) {
        if (baselineOn && v > 0) kl[v].push(klFromLogits(logits[0], logits[n + v - 1]));
        if (stopped[v]) continue;
        if (o.stopwords) {
          const l = logits[v],
            lse = logSumExp(l, 0, V);
          mass[v].push(
            stopwordMass(
              Float64Array.from(l, (x) => Math.exp(x - lse)),
              o.stopwords,
            ),
          );
        }
        if (eos.has(next[v])) stopped[v] = true;
        else ids[v].push(next[v]);
      }
      if (stopped.every(Boolean) || step + 1 === o.tokens) break;
      if (cache.length + 1 > model.spec.maxPositions) break;
      // Shadows take the baseline's token.
      const fed = variants.map((_, v) => [v < n ? next[v] : next[0]]);
      out = await runner.forward({ ...batch, variants }, [0], { cache, variantIds: fed, head: { logitsAt: [0] } });
    }
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
    return ids.map((list, v): Generation => ({
      ids: list,
      stoppedAtEos: stopped[v],
      repetition: repetitionRate(list),
      // The baseline's list stays empty: null.
      klToBaseline: mean(kl[v]),
      klFirst: kl[v][0] ?? null,
      stopwordMass: o.stopwords ? mean(mass[v]) : null,
      stopwordShare: o.stopwords && list.length ? list.filter((id) => o.stopwords![id]).length / list.length : null,
    }));
  });
}
