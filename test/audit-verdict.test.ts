// The audit's verdict sentence, from reports built here one field at a time: each clause (the weight kept,
// survived, not survived or unknown; its block-mates intact, collapsed, zeroed or merely spread; the super
// activation still forming, reduced to an outlier, gone, or never there) and how they join. The planted GGUF files
// give a few of these through a real audit (audit.test.ts); the rest need a report no fixture produces.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  verdict,
  type ActivationSeen,
  type AuditedWeight,
  type AuditReport,
  type ErrorStats,
  type Mates,
  type NllCost,
} from "../src/superweight/audit.js";

const LARGEST = { input: 10, inputChannel: 3, output: 12.5, outputChannel: 7 };
const seen = (found: boolean, cls: "super" | "outlier" | null = "super", output = 388): ActivationSeen => ({
  found,
  class: found ? cls : null,
  inputActivation: found ? 175 : null,
  outputActivation: found ? output : null,
  token: found ? 1 : null,
  layerMax: LARGEST,
});

function mates(distinct: number, zeros: number, vs: Partial<ErrorStats> | null): Mates {
  return {
    columns: [288, 319],
    n: 31,
    stored: { rms: 0.05, maxAbs: 0.1, min: -0.1, max: 0.1, exactZeros: zeros, distinctValues: distinct },
    vsOriginal: vs && {
      rmsOriginal: 0.05,
      rmsError: 0.0051,
      maxAbsError: 0.01,
      zeroed: 0,
      distinctOriginal: 30,
      ...vs,
    },
  };
}

function weight(o: Partial<AuditedWeight> = {}): AuditedWeight {
  const stored = o.stored ?? 2.21886,
    original = o.original === undefined ? 2.21875 : o.original;
  return {
    layer: 1,
    row: 40,
    column: 300,
    sources: ["reference scan"],
    tensor: "model.layers.1.mlp.down_proj.weight",
    ggufTensor: "blk.1.ffn_down.weight",
    ggufElement: 10540,
    ggmlType: "Q8_0",
    blockSize: 32,
    block: [288, 319],
    unquantized: false,
    stored,
    original,
    originalFrom: original === null ? null : "reference",
    error: original === null ? null : stored - original,
    relativeError: original === null || original === 0 ? null : (stored - original) / Math.abs(original),
    recorded: null,
    block32: mates(12, 1, { zeroed: 1 }),
    superBlock256: null,
    restOfRowRmsError: 0.00025,
    activation: { gguf: seen(true), reference: seen(true, "super", 399) },
    ...o,
  };
}

const NLL: NllCost = {
  on: "inputs",
  tokens: 11,
  truncated: 0,
  predictions: 10,
  gguf: { meanNll: 0.0307, perplexity: Math.exp(0.0307) },
  reference: { meanNll: 0.0293, perplexity: Math.exp(0.0293) },
  change: 0.049,
};

const sentence = (weights: AuditedWeight[], nll: Partial<NllCost> = {}) =>
  verdict({ superWeights: weights, nll: { ...NLL, ...nll } } as AuditReport);

test("no super weight: said so, with the file's NLL when there is one", () => {
  const none =
    "no super weight found (no published coordinates, no superweight.* metadata, and the scan classified no " +
    "candidate as super)";
  assert.equal(sentence([]), `${none}; mean NLL 0.0307`);
  assert.equal(sentence([], { gguf: null }), none);
});

test("survived, but its block-mates lost values: the contrast is one clause; then the activation and the NLL", () => {
  assert.equal(
    sentence([weight()]),
    "the super weight survived Q8_0 (2.21886 vs 2.21875) but its 31 block-mates kept 12 of 30 distinct values, " +
      "1 of them 0 (rms error 0.00510, 20.4× that of the rest of its row); the super activation still forms " +
      "(388 vs 399); NLL +4.9%",
  );
  // Within 1 % is survival; at 1 % exactly still is, and just past it is not.
  assert.match(sentence([weight({ stored: 101, original: 100 })]), /^the super weight survived Q8_0 \(101 vs 100\)/);
  assert.match(sentence([weight({ stored: 2.019, original: 2 })]), /^the super weight survived Q8_0 \(2\.019 vs 2\)/);
  assert.match(
    sentence([weight({ stored: 101.01, original: 100 })]),
    /^the super weight did not survive Q8_0: 101\.01 vs 100 \(\+1\.0%\)/,
  );
  // Without the rest of the row's error there is no ratio; with no zeros, none are counted.
  assert.match(
    sentence([weight({ restOfRowRmsError: null, block32: mates(12, 0, {}) })]),
    /its 31 block-mates kept 12 of 30 distinct values \(rms error 0\.00510\); /,
  );
});

test("did not survive: the stored value against the original with the relative change", () => {
  assert.equal(
    sentence([weight({ stored: 2, original: 2.5, ggmlType: "Q4_0", block32: mates(2, 0, {}) })], { change: -0.25 }),
    "the super weight did not survive Q4_0: 2 vs 2.5 (−20.0%); its 31 block-mates collapsed onto 2 values; " +
      "the super activation still forms (388 vs 399); NLL −25.0%",
  );
  // An original of 0: no relative change to give.
  assert.match(sentence([weight({ stored: 0.5, original: 0 })]), /^the super weight did not survive Q8_0: 0\.5 vs 0; /);
});

test("the block-mates: intact, all zeroed, collapsed with zeros, or only their stored spread without a reference", () => {
  assert.match(
    sentence([weight({ block32: mates(30, 0, { rmsError: 0 }) })]),
    /\(2\.21886 vs 2\.21875\); its 31 block-mates are intact; the super/,
  );
  assert.match(
    sentence([weight({ block32: mates(1, 31, { zeroed: 31 }) })]),
    / but all 31 of its block-mates became 0; /,
  );
  assert.match(
    sentence([weight({ block32: mates(3, 5, { zeroed: 5 }) })]),
    / but its 31 block-mates collapsed onto 3 values, 5 of them 0; /,
  );
  assert.match(
    sentence([weight({ block32: mates(5, 0, {}) })]),
    / but its 31 block-mates kept 5 of 30 distinct values \(rms error/,
  );
  const unknown = { original: null, block32: mates(5, 2, null), activation: { gguf: seen(true), reference: null } };
  assert.equal(
    sentence([weight({ ...unknown, ggmlType: "Q4_0" })], { change: null, reference: null }),
    "the super weight is stored as Q4_0 (2.21886; its original is unknown without --reference); its 31 " +
      "block-mates are stored as 5 distinct values (2 of them 0); the super activation still forms (388); " +
      "mean NLL 0.0307 (no reference to compare)",
  );
  assert.match(sentence([weight({ ...unknown, block32: mates(5, 0, null) })]), /are stored as 5 distinct values; /);
  assert.match(
    sentence([weight({ ...unknown, block32: mates(1, 31, null) })]),
    /\); its 31 block-mates are all stored as 0; /,
  );
});

test("kept: its tensor unquantized, exact with its block-mates, or with the error it has", () => {
  const kept = { unquantized: true, ggmlType: "F16", blockSize: 1, stored: 2.21875 };
  assert.equal(
    sentence([weight({ ...kept, block32: mates(30, 0, { rmsError: 0 }) })], { change: 0.00001 }),
    "the super weight is kept: its tensor is stored F16, so it and its 31 block-mates are exact (error 0); the " +
      "super activation still forms (388 vs 399); NLL +0.00%",
  );
  assert.match(
    sentence([weight({ ...kept, stored: 2.21975, block32: mates(30, 0, { rmsError: 0.0001 }) })]),
    /^the super weight is kept: its tensor is stored F16, error 1\.0e-3 but its 31 block-mates kept 30 of 30 distinct values \(rms error 0\.000100, 0\.400× that of the rest of its row\); /,
  );
  assert.match(
    sentence(
      [
        weight({
          ...kept,
          original: null,
          block32: mates(30, 0, null),
          activation: { gguf: seen(true), reference: null },
        }),
      ],
      {
        change: null,
      },
    ),
    /^the super weight is kept: its tensor is stored F16 \(not block-quantized\); the super activation still forms \(388\)/,
  );
});

test("the activation: an outlier now, gone, never formed without a reference, or not a super weight of this model", () => {
  assert.match(
    sentence([weight({ activation: { gguf: seen(true, "outlier", 120), reference: seen(true) } })]),
    /; the rule still finds it, but as an outlier, not a super weight \(120 vs 388\); NLL/,
  );
  assert.match(
    sentence([weight({ activation: { gguf: seen(false), reference: seen(true, "super", 399) } })]),
    /; the super activation no longer forms \(layer 1's largest down_proj output is 12\.5 at channel 7 vs 399\); NLL/,
  );
  assert.match(
    sentence([weight({ original: null, activation: { gguf: seen(false), reference: null } })], { change: null }),
    /; the super activation does not form \(layer 1's largest down_proj output is 12\.5 at channel 7\); mean NLL/,
  );
  // A coordinate the reference makes nothing of: named as listed (or published), reported and not judged.
  const notSuper = { stored: 2, original: 2.5, activation: { gguf: seen(false), reference: seen(false) } };
  assert.equal(
    sentence([weight(notSuper)], { change: null, gguf: null }),
    "the listed weight [1, 40, 300] is stored as Q8_0: 2 vs 2.5 (−20.0%); its 31 block-mates kept 12 of 30 " +
      "distinct values, 1 of them 0 (rms error 0.00510, 20.4× that of the rest of its row); its activation forms in " +
      "neither this file nor the reference (layer 1's largest down_proj output is 12.5 at channel 7 there): not a " +
      "super weight of this model",
  );
  assert.match(
    sentence([
      weight({ ...notSuper, sources: ["directory"], activation: { gguf: seen(true), reference: seen(false) } }),
    ]),
    /^the published weight \[1, 40, 300\] is stored as Q8_0: .*; the rule finds it in this file \(388\) but not in the reference; NLL/,
  );
});

test("several super weights: each named by its coordinates, in one sentence", () => {
  const second = weight({ layer: 2, row: 7, column: 9, block32: mates(30, 0, { rmsError: 0 }) });
  assert.equal(
    sentence([weight({ block32: mates(30, 0, { rmsError: 0 }) }), second], { change: 0.0123 }),
    "the super weight [1, 40, 300] survived Q8_0 (2.21886 vs 2.21875); its 31 block-mates are intact; the super " +
      "activation still forms (388 vs 399); the super weight [2, 7, 9] survived Q8_0 (2.21886 vs 2.21875); its 31 " +
      "block-mates are intact; the super activation still forms (388 vs 399); NLL +1.2%",
  );
});
