// A NaN or an infinity found in this process where a checked pass stops: which hook point, and which of the
// weights read there hold such values (the layer's, the prompt tokens' embedding rows, the final norm and head).
// The hardening tests make the same checkpoints fail through the CLI; these see the engine's side of it.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import { NonFiniteError } from "../src/engine/finite.js";
import { tinyTensors, writeTiny } from "./tiny.js";
import { fixturePath, skipWithoutFixtures } from "./fixtures.js";

const root = mkdtempSync(join(tmpdir(), "sw-nonfinite-"));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

/** The tiny Llama with one element of one tensor set to `value`. */
function poisoned(tensor: string, element: number, value: number): string {
  const tensors = tinyTensors();
  tensors.find((t) => t.name === tensor)!.data[element] = value;
  return writeTiny(join(root, `m${counter++}`), { tensors });
}

async function stops(folder: string, ids: number[], message: string, head: object = { targets: ids.map(() => 1) }) {
  const model = Model.open(folder);
  try {
    await assert.rejects(forward(model, ids, { head }), (e: unknown) => {
      assert.ok(e instanceof NonFiniteError, `expected a NonFiniteError, got ${e}`);
      assert.equal(e.message, `${folder}: ${message}. Pass --allow-non-finite to go on anyway`);
      return true;
    });
  } finally {
    model.close();
  }
}

const IDS = [1, 2, 3, 4];

test("a NaN in layer 1's down_proj: found at that layer's down_proj output, the weight named with its element", async () => {
  await stops(
    poisoned("model.layers.1.mlp.down_proj.weight", 3 * 16 + 5, NaN),
    IDS,
    "NaN first appears at layer 1, down_proj_output: model.layers.1.mlp.down_proj.weight holds 1 NaN value (first at [3, 5])",
  );
});

test("a NaN in layer 0's down_proj is named as that weight, not as the embeddings layer 0 starts from", async () => {
  await stops(
    poisoned("model.layers.0.mlp.down_proj.weight", 2 * 16 + 7, NaN),
    IDS,
    "NaN first appears at layer 0, down_proj_output: model.layers.0.mlp.down_proj.weight holds 1 NaN value (first at [2, 7])",
  );
});

test("an infinite embedding row of a prompt token is named; the same row unused by the prompt is not reached", async () => {
  const folder = poisoned("model.embed_tokens.weight", 2 * 8 + 4, Infinity);
  await stops(
    folder,
    IDS,
    "an infinite value first appears at layer 0, layer_input: model.embed_tokens.weight holds 1 infinite value (first at [2, 4])",
  );
  const model = Model.open(folder);
  try {
    const out = await forward(model, [1, 3, 5], { head: { targets: [3, 5, -1] } });
    assert.ok(out.nll![0].subarray(0, 2).every(Number.isFinite));
  } finally {
    model.close();
  }
});

test("a NaN lm_head row or final norm: found at the logits, streamed or built whole", async () => {
  const head = poisoned("lm_head.weight", 7 * 8 + 1, NaN);
  await stops(head, IDS, "NaN first appears at the logits: lm_head.weight holds 1 NaN value (first at [7, 1])");
  await stops(head, IDS, "NaN first appears at the logits: lm_head.weight holds 1 NaN value (first at [7, 1])", {
    logits: true,
  });
  await stops(
    poisoned("model.norm.weight", 3, NaN),
    IDS,
    "NaN first appears at the logits: model.norm.weight holds 1 NaN value (first at [3])",
    { top: { k: 2, positions: [0] } },
  );
});

test("allowNonFinite lets the pass go on and return what it made", async () => {
  const model = Model.open(poisoned("lm_head.weight", 7 * 8 + 1, NaN));
  try {
    const out = await forward(model, IDS, { head: { logits: true }, allowNonFinite: true });
    assert.ok(Number.isNaN(out.logits![7]), "token 0's logit for id 7 is NaN");
    assert.ok(Number.isFinite(out.logits![6]));
    // The streamed head too: every position's sum holds the NaN logit, so every scored NLL is NaN, no error.
    const streamed = await forward(model, IDS, { head: { targets: [2, 3, 4, -1] }, allowNonFinite: true });
    assert.ok(streamed.nll![0].every(Number.isNaN));
  } finally {
    model.close();
  }
});

test(
  "GPT-2: a NaN in the learned positions is named among layer 0's inputs, at the element put there",
  {
    skip: skipWithoutFixtures,
  },
  async () => {
    // A copy of gpt2-f32 with wpe[1, 3] = NaN: position 1's row, which every prompt of two tokens or more reads.
    const folder = join(root, `gpt2-${counter++}`);
    cpSync(fixturePath("gpt2-f32"), folder, { recursive: true });
    const file = join(folder, "model.safetensors");
    const bytes = readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString());
    const wpe = header["transformer.wpe.weight"];
    const at = 8 + n + wpe.data_offsets[0] + 4 * (1 * wpe.shape[1] + 3);
    bytes.writeFloatLE(NaN, at);
    writeFileSync(file, bytes);
    await stops(
      folder,
      [5, 6, 7],
      "NaN first appears at layer 0, layer_input: transformer.wpe.weight holds 1 NaN value (first at [1, 3])",
    );
  },
);

test("with bad values in several places, each stop names only the tensors read there", async () => {
  /** The tiny Llama with NaN at each (tensor, element). */
  const spoiled = (...at: [string, number][]) => {
    const tensors = tinyTensors();
    for (const [name, element] of at) tensors.find((t) => t.name === name)!.data[element] = NaN;
    return writeTiny(join(root, `m${counter++}`), { tensors });
  };
  const layer1 = "model.layers.1.mlp.down_proj.weight";
  // Layer 1's down_proj, layer 0's unused embedding row 7, and the head: at layer 1, only layer 1's weight.
  await stops(
    spoiled([layer1, 3 * 16 + 5], ["model.embed_tokens.weight", 7 * 8], ["lm_head.weight", 2]),
    IDS,
    `NaN first appears at layer 1, down_proj_output: ${layer1} holds 1 NaN value (first at [3, 5])`,
  );
  // A prompt token's embedding row and another row the prompt does not use: only the rows read are counted.
  await stops(
    spoiled(["model.embed_tokens.weight", 2 * 8 + 4], ["model.embed_tokens.weight", 7 * 8 + 1]),
    IDS,
    "NaN first appears at layer 0, layer_input: model.embed_tokens.weight holds 1 NaN value (first at [2, 4])",
  );
});
