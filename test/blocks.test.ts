// The block-wise weight reads with tiny blocks: "nk" outputs written block by block (Llama, the LM
// head), GPT-2's "kn" partial products summed over input blocks, and edits landing in a later block.
// The block size is fixed at module load, so it is set before the engine is imported.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { toleranceUsed } from "./tolerance.js";

process.env.SUPERWEIGHT_BLOCK_ELEMENTS = "1000";
const { Model } = await import("../src/engine/model.js");
const { forward } = await import("../src/engine/forward.js");
const { editWeights } = await import("../src/engine/variants.js");
const { MAX_BLOCK_ELEMENTS } = await import("../src/checkpoint/block-buffer.js");

test("the block size comes from SUPERWEIGHT_BLOCK_ELEMENTS", () => assert.equal(MAX_BLOCK_ELEMENTS, 1000));

for (const name of ["llama-f32", "gpt2-f32", "mistral-f16", "phi3-bf16"]) {
  test(
    `${name}: logits with 1000-element weight blocks match the reference`,
    { skip: skipWithoutFixtures },
    async () => {
      const ref = readReference(name);
      const model = Model.open(fixturePath(name));
      const out = await forward(model, ref.input_ids);
      model.close();
      assert.ok(toleranceUsed(out.logits!, ref.logits.flat()) <= 1);
    },
  );
}

test(
  "planted-llama-f16: zeroed super weights (rows 3 and 61, in different blocks) match the reference",
  { skip: skipWithoutFixtures },
  async () => {
    const ref = readReference("planted-llama-f16");
    const model = Model.open(fixturePath("planted-llama-f16"));
    const edits = ref.withSuperWeightsZeroed.zeroed.map(([l, row, column]: number[]) => ({
      tensor: `model.layers.${l}.mlp.down_proj.weight`,
      row,
      column,
      value: 0,
    }));
    const out = await forward(model, ref.input_ids, { variants: [{ overrides: editWeights(model, edits) }] });
    model.close();
    assert.ok(toleranceUsed(out.logits!, ref.withSuperWeightsZeroed.logits.flat()) <= 1);
  },
);
