// Every fixture's forward pass against its reference (top-level and newer/): logits, every layer's down_proj
// input and output, the residual stream and the NLL, within the tolerance the fixtures' README states; for the
// sparse-MoE fixtures also the router's logits, its top-k choices (exactly) and weights, each routed expert's
// down-projection input/output on exactly its routed tokens, the shared expert and its gate, and a sparse
// layer's block output (the reference's down_proj_output of that layer).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import { nextTokenNll, perplexity } from "../src/engine/nll.js";
import { jsBackend } from "../src/engine/matmul.js";
import { fixtureNames, fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { toleranceUsed } from "./tolerance.js";
import { flat, moeChecks, runRecorded } from "./recorded.js";

for (const name of fixtureNames().length ? fixtureNames() : ["(fixtures)"]) {
  test(`forward matches reference: ${name}`, { skip: skipWithoutFixtures }, async () => {
    const ref = readReference(name);
    const model = Model.open(fixturePath(name));
    try {
      const { abs, rel } = ref.tolerance;
      const out = await runRecorded(model, ref.input_ids);
      const checks: [string, ArrayLike<number>, number[]][] = [["logits", out.logits, flat(ref.logits)]];
      for (let l = 0; l < model.spec.layers; l++) {
        if (ref.down_proj_input[l] !== null)
          checks.push([`layer ${l} down_proj input`, out.downIn[l]!, flat(ref.down_proj_input[l])]);
        checks.push([`layer ${l} down_proj output`, out.downOut[l]!, flat(ref.down_proj_output[l])]);
        checks.push([`layer ${l} residual`, out.residual[l], flat(ref.residual[l])]);
      }
      if (ref.moe) checks.push(...moeChecks(ref, out));
      for (const [what, actual, expected] of checks) {
        assert.ok(actual, `${name} ${what}: not recorded`);
        const used = toleranceUsed(actual, expected, abs, rel);
        assert.ok(used <= 1, `${name} ${what}: ${used.toFixed(2)}× the tolerance`);
      }
      const nll = nextTokenNll(out.logits, ref.input_ids, model.spec.vocab);
      assert.ok(toleranceUsed(nll, ref.nll, 1e-4, 0) <= 1, `${name} nll`);
      assert.ok(
        Math.abs(perplexity(nll) - ref.perplexity) <= 1e-4 * ref.perplexity,
        `${name} perplexity ${perplexity(nll)} vs ${ref.perplexity}`,
      );
      if (ref.llama2c) assert.ok(toleranceUsed(out.logits, flat(ref.llama2c.logits), abs, rel) <= 1, "llama2.c logits");
    } finally {
      model.close();
    }
  });
}

test("the plain TypeScript backend gives the same logits (stories260k)", { skip: skipWithoutFixtures }, async () => {
  const ref = readReference("stories260k");
  const model = Model.open(fixturePath("stories260k"));
  const out = await forward(model, ref.input_ids, { backend: jsBackend });
  assert.ok(toleranceUsed(out.logits!, flat(ref.logits)) <= 1);
  model.close();
});
