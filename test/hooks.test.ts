// Hooks observe and change the forward pass: writing into a hook's tensor changes what follows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import type { HookEvent } from "../src/engine/hooks.js";
import { editWeights } from "../src/engine/variants.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { toleranceUsed } from "./tolerance.js";

test(
  "every hook point fires once per layer (linear_input once per projection, logits once), in order",
  { skip: skipWithoutFixtures },
  async () => {
    const model = Model.open(fixturePath("llama-f32"));
    const seen: string[] = [];
    await forward(model, [1, 5, 9], { hooks: [(e) => seen.push(`${e.layer}:${e.point}:${e.tokens}x${e.width}`)] });
    model.close();
    const { hidden: H, intermediate: I, layers: L, vocab: V, heads, headDim } = model.spec;
    const linear = (l: number, width: number, n = 1) => Array<string>(n).fill(`${l}:linear_input:3x${width}`);
    const perLayer = (l: number) => [
      `${l}:layer_input:3x${H}`,
      ...linear(l, H, 3),
      ...linear(l, heads * headDim),
      `${l}:attn_output:3x${H}`,
      ...linear(l, H, 2),
      `${l}:down_proj_input:3x${I}`,
      ...linear(l, I),
      `${l}:down_proj_output:3x${H}`,
      `${l}:layer_output:3x${H}`,
    ];
    assert.deepEqual(seen, [...Array.from({ length: L }, (_, l) => perLayer(l)).flat(), `${L}:logits:3x${V}`]);
  },
);

test(
  "restoring the super activation alone: a down_proj_output hook puts back what the zeroed weight wrote",
  { skip: skipWithoutFixtures },
  async () => {
    const ref = readReference("planted-llama-bf16");
    const [sw] = ref.expectedSuperWeights; // [1, 11, 37]: output 419.9 at token 0, row 11
    const model = Model.open(fixturePath("planted-llama-bf16"));
    const edits = [{ tensor: sw.tensor, row: sw.row, column: sw.column, value: 0 }];
    const residualAfter = new Map<string, number>();
    let input: Float32Array | undefined;
    const restore = (e: HookEvent) => {
      if (e.point === "down_proj_input" && e.layer === sw.layer) input = e.data.slice();
      // What the zeroed weight would have added: w · x[t, column] at row, for every token.
      if (e.point === "down_proj_output" && e.layer === sw.layer)
        for (let t = 0; t < e.tokens; t++)
          e.data[t * e.width + sw.row] += sw.value * input![t * model.spec.intermediate + sw.column];
      if (e.point === "layer_output" && e.layer === sw.layer)
        residualAfter.set("restored", e.data[sw.token * e.width + sw.row]);
    };
    const overrides = editWeights(model, edits);
    const zeroedOnly = await forward(model, ref.input_ids, { variants: [{ overrides }] });
    const restored = await forward(model, ref.input_ids, { variants: [{ overrides }], hooks: [restore] });
    model.close();
    // The full model's residual at (token 0, channel 11) after layer 1 comes back.
    const full = ref.superActivations[0].residualByLayer[sw.layer];
    assert.ok(Math.abs(residualAfter.get("restored")! - full) < 0.05, `${residualAfter.get("restored")} vs ${full}`);
    // ...and with it the full model's logits (the product is added in another order: the fixtures' tolerance).
    assert.ok(toleranceUsed(restored.logits!, ref.logits.flat()) <= 1, "restored logits");
    assert.ok(toleranceUsed(zeroedOnly.logits!, ref.logits.flat()) > 100, "the zeroed model differs");
  },
);

test("a logits hook changes the returned logits", { skip: skipWithoutFixtures }, async () => {
  const model = Model.open(fixturePath("llama-f32"));
  const out = await forward(model, [1, 5], {
    hooks: [
      (e) => {
        if (e.point === "logits") e.data.fill(3);
      },
    ],
  });
  model.close();
  assert.ok(out.logits!.every((v) => v === 3));
});
