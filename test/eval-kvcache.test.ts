// The KV cache: a pass that continues a cache computes what a full pass over the whole sequence computes
// at those positions (logits within the fixtures' tolerance of the reference), for RoPE, learned positions
// (GPT-2), a binding sliding window, and several variants with their own tokens.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import { KvCache } from "../src/engine/kv-cache.js";
import { editWeights } from "../src/engine/variants.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { toleranceUsed } from "./tolerance.js";

for (const name of [
  "llama-f32",
  "gpt2-f32",
  "mistral-window-f32",
  "llama3-gqa-bf16",
  "phi3-bf16",
  "olmo-f32",
  "gemma-bf16",
]) {
  test(
    `${name}: prefill + one token at a time through the cache gives the reference logits`,
    { skip: skipWithoutFixtures },
    async () => {
      const ref = readReference(name);
      const model = Model.open(fixturePath(name));
      try {
        const ids: number[] = ref.input_ids,
          V = model.spec.vocab,
          T = ids.length;
        const cache = new KvCache(1);
        const prefill = 3;
        const first = await forward(model, ids.slice(0, prefill), { cache });
        assert.equal(cache.length, prefill);
        const got = [first.logits!];
        for (let t = prefill; t < T; t++) got.push((await forward(model, [ids[t]], { cache })).logits!);
        assert.equal(cache.length, T);
        const all = new Float32Array(T * V);
        let at = 0;
        for (const g of got) (all.set(g, at), (at += g.length));
        const used = toleranceUsed(all, ref.logits.flat());
        assert.ok(used <= 1, `${used.toFixed(2)}× the tolerance`);
      } finally {
        model.close();
      }
    },
  );
}

test(
  "truncate forgets a continuation: a second one from the same prefix sees only the prefix",
  { skip: skipWithoutFixtures },
  async () => {
    const ref = readReference("llama-f32");
    const model = Model.open(fixturePath("llama-f32"));
    const ids: number[] = ref.input_ids,
      V = model.spec.vocab;
    const cache = new KvCache(1);
    await forward(model, ids.slice(0, 5), { cache });
    await forward(model, [7, 8, 9], { cache }); // a different continuation, then forgotten
    cache.truncate(5);
    const out = await forward(model, ids.slice(5, 8), { cache });
    assert.ok(toleranceUsed(out.logits!, ref.logits.slice(5, 8).flat()) <= 1);
    assert.equal(out.logits!.length, 3 * V);
    assert.throws(() => cache.truncate(9), RangeError);
    model.close();
  },
);

test("variants with their own tokens continue their own cache slots", { skip: skipWithoutFixtures }, async () => {
  const name = "planted-llama-bf16";
  const ref = readReference(name);
  const model = Model.open(fixturePath(name));
  const ids: number[] = ref.input_ids,
    V = model.spec.vocab;
  const z = ref.withSuperWeightsZeroed;
  const edits = z.zeroed.map(([layer, row, column]: number[]) => ({
    tensor: `model.layers.${layer}.mlp.down_proj.weight`,
    row,
    column,
    value: 0,
  }));
  const variants = [{}, { overrides: editWeights(model, edits) }];
  const cache = new KvCache(2);
  await forward(model, ids.slice(0, 4), { cache, variants });
  // Variant 0 continues with the reference ids, variant 1 with other tokens, then the reference ids.
  const other = [5, 6];
  const a = await forward(model, [0], { cache, variants, variantIds: [[ids[4]], [other[0]]] });
  const b = await forward(model, [0], { cache, variants, variantIds: [[ids[5]], [other[1]]] });
  assert.ok(toleranceUsed(a.logits!.subarray(0, V), ref.logits[4]) <= 1, "variant 0, step 1");
  assert.ok(toleranceUsed(b.logits!.subarray(0, V), ref.logits[5]) <= 1, "variant 0, step 2");
  // Variant 1 against a full pass of the zeroed model over its own sequence.
  const full = await forward(model, [...ids.slice(0, 4), ...other], { variants: [variants[1]] });
  assert.ok(toleranceUsed(a.logits!.subarray(V), [...full.logits!.subarray(4 * V, 5 * V)]) <= 1, "variant 1, step 1");
  assert.ok(toleranceUsed(b.logits!.subarray(V), [...full.logits!.subarray(5 * V, 6 * V)]) <= 1, "variant 1, step 2");
  // That full pass starts as the reference's zeroed model does.
  assert.ok(
    toleranceUsed(full.logits!.subarray(0, 4 * V), z.logits.slice(0, 4).flat()) <= 1,
    "zeroed model, reference",
  );
  model.close();
});

test(
  "a cache refuses a pass that does not start at the embeddings or has another variant count",
  { skip: skipWithoutFixtures },
  async () => {
    const model = Model.open(fixturePath("llama-f32"));
    await assert.rejects(forward(model, [1, 2], { cache: new KvCache(2) }), /holds 2 variants/);
    await assert.rejects(forward(model, [1, 2], { cache: new KvCache(1), toLayer: 1 }), /every layer/);
    model.close();
  },
);
