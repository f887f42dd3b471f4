// The classification of a candidate, rule by rule at its bars, and the words a reader gets for each verdict.
// Every expected number below is worked out by hand from the candidate's measurements.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Candidate } from "../src/superweight/detect.js";
import { classify, describeNllEffect, nllEffect, RULES } from "../src/superweight/classify.js";
import { creator } from "./candidates.js";

const L = 4;

test("the bars are the documented ones", () => {
  assert.deepEqual(RULES, { massiveToMedian: 10, persistFraction: 0.5, persistLayers: 0.5, minShrink: 0.2 });
});

test("a persistent creator: its evidence and its reasons, word for word", () => {
  const v = classify(creator, L);
  assert.equal(v.class, "super");
  assert.deepEqual(v.evidence, {
    sameToken: true,
    cancelledBy: null,
    residualBefore: 1,
    residualAfter: 300,
    activationToMedian: 300,
    creates: true,
    persistsLayers: 2,
    laterLayers: 2,
    persists: true,
    shrink: 1 - 2 / 300,
    shrinkAtLastLayer: 1 - 2 / 280,
    meanNll: 1,
    meanNllZeroed: 2,
    nllChange: 1,
    nllEffect: "catastrophic",
  });
  assert.deepEqual(v.reasons, [
    "creates a massive activation: residual channel 3 at token 0 goes 1.00 → 300.0 (300× the median)",
    "persists through 2 of 2 later layers",
    "zeroing it alone shrinks the activation by 99%",
  ]);
});

test("massive means at least 10× the layer's median |residual|", () => {
  const at = (after: number) =>
    classify({ ...creator, outputActivation: after, residual: [1, after, after, after] }, L);
  assert.equal(at(10).evidence.creates, true);
  assert.equal(at(10).class, "super");
  const below = at(9.99);
  assert.equal(below.evidence.creates, false);
  assert.equal(below.class, "outlier");
  assert.deepEqual(below.reasons, [
    "the residual at channel 3 reaches only 9.99× the median (< 10×): no massive activation",
  ]);
  // The median scales it: 300 over a median of 40 is 7.5×.
  const medians = classify({ ...creator, medianAbsResidual: [1, 40, 1, 1] }, L);
  assert.equal(medians.evidence.activationToMedian, 7.5);
  assert.equal(medians.evidence.creates, false);
});

test("creating needs |residual| to grow through the layer", () => {
  const same = classify({ ...creator, residualBefore: 300 }, L);
  assert.equal(same.evidence.creates, false);
  assert.deepEqual(same.reasons, [
    "it shrinks the residual at channel 3 (300.0 → 300.0): it cancels an activation instead of creating one",
  ]);
  // From 10 up: one decimal.
  assert.equal(
    classify({ ...creator, residualBefore: 10 }, L).reasons[0],
    "creates a massive activation: residual channel 3 at token 0 goes 10.0 → 300.0 (300× the median)",
  );
  const shrinks = classify({ ...creator, residualBefore: -400 }, L);
  assert.deepEqual(shrinks.reasons, [
    "it shrinks the residual at channel 3 (-400.0 → 300.0): it cancels an activation instead of creating one",
  ]);
  assert.equal(shrinks.class, "outlier");
  const opposes = classify({ ...creator, outputActivation: -300 }, L);
  assert.deepEqual(opposes.reasons, ["its output (-300.0) opposes the residual at channel 3 (300.0)"]);
});

test("persisting: a later layer carries it at ≥ half its size and the same sign, in at least half the later layers", () => {
  const with_ = (residual: (number | null)[]) => classify({ ...creator, residual }, L);
  assert.equal(with_([1, 300, 150, 150]).evidence.persistsLayers, 2, "exactly half its size still carries it");
  assert.equal(with_([1, 300, 149, 150]).evidence.persistsLayers, 1);
  assert.equal(with_([1, 300, -290, 150]).evidence.persistsLayers, 1, "the opposite sign does not carry it");
  const half = with_([1, 300, 290, 10]);
  assert.equal(half.evidence.persists, true, "1 of 2 later layers is half");
  assert.equal(half.class, "super");
  const fades = with_([1, 300, 10, 5]);
  assert.equal(fades.evidence.persists, false);
  assert.equal(fades.class, "outlier");
  assert.deepEqual(fades.reasons, [
    "creates a massive activation: residual channel 3 at token 0 goes 1.00 → 300.0 (300× the median)",
    "fades: carried by only 0 of 2 later layers",
  ]);
  // Nothing recorded, nothing counted: a residual of 0 after the layer with later ones not recorded, and the reverse.
  assert.equal(with_([1, 0, null, null]).evidence.persistsLayers, 0);
  assert.equal(with_([1, null, 0, 0]).evidence.persistsLayers, 0);
  // Layer 1 of 5: 1 of 3 later layers is less than half.
  const five = classify({ ...creator, residual: [1, 300, 290, 10, 5], medianAbsResidual: [1, 1, 1, 1, 1] }, 5);
  assert.deepEqual([five.evidence.persistsLayers, five.evidence.laterLayers, five.evidence.persists], [1, 3, false]);
});

test("the last layer has nothing after it to carry an activation", () => {
  const last = classify(
    { ...creator, layer: 3, residual: [1, 1, 1, 300], ablation: { residual: [null, null, null, 2], meanNll: 2 } },
    L,
  );
  assert.deepEqual([last.evidence.laterLayers, last.evidence.persists, last.class], [0, false, "outlier"]);
  assert.deepEqual(last.reasons, [
    "creates a massive activation: residual channel 3 at token 0 goes 1.00 → 300.0 (300× the median)",
    "last layer: nothing after it carries an activation",
  ]);
});

test("a later canceller on the same token and channel ends the layers it is judged on", () => {
  const canceller: Candidate = {
    ...creator,
    layer: 2,
    column: 17,
    outputActivation: -290,
    residualBefore: 300,
    residual: [1, 300, 10, 5],
  };
  const v = classify({ ...creator, residual: [1, 300, 10, 5] }, L, [canceller]);
  assert.equal(v.class, "super");
  assert.deepEqual([v.evidence.cancelledBy, v.evidence.laterLayers, v.evidence.persists], [[2, 3, 17], 0, true]);
  assert.equal(v.reasons[1], "persists through 0 of 0 later layers until layer 2 [3, 17] cancels it");
  // Not a canceller: another token, another channel, or the same sign as the activation.
  for (const other of [
    { ...canceller, token: 1 },
    { ...canceller, row: 4 },
    { ...canceller, outputActivation: 290 },
  ])
    assert.equal(classify({ ...creator, residual: [1, 300, 10, 5] }, L, [other]).evidence.cancelledBy, null);
  // The canceller's own layer is not one that carries it, even where it does not cancel it all.
  const partial = classify({ ...creator, residual: [1, 300, 290, 280] }, L, [canceller]);
  assert.deepEqual([partial.evidence.persistsLayers, partial.evidence.laterLayers], [0, 0]);
  // Cancelled later: the layers in between must carry it.
  const gone = classify({ ...creator, residual: [1, 300, 10, 5] }, L, [{ ...canceller, layer: 3 }]);
  assert.deepEqual([gone.evidence.laterLayers, gone.evidence.persists, gone.class], [1, false, "outlier"]);
  // With the residual not recorded there is nothing to cancel.
  assert.equal(classify({ ...creator, residual: [null, null, null, null] }, L, [canceller]).evidence.cancelledBy, null);
  // The earliest of two cancellers counts.
  const later = { ...canceller, layer: 3, column: 30 };
  assert.deepEqual(classify(creator, L, [later, canceller]).evidence.cancelledBy, [2, 3, 17]);
});

test("zeroing it alone must shrink the activation by at least 20%", () => {
  const zeroed = (v: number) => classify({ ...creator, ablation: { residual: [null, v, 2, 2], meanNll: 2 } }, L);
  assert.equal(zeroed(0.79 * 300).class, "super");
  const others = zeroed(0.81 * 300);
  assert.equal(others.class, "outlier");
  assert.equal(others.reasons[2], "zeroing it alone shrinks the activation by only 19% (< 20%): others make it");
  assert.equal(zeroed(-2).evidence.shrink, 1 - 2 / 300, "by magnitude");
  // Not recorded, or a zero residual: no shrink, so not super.
  const unknown = classify({ ...creator, ablation: { residual: [null, null, null, null], meanNll: null } }, L);
  assert.deepEqual(
    [unknown.evidence.shrink, unknown.evidence.shrinkAtLastLayer, unknown.evidence.nllChange, unknown.class],
    [null, null, null, "outlier"],
  );
  assert.deepEqual(
    unknown.reasons.slice(1),
    ["persists through 2 of 2 later layers"],
    "no word on a shrink not measured",
  );
  assert.equal(classify({ ...creator, baseMeanNll: null }, L).evidence.nllChange, null);
  assert.equal(classify({ ...creator, residual: [1, 300, 290, 0] }, L).evidence.shrinkAtLastLayer, null);
});

test("spikes on different tokens, or a residual not recorded, are outliers with their reason", () => {
  const split = classify({ ...creator, inputToken: 5 }, L);
  assert.equal(split.class, "outlier");
  assert.deepEqual(split.reasons, [
    "input spike at token 5 but output spike at token 0: this weight does not produce that output",
    "persists through 2 of 2 later layers",
    "zeroing it alone shrinks the activation by 99%",
  ]);
  const unrecorded = classify({ ...creator, residual: [null, null, null, null] }, L);
  assert.deepEqual(
    [unrecorded.evidence.activationToMedian, unrecorded.evidence.creates, unrecorded.evidence.shrink, unrecorded.class],
    [null, false, null, "outlier"],
  );
  assert.deepEqual(unrecorded.reasons, [
    "the residual at its token was not recorded (prompt too long for the trace budget)",
  ]);
});

test("the NLL effect's labels at their bars: perplexity ×2, ×1.1 either way, |ΔNLL| 0.005", () => {
  assert.equal(nllEffect(null, 1), "unknown");
  assert.equal(nllEffect(1, null), "unknown");
  // On each bar exactly (e^ln 2 = 2, e^ln 1.1 = 1.1 and e^ln(1/1.1) = 1/1.1 in floating point).
  assert.equal(nllEffect(0, Math.LN2), "catastrophic");
  assert.equal(nllEffect(0, Math.log(1.1)), "large");
  assert.equal(nllEffect(0, Math.log(1 / 1.1)), "large");
  assert.equal(nllEffect(0, 0.7), "catastrophic"); // e^0.7 = 2.01
  assert.equal(nllEffect(0, 0.69), "large"); // e^0.69 = 1.99
  assert.equal(nllEffect(0, 0.096), "large"); // e^0.096 = 1.1008
  assert.equal(nllEffect(0, -0.096), "large"); // 1 / 1.1008
  assert.equal(nllEffect(0, 0.09), "slight");
  assert.equal(nllEffect(0, -0.09), "slight");
  assert.equal(nllEffect(0, 0.005), "slight");
  assert.equal(nllEffect(0, -0.005), "slight");
  assert.equal(nllEffect(0, 0.0049), "negligible");
  assert.equal(nllEffect(2, 2), "negligible");
});

test("the NLL effect in words, with the relative change and both perplexities", () => {
  const e = (meanNll: number | null, meanNllZeroed: number | null) => {
    const nllChange = meanNll !== null && meanNllZeroed !== null ? meanNllZeroed / meanNll - 1 : null;
    return {
      ...classify(creator, L).evidence,
      meanNll,
      meanNllZeroed,
      nllChange,
      nllEffect: nllEffect(meanNll, meanNllZeroed),
    };
  };
  assert.equal(describeNllEffect(e(null, 2)), "NLL effect not measured (one-token prompt)");
  assert.equal(describeNllEffect(e(1, null)), "NLL effect not measured (one-token prompt)");
  assert.equal(
    describeNllEffect(e(1, 2)),
    "zeroing it alone is catastrophic on this prompt: mean NLL +100.0% (perplexity 2.718 → 7.389)",
  );
  assert.equal(
    describeNllEffect(e(1, 1.1)),
    "zeroing it alone moves the prompt's mean NLL by +10.0% (perplexity 2.718 → 3.004)",
  );
  assert.equal(
    describeNllEffect(e(1, 1.01)),
    "zeroing it alone moves the prompt's mean NLL only slightly: +1.0% (perplexity 2.718 → 2.746); not catastrophic",
  );
  assert.equal(
    describeNllEffect(e(1, 0.99)),
    "zeroing it alone moves the prompt's mean NLL only slightly: -1.0% (perplexity 2.718 → 2.691); not catastrophic",
  );
  assert.equal(
    describeNllEffect(e(1, 1.001)),
    "zeroing it alone leaves the prompt's mean NLL practically unchanged (+0.1%)",
  );
  assert.equal(
    describeNllEffect(e(1, 1)),
    "zeroing it alone leaves the prompt's mean NLL practically unchanged (+0.0%)",
  );
});
