// The LM head, streamed: final-norm rows times the vocabulary matrix, one block of vocabulary rows at a time,
// keeping for each position only what the caller asked for — an online log-sum-exp and the target's logit
// (NLL), the k best tokens, or the logits of a few positions — so [T, vocab] is built only on request.
import { MAX_BLOCK_ELEMENTS } from "../checkpoint/block-buffer.js";
import { linear, products } from "./linear.js";
import type { Pass } from "./pass.js";

export interface HeadRequest {
  /** Every position's logits, [variants·T, vocab] (fires the `logits` hook): for short inputs. */
  logits?: boolean;
  /** NLL of targets[t] at position t (−1: not scored), the same targets for every variant. */
  targets?: readonly number[];
  /** The k most likely next tokens at these positions. */
  top?: { k: number; positions: readonly number[] };
  /** The logits of these positions only (next-token distributions). */
  logitsAt?: readonly number[];
}

export interface TopToken {
  id: number;
  logit: number;
  prob: number;
}

export interface HeadResult {
  logits?: Float32Array;
  /** Per variant, per position: −log softmax[target] (NaN where not scored). */
  nll?: Float64Array[];
  /** Per variant, per requested position. */
  top?: TopToken[][][];
  /** Per variant: [positions, vocab]. */
  logitsAt?: Float32Array[];
}

/** Running state of one position's distribution while vocabulary blocks stream past. */
export class RowState {
  max = -Infinity;
  sum = 0;
  target = NaN;
  best: { id: number; logit: number }[] = [];

  constructor(
    readonly targetId: number,
    readonly k: number,
    readonly keep?: Float32Array,
  ) {}

  /** Logits of vocabulary ids [v0, v0 + n) at values[offset…]. */
  see(values: Float32Array, offset: number, n: number, v0: number): void {
    let bm = -Infinity;
    for (let j = 0; j < n; j++)
      // Stryker disable next-line EqualityOperator: equivalent, an equal value leaves the same maximum.
      if (values[offset + j] > bm) bm = values[offset + j];
    // Stryker disable next-line EqualityOperator: equivalent, rescaling by exp(0) changes nothing.
    if (bm > this.max) {
      this.sum *= Math.exp(this.max - bm);
      this.max = bm;
    }
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(values[offset + j] - this.max);
    this.sum += s;
    if (this.targetId >= v0 && this.targetId < v0 + n) this.target = values[offset + this.targetId - v0];
    if (this.keep) this.keep.set(values.subarray(offset, offset + n), v0);
    // The k best so far, ids ascending among equal logits (a later id must beat, not tie).
    const best = this.best,
      k = this.k;
    for (let j = 0; j < n && k > 0; j++) {
      const logit = values[offset + j];
      if (best.length === k && !(logit > best[k - 1].logit)) continue;
      // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, from k the loop below steps to k − 1 (the logit beat best[k − 1]).
      let at = best.length < k ? best.length : k - 1;
      while (at > 0 && logit > best[at - 1].logit) at--;
      best.splice(at, 0, { id: v0 + j, logit });
      if (best.length > k) best.pop();
    }
  }

  get logSumExp(): number {
    return this.max + Math.log(this.sum);
  }
}

/** The head on the final-norm rows `normed` [variants·T, hidden]. */
export async function runHead(
  pass: Pass,
  normed: Float32Array,
  weight: string,
  request: HeadRequest,
  layer: number,
): Promise<HeadResult> {
  const { tokens: T, variants, model } = pass;
  const V = model.spec.vocab,
    H = model.spec.hidden,
    cap = model.spec.finalSoftcap;
  const softcap = (x: Float32Array) => {
    if (cap !== undefined)
      // Stryker disable next-line EqualityOperator: equivalent, a typed array ignores a write past its end.
      for (let i = 0; i < x.length; i++) x[i] = Math.fround(Math.tanh(Math.fround(x[i] / cap)) * cap);
  };
  // Stryker disable next-line ArrayDeclaration: equivalent, a stray entry is no position.
  const topPositions = new Set(request.top?.positions ?? []);
  const atPositions = request.logitsAt ?? [];
  // Stryker disable next-line UnaryOperator: equivalent, an unscored row costs time only (its NLL stays NaN).
  const wanted = (t: number) => (request.targets?.[t] ?? -1) >= 0 || topPositions.has(t) || atPositions.includes(t);
  // Stryker disable next-line MethodExpression: equivalent, as above.
  const positions = request.logits ? [...Array(T).keys()] : [...Array(T).keys()].filter(wanted);
  const result: HeadResult = {};
  if (atPositions.length) result.logitsAt = variants.map(() => new Float32Array(atPositions.length * V));
  const states = variants.map((_, v) =>
    positions.map((t) => {
      const at = atPositions.indexOf(t);
      const keep = at >= 0 ? result.logitsAt![v].subarray(at * V, (at + 1) * V) : undefined;
      // Stryker disable next-line UnaryOperator: equivalent, without targets no NLL is read.
      return new RowState(request.targets?.[t] ?? -1, topPositions.has(t) ? request.top!.k : 0, keep);
    }),
  );

  if (request.logits) {
    const logits = await linear(pass, normed, pass.uniform, weight);
    softcap(logits);
    pass.fire("logits", layer, logits, V);
    states.forEach((rows, v) => rows.forEach((s, i) => s.see(logits, (v * T + positions[i]) * V, V, 0)));
    result.logits = logits;
  } else if (positions.length) {
    const P = positions.length;
    const x = new Float32Array(variants.length * P * H);
    for (let v = 0; v < variants.length; v++)
      positions.forEach((t, i) => x.set(normed.subarray((v * T + t) * H, (v * T + t + 1) * H), (v * P + i) * H));
    const rowState = states.flat();
    await products(
      pass,
      x,
      variants.map(() => P),
      weight,
      (g, part, r0, r1) => {
        const n = r1 - r0;
        softcap(part);
        for (let i = 0; i < part.length / n; i++) rowState[g.rowMap ? g.rowMap[i] : i].see(part, i * n, n, r0);
      },
      "nk",
      // Stryker disable next-line all: equivalent, the parts' size changes how the product is cut, not its values.
      Math.max(1, Math.floor(MAX_BLOCK_ELEMENTS / (variants.length * P))),
    );
  }

  // A streamed head never builds the logits: what it kept must be finite (else name the culprit).
  if (pass.checkFinite && !request.logits) {
    const kept = states
      .flat()
      .flatMap((s) => [s.logSumExp, ...(s.targetId >= 0 ? [s.target] : []), ...s.best.map((b) => b.logit)]);
    pass.check("logits", layer, Float32Array.from(kept));
  }
  if (request.targets) {
    result.nll = states.map((rows) => {
      const nll = new Float64Array(T).fill(NaN);
      rows.forEach((s, i) => {
        if (s.targetId >= 0) nll[positions[i]] = s.logSumExp - s.target;
      });
      return nll;
    });
  }
  if (request.top) {
    const order = request.top.positions;
    result.top = states.map((rows) =>
      order.map((t) => {
        const s = rows[positions.indexOf(t)];
        const lse = s.logSumExp;
        return s.best.map((b) => ({ id: b.id, logit: b.logit, prob: Math.exp(b.logit - lse) }));
      }),
    );
  }
  return result;
}
