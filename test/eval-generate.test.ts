// Greedy generation through the KV cache against full re-runs: the same tokens exactly, for every variant in
// lockstep; the KL divergence against the baseline on the same context (from the fixtures' reference logits
// at the first step, from full passes after); the repetition rate and stopword figures.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import { loadTokenizer } from "../src/tokenizer/tokenizer.js";
import { generate, klFromLogits, repetitionRate } from "../src/eval/generate.js";
import { stopwordMask } from "../src/eval/shift.js";
import { ArmRunner } from "../src/eval/runner.js";
import { planArms } from "../src/eval/arms.js";
import { evaluate } from "../src/eval/eval.js";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Variant } from "../src/engine/variants.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";

/** Greedy tokens by full passes: prompt + what came so far, every step from scratch. */
async function byFullPasses(
  model: Model,
  variant: Variant,
  prompt: number[],
  steps: number,
): Promise<{ ids: number[]; logits: Float32Array[] }> {
  const ids: number[] = [],
    logits: Float32Array[] = [];
  const V = model.spec.vocab;
  for (let s = 0; s < steps; s++) {
    const seq = [...prompt, ...ids];
    const out = await forward(model, seq, { variants: [variant] });
    const last = out.logits!.slice((seq.length - 1) * V);
    logits.push(last);
    let best = 0;
    for (let j = 1; j < V; j++) if (last[j] > last[best]) best = j;
    ids.push(best);
  }
  return { ids, logits };
}

/** KL(p ‖ q) in float64 from plain logits. */
function kl(p: number[], q: number[]): number {
  const lse = (x: number[]) => {
    const m = Math.max(...x);
    return m + Math.log(x.reduce((s, v) => s + Math.exp(v - m), 0));
  };
  const lp = lse(p),
    lq = lse(q);
  return p.reduce((s, v, i) => s + Math.exp(v - lp) * (v - lp - (q[i] - lq)), 0);
}

for (const [name, zero] of [
  ["planted-llama-bf16", true],
  ["gpt2-f32", false],
  ["mistral-window-f32", false],
] as const) {
  test(
    `${name}: cached greedy decoding gives exactly the tokens of full re-runs, every variant in lockstep`,
    { skip: skipWithoutFixtures },
    async () => {
      const ref = readReference(name);
      const model = Model.open(fixturePath(name));
      // The random fixtures get a weight ×40, which changes their continuations.
      const plan = zero
        ? { zero: ref.withSuperWeightsZeroed.zeroed.map(([layer, row, column]: number[]) => ({ layer, row, column })) }
        : { zero: [{ layer: 0, row: 1, column: 2 }], scale: [{ weight: { layer: 1, row: 3, column: 4 }, factor: 40 }] };
      const runner = new ArmRunner(model, planArms(model, plan).arms);
      // (The planted model continues its reference ids whatever is zeroed; from this prompt it does not.)
      const prompt: number[] = zero ? [1, 80, 81, 82] : ref.input_ids.slice(0, 4),
        steps = 9;
      const gens = await generate(model, prompt, runner, { tokens: steps });
      assert.equal(gens.length, 2);
      // One pass at a time: the engine reuses its block buffers, so passes must not interleave.
      const full: { ids: number[]; logits: Float32Array[] }[] = [];
      for (const v of runner.batches[0].variants) full.push(await byFullPasses(model, v, prompt, steps));
      gens.forEach((g, m) => assert.deepEqual(g.ids, full[m].ids, `variant ${m}`));
      assert.notDeepEqual(
        gens[0].ids,
        gens[1].ids,
        "the intervention changes the continuation (so lockstep is tested)",
      );
      // On the baseline's context: KL(baseline ‖ arm) at every step, from full passes of the arm on the
      // baseline's tokens.
      const shadow: number[] = [];
      for (let s = 0; s < steps; s++) {
        const seq = [...prompt, ...full[0].ids.slice(0, s)];
        const out = await forward(model, seq, { variants: [runner.batches[0].variants[1]] });
        shadow.push(klFromLogits(full[0].logits[s], out.logits!.slice((seq.length - 1) * model.spec.vocab)));
      }
      assert.ok(
        Math.abs(gens[1].klFirst! - shadow[0]) <= 1e-5 + 1e-3 * shadow[0],
        `first step ${gens[1].klFirst} vs ${shadow[0]}`,
      );
      const meanKl = shadow.reduce((a, b) => a + b, 0) / steps;
      assert.ok(
        Math.abs(gens[1].klToBaseline! - meanKl) <= 1e-5 + 1e-3 * meanKl,
        `mean ${gens[1].klToBaseline} vs ${meanKl}`,
      );
      assert.equal(gens[0].klToBaseline, null);
      model.close();
    },
  );
}

test(
  "planted-llama-bf16: the first step's KL is that of the reference logits with and without the super weights",
  { skip: skipWithoutFixtures },
  async () => {
    const ref = readReference("planted-llama-bf16");
    const model = Model.open(fixturePath("planted-llama-bf16"));
    const runner = new ArmRunner(
      model,
      planArms(model, {
        zero: ref.withSuperWeightsZeroed.zeroed.map(([layer, row, column]: number[]) => ({ layer, row, column })),
      }).arms,
    );
    const T = ref.input_ids.length;
    const [, zeroed] = await generate(model, ref.input_ids, runner, { tokens: 1 });
    const want = kl(ref.logits[T - 1], ref.withSuperWeightsZeroed.logits[T - 1]);
    assert.ok(want > 0.01, `the super weights matter here (${want})`);
    assert.ok(Math.abs(zeroed.klFirst! - want) <= 1e-4 + 1e-3 * want, `${zeroed.klFirst} vs ${want}`);
    model.close();
  },
);

test(
  "stopword figures of a generation on bytes-llama-6m; EOS ends a continuation",
  { skip: skipWithoutFixtures },
  async () => {
    const dir = fixturePath("bytes-llama-6m");
    const model = Model.open(dir);
    const tokenizer = loadTokenizer(dir)!;
    const mask = stopwordMask(tokenizer, model.spec.vocab);
    // Byte tokens: the only English stopwords one byte spells are "a" and "i".
    assert.deepEqual(
      [...mask.keys()].filter((i) => mask[i]),
      [65, 73, 97, 105],
    );
    const runner = new ArmRunner(model, planArms(model, {}).arms);
    const prompt = tokenizer.encode("A stitch in time");
    const [g] = await generate(model, prompt, runner, { tokens: 24, stopwords: mask });
    assert.equal(g.stopwordShare, g.ids.filter((id) => mask[id]).length / g.ids.length);
    assert.ok(g.stopwordMass! > 0 && g.stopwordMass! < 1);
    // With its own first token as EOS the continuation is empty and says so.
    const [stopped] = await generate(model, prompt, runner, { tokens: 24, eos: [g.ids[0]] });
    assert.deepEqual(stopped.ids, []);
    assert.equal(stopped.stoppedAtEos, true);
    model.close();
  },
);

test("repetition rate: 1 − distinct 4-grams / 4-grams", () => {
  assert.equal(repetitionRate([1, 2, 3, 4, 1, 2, 3, 4]), 1 - 4 / 5);
  assert.equal(repetitionRate([1, 2, 3, 4, 5]), 0);
  assert.equal(repetitionRate([7, 7, 7, 7, 7, 7]), 1 - 1 / 3);
  assert.equal(repetitionRate([1, 2, 3]), null);
});

test(
  "eval --generate: the baseline ends at config.json's EOS while the intervention goes on; the model's positions end both",
  { skip: skipWithoutFixtures },
  async () => {
    const src = fixturePath("planted-llama-bf16");
    const zero = [{ layer: 1, row: 11, column: 37 }];
    const prompt: number[] = readReference("planted-llama-bf16").input_ids;
    const run = async (dir: string, ids: number[], tokens: number) => {
      const model = Model.open(dir);
      try {
        return await evaluate(model, { plan: { zero }, prompts: [{ label: "p", ids }], generate: { tokens } });
      } finally {
        model.close();
      }
    };
    const first = (await run(src, prompt, 6)).generation!.prompts[0].arms;
    const [base, zeroed] = first.map((g) => g!.ids);
    assert.notEqual(base[0], zeroed[0], "zeroing the super weight changes the first token");

    // A copy whose eos_token_id is a list that adds the baseline's first token (and a string, which is no id).
    const dir = mkdtempSync(join(tmpdir(), "sw-eos-"));
    try {
      for (const f of ["model.safetensors", "config.json"]) copyFileSync(join(src, f), join(dir, f));
      const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
      writeFileSync(
        join(dir, "config.json"),
        JSON.stringify({ ...config, eos_token_id: ["x", base[0], config.eos_token_id] }),
      );
      const [b, z] = (await run(dir, prompt, 6)).generation!.prompts[0].arms;
      assert.deepEqual([b!.ids, b!.stoppedAtEos], [[], true]);
      assert.ok(!zeroed.includes(base[0]));
      assert.deepEqual([z!.ids, z!.stoppedAtEos], [zeroed, first[1]!.stoppedAtEos]);
      // Compared with the baseline only while it runs: the first step.
      assert.equal(z!.klFirst, first[1]!.klFirst);
      assert.equal(z!.klToBaseline, first[1]!.klFirst);
      assert.notEqual(first[1]!.klToBaseline, first[1]!.klFirst);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    // 120 prompt tokens of 128 positions: the prompt's next token and 8 more, each arm.
    const long = Array.from({ length: 120 }, (_, i) => 3 + ((i * 7) % 150));
    const ends = (await run(src, long, 20)).generation!.prompts[0].arms;
    assert.deepEqual(
      ends.map((g) => g!.ids.length),
      [9, 9],
    );
  },
);

test(
  "generate runs the prompt once and one pass per further token, none after the last",
  { skip: skipWithoutFixtures },
  async () => {
    const model = Model.open(fixturePath("planted-llama-bf16"));
    try {
      for (const tokens of [0, 1, 4]) {
        const runner = new ArmRunner(model, planArms(model, {}).arms);
        const [g] = await generate(model, [1, 17, 42], runner, { tokens });
        assert.equal(g.ids.length, tokens);
        assert.equal(runner.passes, Math.max(1, tokens), `${tokens} tokens`);
      }
    } finally {
      model.close();
    }
  },
);
