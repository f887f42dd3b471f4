// Every fixture's forward pass against its reference: logits, every layer's down_proj input and
// output, the residual stream and the NLL, within the tolerance the fixtures' README states.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import type { HookEvent } from "../src/engine/hooks.js";
import { nextTokenNll, perplexity } from "../src/eval/nll.js";
import { jsBackend } from "../src/engine/matmul.js";
import { fixtureNames, fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { toleranceUsed } from "./tolerance.js";

/** Run a model and record per-layer down_proj input/output and output residual. */
async function runRecorded(model: Model, ids: number[], options: Parameters<typeof forward>[2] = {}) {
  const layers = model.spec.layers;
  const rec = { downIn: new Array<Float32Array>(layers), downOut: new Array<Float32Array>(layers), residual: new Array<Float32Array>(layers) };
  const hook = (e: HookEvent) => {
    if (e.variant !== 0) return;
    if (e.point === "down_proj_input") rec.downIn[e.layer] = e.data.slice();
    if (e.point === "down_proj_output") rec.downOut[e.layer] = e.data.slice();
    if (e.point === "layer_output") rec.residual[e.layer] = e.data.slice();
  };
  const out = await forward(model, ids, { ...options, hooks: [hook] });
  return { ...rec, logits: out.logits! };
}

const flat = (a: number[][] | number[][][]): number[] => (a as any).flat(2);

for (const name of fixtureNames().length ? fixtureNames() : ["(fixtures)"]) {
  test(`forward matches reference: ${name}`, { skip: skipWithoutFixtures }, async () => {
    const ref = readReference(name);
    const model = Model.open(fixturePath(name));
    try {
      const { abs, rel } = ref.tolerance;
      const out = await runRecorded(model, ref.input_ids);
      const checks: [string, ArrayLike<number>, number[]][] = [["logits", out.logits, flat(ref.logits)]];
      for (let l = 0; l < model.spec.layers; l++) {
        checks.push([`layer ${l} down_proj input`, out.downIn[l], flat(ref.down_proj_input[l])]);
        checks.push([`layer ${l} down_proj output`, out.downOut[l], flat(ref.down_proj_output[l])]);
        checks.push([`layer ${l} residual`, out.residual[l], flat(ref.residual[l])]);
      }
      for (const [what, actual, expected] of checks) {
        const used = toleranceUsed(actual, expected, abs, rel);
        assert.ok(used <= 1, `${name} ${what}: ${used.toFixed(2)}× the tolerance`);
      }
      const nll = nextTokenNll(out.logits, ref.input_ids, model.spec.vocab);
      assert.ok(toleranceUsed(nll, ref.nll, 1e-4, 0) <= 1, `${name} nll`);
      assert.ok(Math.abs(perplexity(nll) - ref.perplexity) <= 1e-4 * ref.perplexity, `${name} perplexity ${perplexity(nll)} vs ${ref.perplexity}`);
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
