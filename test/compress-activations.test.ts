// Activation quantization as a forward-pass hook (src/compress/activations.ts) against a hand computation: in a
// real pass over the planted fixture, every tensor the hook quantizes (each layer's down_proj input, or every linear
// input) comes out as min–max round-to-nearest of what went in, computed here in float64 from the definition —
// lo, hi over the tensor without the held-out super activation, step (hi − lo)/(2^bits − 1), x̂ = lo + step·round
// ((x − lo)/step) — and the super activation passes untouched; a plain variant beside it is not disturbed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import type { HookEvent } from "../src/engine/hooks.js";
import { quantizeActivations, type ActivationInputs } from "../src/compress/activations.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";

interface Planted {
  input_ids: number[];
  threshold: number;
  expectedSuperWeights: {
    layer: number;
    column: number;
    inputToken: number;
    tensor: string;
    class: string;
    inputActivation: number;
  }[];
}

/** x quantized by the definition, in float64, the indices in `keep` left as they are. */
function handRtn(x: Float32Array, bits: number, keep: Set<number>): Float64Array {
  let lo = Infinity,
    hi = -Infinity;
  x.forEach((v, i) => keep.has(i) || ((lo = Math.min(lo, v)), (hi = Math.max(hi, v))));
  const step = (hi - lo) / (2 ** bits - 1);
  return Float64Array.from(x, (v, i) => (keep.has(i) ? v : lo + step * Math.round((v - lo) / step)));
}

interface Seen {
  event: string;
  before: Float32Array;
  after: Float32Array;
  keep: Set<number>;
}

async function run(bits: number, inputs: ActivationInputs, holdOut: boolean) {
  const ref = readReference<Planted>("planted-llama-bf16");
  const model = Model.open(fixturePath("planted-llama-bf16"));
  try {
    const sw = ref.expectedSuperWeights.find((w) => w.class === "super" && w.layer === 1)!;
    const sites = holdOut ? [{ layer: sw.layer, tensor: sw.tensor, token: sw.inputToken, channel: sw.column }] : [];
    const point = inputs === "down_proj" ? "down_proj_input" : "linear_input";
    const seen: Seen[] = [];
    let pending: Float32Array | undefined;
    const before = (e: HookEvent) => void (e.point === point && (pending = e.data.slice()));
    const after = (e: HookEvent) => {
      if (e.point !== point) return;
      const keep = new Set<number>();
      if (holdOut && e.layer === sw.layer && e.tensor === sw.tensor) keep.add(sw.inputToken * e.width + sw.column);
      seen.push({ event: `layer ${e.layer} ${e.tensor}`, before: pending!, after: e.data.slice(), keep });
    };
    const quantized = { hooks: [before, quantizeActivations(bits, sites, inputs), after] };
    const out = await forward(model, ref.input_ids, { variants: [{}, quantized] });
    const plain = await forward(model, ref.input_ids);
    return { model, ref, sw, seen, logits: out.logits!, plain: plain.logits! };
  } finally {
    model.close();
  }
}

for (const inputs of ["down_proj", "linear"] as ActivationInputs[])
  for (const bits of [8, 6, 4])
    test(
      `${inputs} inputs at ${bits} bits, super activation held out: each tensor is the hand-computed RTN of its ` +
        "input; a plain variant beside it is untouched",
      { skip: skipWithoutFixtures },
      async () => {
        const { model, ref, sw, seen, logits, plain } = await run(bits, inputs, true);
        const { layers } = model.spec;
        // q, k, v, o, gate, up, down in each llama layer; or one down projection
        assert.equal(seen.length, layers * (inputs === "down_proj" ? 1 : 7));
        let held = 0;
        for (const s of seen) {
          const hand = handRtn(s.before, bits, s.keep);
          let lo = Infinity,
            hi = -Infinity;
          s.before.forEach((v, i) => s.keep.has(i) || ((lo = Math.min(lo, v)), (hi = Math.max(hi, v))));
          const tolerance = 1e-6 * Math.max(-lo, hi);
          let worst = 0;
          for (let i = 0; i < hand.length; i++) worst = Math.max(worst, Math.abs(s.after[i] - hand[i]));
          assert.ok(worst <= tolerance, `${s.event}: |x̂ − hand| up to ${worst} > ${tolerance}`);
          // something was rounded: the tensor changed
          assert.ok(
            s.after.some((v, i) => v !== s.before[i]),
            `${s.event}: unchanged`,
          );
          for (const i of s.keep) {
            held++;
            assert.equal(s.after[i], s.before[i], `${s.event}: the super activation moved`);
            // the planted super activation (reference.json: 180.19 at token 0, channel 37; the layer before is
            // quantized too, so only its size is the reference's here)
            assert.ok(Math.abs(s.after[i]) > ref.threshold && Math.sign(s.after[i]) === Math.sign(sw.inputActivation));
          }
        }
        assert.equal(held, 1, "the super activation is held out once, at its own down_proj's input");
        const n = plain.length;
        for (let k = 0; k < n; k++) assert.ok(Object.is(logits[k], plain[k]), `plain variant logit ${k}`);
        assert.ok(
          logits.subarray(n).some((v, k) => v !== plain[k]),
          "the quantized variant's logits moved",
        );
      },
    );

test(
  "without the hold-out the super activation sets its tensor's range: every other input of that down_proj is " +
    "rounded with a step set by it",
  { skip: skipWithoutFixtures },
  async () => {
    const { ref, sw, seen } = await run(4, "down_proj", false);
    const s = seen.find((x) => x.event === `layer ${sw.layer} ${sw.tensor}`)!;
    const at = sw.inputToken * (s.before.length / ref.input_ids.length) + sw.column;
    assert.equal(s.keep.size, 0);
    const hand = handRtn(s.before, 4, new Set());
    for (let i = 0; i < hand.length; i++)
      assert.ok(Math.abs(s.after[i] - hand[i]) <= 1e-6 * Math.abs(sw.inputActivation));
    // its own error is at most half a step; the others' errors reach the scale of a step of the whole range, which is
    // about twice the range without it
    let lo = Infinity,
      hi = -Infinity,
      restLo = Infinity,
      restHi = -Infinity,
      worst = 0;
    s.before.forEach((v, i) => {
      ((lo = Math.min(lo, v)), (hi = Math.max(hi, v)));
      if (i === at) return;
      ((restLo = Math.min(restLo, v)), (restHi = Math.max(restHi, v)));
      worst = Math.max(worst, Math.abs(s.after[i] - v));
    });
    const step = (hi - lo) / 15;
    // (another token reaches 87 here: the range without it is about half)
    assert.ok((hi - lo) / (restHi - restLo) > 1.8, "the super activation sets its tensor's range");
    assert.ok(Math.abs(s.after[at] - s.before[at]) <= step / 2 + 1e-4);
    assert.ok(worst > 0.3 * step && worst <= step / 2 + 1e-4, `others' largest error ${worst}, step ${step}`);
  },
);
