// Telling a super weight from a late outlier, from measurements only.
//
// A super weight (paper §3) creates a super activation: its output spike lands on the same token as
// the input spike that feeds it, makes the residual stream at (token, row) massive right after its
// layer, and that activation persists through later layers; zeroing the weight alone removes a real
// share of it. Candidates failing any of these (spikes on different tokens, a layer that cancels an
// activation instead of creating it, a spike nothing carries on, a weight whose removal changes
// nothing) are outliers. How much the prompt's NLL moves is reported beside the class, not mixed
// into it: "creates a persistent massive activation" and "is catastrophic to remove" are separate
// findings (at small scale the first holds without the second).
import type { Candidate } from "./detect.js";

export type WeightClass = "super" | "outlier";

/** The bars, in one place. */
export const RULES = {
  /** |residual| after the layer, as a multiple of that layer's median |residual|. */
  massiveToMedian: 10,
  /** A later layer still carries it when |residual| ≥ this fraction of the value after its layer. */
  persistFraction: 0.5,
  /** ...and it must be carried through at least this fraction of the later layers. */
  persistLayers: 0.5,
  /** Zeroing the weight alone must shrink the activation after its layer by at least this much. */
  minShrink: 0.2,
} as const;

export type NllEffect = "catastrophic" | "large" | "slight" | "negligible" | "unknown";

export interface Evidence {
  sameToken: boolean;
  /** A later candidate that removes this activation, [layer, row, column]. */
  cancelledBy: [number, number, number] | null;
  /** Residual at (token, row) entering and leaving the candidate's layer, and its size against the median. */
  residualBefore: number;
  residualAfter: number | null;
  activationToMedian: number | null;
  creates: boolean;
  /** Later layers that still carry ≥ persistFraction of it, out of the later layers. */
  persistsLayers: number;
  laterLayers: number;
  persists: boolean;
  /** 1 − |residual with it zeroed| / |residual| right after its layer, and after the last layer. */
  shrink: number | null;
  shrinkAtLastLayer: number | null;
  /** Mean NLL of the prompt with and without it (the pass's model), relative change, and a label. */
  meanNll: number | null;
  meanNllZeroed: number | null;
  nllChange: number | null;
  nllEffect: NllEffect;
}

export interface Verdict {
  class: WeightClass;
  evidence: Evidence;
  /** Why, in words, one reason per failed (or passed) test. */
  reasons: string[];
}

/**
 * `others`: the other candidates of the same scan. A later one on the same (token, channel) whose
 * output opposes the activation is a canceller (a late outlier): the activation is judged on the
 * layers before it, since what a late layer removes says nothing about what this weight created.
 */
// Stryker disable next-line ArrayDeclaration: equivalent, a default holding non-candidates filters to no canceller.
export function classify(c: Candidate, layers: number, others: readonly Candidate[] = []): Verdict {
  const after = c.residual[c.layer];
  const median = c.medianAbsResidual[c.layer];
  const sameToken = c.token === c.inputToken;
  const activationToMedian = after === null ? null : Math.abs(after) / median;
  const creates =
    // Stryker disable next-line ConditionalExpression: equivalent, without the guard |null| = 0 > |before| is false.
    after !== null &&
    Math.abs(after) > Math.abs(c.residualBefore) &&
    Math.sign(after) === Math.sign(c.outputActivation) &&
    activationToMedian! >= RULES.massiveToMedian;

  const canceller = others
    .filter(
      (o) =>
        o.layer > c.layer &&
        o.token === c.token &&
        o.row === c.row &&
        after !== null &&
        Math.sign(o.outputActivation) !== Math.sign(after),
    )
    .sort((a, b) => a.layer - b.layer)[0];
  const end = canceller ? canceller.layer : layers;
  let persistsLayers = 0;
  const laterLayers = end - 1 - c.layer;
  for (let l = c.layer + 1; l < end; l++) {
    const v = c.residual[l];
    if (
      after !== null &&
      v !== null &&
      Math.sign(v) === Math.sign(after) &&
      Math.abs(v) >= RULES.persistFraction * Math.abs(after)
    )
      persistsLayers++;
  }
  // Cancelled right at the next layer: it still entered that layer intact.
  const persists = canceller
    ? persistsLayers >= RULES.persistLayers * laterLayers
    : laterLayers > 0 && persistsLayers >= RULES.persistLayers * laterLayers;

  const shrinkAt = (l: number) => {
    const base = c.residual[l],
      zeroed = c.ablation.residual[l];
    return base === null || zeroed === null || base === 0 ? null : 1 - Math.abs(zeroed) / Math.abs(base);
  };
  const shrink = shrinkAt(c.layer);
  const shrinkAtLastLayer = shrinkAt(layers - 1);
  // Stryker disable next-line EqualityOperator: equivalent, 1 − |z|/|b| near 0.2 is a multiple of 2⁻⁵³ and 0.2 is not.
  const shrinksEnough = (shrink ?? 0) >= RULES.minShrink;

  const nllChange =
    c.baseMeanNll !== null && c.ablation.meanNll !== null ? c.ablation.meanNll / c.baseMeanNll - 1 : null;
  const evidence: Evidence = {
    sameToken,
    cancelledBy: canceller ? [canceller.layer, canceller.row, canceller.column] : null,
    residualBefore: c.residualBefore,
    residualAfter: after,
    activationToMedian,
    creates,
    persistsLayers,
    laterLayers,
    persists,
    shrink,
    shrinkAtLastLayer,
    meanNll: c.baseMeanNll,
    meanNllZeroed: c.ablation.meanNll,
    nllChange,
    nllEffect: nllEffect(c.baseMeanNll, c.ablation.meanNll),
  };

  const reasons: string[] = [];
  const f = (x: number) => x.toFixed(Math.abs(x) >= 10 ? 1 : 2);
  if (!sameToken)
    reasons.push(
      `input spike at token ${c.inputToken} but output spike at token ${c.token}: this weight does not produce that output`,
    );
  if (after === null) reasons.push("the residual at its token was not recorded (prompt too long for the trace budget)");
  else if (!creates) {
    if (Math.abs(after) <= Math.abs(c.residualBefore))
      reasons.push(
        `it shrinks the residual at channel ${c.row} (${f(c.residualBefore)} → ${f(after)}): it cancels an activation instead of creating one`,
      );
    else if (Math.sign(after) !== Math.sign(c.outputActivation))
      reasons.push(`its output (${f(c.outputActivation)}) opposes the residual at channel ${c.row} (${f(after)})`);
    else
      reasons.push(
        `the residual at channel ${c.row} reaches only ${f(activationToMedian!)}× the median (< ${RULES.massiveToMedian}×): no massive activation`,
      );
  } else if (sameToken)
    reasons.push(
      `creates a massive activation: residual channel ${c.row} at token ${c.token} goes ${f(c.residualBefore)} → ${f(after)} (${Math.round(activationToMedian!)}× the median)`,
    );
  const until = canceller ? ` until layer ${canceller.layer} [${canceller.row}, ${canceller.column}] cancels it` : "";
  if (laterLayers === 0 && !canceller) reasons.push("last layer: nothing after it carries an activation");
  else if (creates)
    reasons.push(
      persists
        ? `persists through ${persistsLayers} of ${laterLayers} later layers${until}`
        : `fades: carried by only ${persistsLayers} of ${laterLayers} later layers${until}`,
    );
  if (shrink !== null && creates && persists)
    reasons.push(
      shrinksEnough
        ? `zeroing it alone shrinks the activation by ${Math.round(100 * shrink)}%`
        : `zeroing it alone shrinks the activation by only ${Math.round(100 * shrink)}% (< ${100 * RULES.minShrink}%): others make it`,
    );
  const isSuper = sameToken && creates && persists && shrinksEnough;
  return { class: isSuper ? "super" : "outlier", evidence, reasons };
}

/** How much zeroing moved the prompt's mean NLL, in words a reader can trust. */
export function nllEffect(base: number | null, zeroed: number | null): NllEffect {
  if (base === null || zeroed === null) return "unknown";
  const pplRatio = Math.exp(zeroed - base);
  if (pplRatio >= 2) return "catastrophic";
  if (pplRatio >= 1.1 || pplRatio <= 1 / 1.1) return "large";
  if (Math.abs(zeroed - base) >= 0.005) return "slight";
  return "negligible";
}

export function describeNllEffect(e: Evidence): string {
  if (e.meanNll === null || e.meanNllZeroed === null) return "NLL effect not measured (one-token prompt)";
  const pct = `${(e.nllChange ?? 0) >= 0 ? "+" : ""}${(100 * (e.nllChange ?? 0)).toFixed(1)}`;
  const ppl = `perplexity ${Math.exp(e.meanNll).toFixed(3)} → ${Math.exp(e.meanNllZeroed).toFixed(3)}`;
  switch (e.nllEffect) {
    case "catastrophic":
      return `zeroing it alone is catastrophic on this prompt: mean NLL ${pct}% (${ppl})`;
    case "large":
      return `zeroing it alone moves the prompt's mean NLL by ${pct}% (${ppl})`;
    case "slight":
      return `zeroing it alone moves the prompt's mean NLL only slightly: ${pct}% (${ppl}); not catastrophic`;
    default:
      return `zeroing it alone leaves the prompt's mean NLL practically unchanged (${pct}%)`;
  }
}
