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

/** Float64 log-softmax of one reference logits row. */
function logSoftmax(row: number[]): number[] {
  const max = Math.max(...row);
  const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
  return row.map((v) => v - lse);
}

for (const name of ["llama-f32", "gemma-bf16", "newer/gemma2-f32"]) {
  test(
    `${name}: the streamed head over 1000-element vocabulary blocks — NLL, top-k, chosen positions' logits`,
    { skip: skipWithoutFixtures },
    async () => {
      const ref = readReference(name);
      const ids: number[] = ref.input_ids;
      const T = ids.length;
      const V = ref.logits[0].length;
      const model = Model.open(fixturePath(name));
      try {
        // Gemma2 caps its final logits: the cap is applied block by block too.
        const targets = ids.map((_, t) => (t + 1 < T ? ids[t + 1] : -1));
        const out = await forward(model, ids, {
          head: { targets, top: { k: 4, positions: [T - 1, 0] }, logitsAt: [1, T - 1] },
        });
        assert.equal(out.logits, undefined, "no full logits were asked for");
        const nll = out.nll![0];
        for (let t = 0; t < T - 1; t++) {
          const want = -logSoftmax(ref.logits[t])[ids[t + 1]];
          assert.ok(Math.abs(nll[t] - want) <= 1e-4 * (1 + Math.abs(want)), `${name} NLL[${t}] ${nll[t]} vs ${want}`);
        }
        assert.ok(Number.isNaN(nll[T - 1]), "the last position has no target");
        for (const [i, t] of [T - 1, 0].entries()) {
          const order = ref.logits[t]
            .map((v: number, id: number) => [v, id])
            .sort((a: number[], b: number[]) => b[0] - a[0] || a[1] - b[1]);
          const lp = logSoftmax(ref.logits[t]);
          const got = out.top![0][i];
          assert.deepEqual(
            got.map((g) => g.id),
            order.slice(0, 4).map((o: number[]) => o[1]),
            `${name} top-4 at ${t}`,
          );
          got.forEach((g) => assert.ok(Math.abs(Math.log(g.prob) - lp[g.id]) <= 1e-4, `prob of ${g.id} at ${t}`));
        }
        const at = out.logitsAt![0];
        assert.equal(at.length, 2 * V);
        assert.ok(toleranceUsed(at.subarray(0, V), ref.logits[1]) <= 1, "logits at position 1");
        assert.ok(toleranceUsed(at.subarray(V), ref.logits[T - 1]) <= 1, "logits at the last position");
      } finally {
        model.close();
      }
    },
  );
}

test("the streamed head keeps a running maximum: logits near ±1000 across 24 vocabulary blocks still give finite, exact NLL and top-k", async () => {
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { TINY_CONFIG, tinyTensors, writeTiny } = await import("./tiny.js");
  const config = { ...TINY_CONFIG, vocab_size: 600, max_position_embeddings: 64 };
  const tensors = tinyTensors(config);
  const head = tensors.find((t) => t.name === "lm_head.weight")!;
  for (let i = 0; i < head.data.length; i++) head.data[i] *= 400; // exp() of such logits overflows float64
  const dir = mkdtempSync(join(tmpdir(), "sw-big-logits-"));
  try {
    const model = Model.open(writeTiny(dir, { config, tensors }));
    const ids = Array.from({ length: 40 }, (_, t) => (t * 37 + 5) % 600);
    const targets = ids.map((_, t) => (t + 1 < ids.length ? ids[t + 1] : -1));
    const whole = await forward(model, ids, { head: { logits: true } });
    const streamed = await forward(model, ids, { head: { targets, top: { k: 3, positions: [0, 39] } } });
    model.close();
    const V = 600;
    let largest = 0;
    for (let t = 0; t < ids.length - 1; t++) {
      const row = Array.from(whole.logits!.subarray(t * V, (t + 1) * V));
      largest = Math.max(largest, ...row.map(Math.abs));
      const max = Math.max(...row);
      const want = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0)) - row[ids[t + 1]];
      const got = streamed.nll![0][t];
      assert.ok(Number.isFinite(got) && Math.abs(got - want) <= 1e-3 * (1 + want), `NLL[${t}] ${got} vs ${want}`);
    }
    assert.ok(largest > 800, `logits reach ${largest}`);
    for (const [i, t] of [0, 39].entries()) {
      const row = Array.from(whole.logits!.subarray(t * V, (t + 1) * V));
      const order = row.map((v, id) => [v, id]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      assert.deepEqual(
        streamed.top![0][i].map((x) => x.id),
        order.slice(0, 3).map((o) => o[1]),
      );
      assert.ok(streamed.top![0][i].every((x) => Number.isFinite(x.prob)));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  "bytes read over 1000-element blocks: every weight once, as the file's tensor sizes add up",
  {
    skip: skipWithoutFixtures,
  },
  async () => {
    const { readFileSync } = await import("node:fs");
    const name = "llama-f32";
    const file = readFileSync(`${fixturePath(name)}/model.safetensors`);
    const header = JSON.parse(file.subarray(8, 8 + Number(file.readBigUInt64LE(0))).toString());
    const size = (t: string) => header[t].data_offsets[1] - header[t].data_offsets[0];
    const ids: number[] = readReference(name).input_ids;
    const model = Model.open(fixturePath(name));
    try {
      const out = await forward(model, ids);
      const embedding = "model.embed_tokens.weight";
      const rowBytes = size(embedding) / header[embedding].shape[0];
      const weights = Object.keys(header).filter((t) => t !== "__metadata__" && t !== embedding);
      assert.equal(out.bytesRead, weights.reduce((s, t) => s + size(t), 0) + ids.length * rowBytes);
    } finally {
      model.close();
    }
  },
);

test(
  "an override that needs blocks of two rows gets them (rows of 184, blocks of 1000 elements)",
  {
    skip: skipWithoutFixtures,
  },
  async () => {
    // llama-f32's down projections are [72, 184]: 5 rows fit a block, an alignment of 368 elements makes it 4.
    const model = Model.open(fixturePath("llama-f32"));
    try {
      const tensor = "model.layers.1.mlp.down_proj.weight";
      const seen: [number, number][] = [];
      const aligned = {
        tensor,
        key: "pairs",
        alignment: 2 * 184,
        apply: (w: Float32Array, first: number) => void seen.push([first, w.length]),
      };
      const ids: number[] = readReference("llama-f32").input_ids;
      const plain = await forward(model, ids);
      const out = await forward(model, ids, { variants: [{}, { overrides: [aligned] }] });
      assert.deepEqual(
        seen,
        [...Array(18).keys()].map((b) => [b * 736, 736]),
      );
      // It changed nothing, so both variants give the plain logits.
      const n = plain.logits!.length;
      assert.deepEqual([...out.logits!.subarray(n)], [...plain.logits!]);
    } finally {
      model.close();
    }
  },
);

test(
  "three variants, two with the same edit: one product for the pair, each row where it belongs",
  {
    skip: skipWithoutFixtures,
  },
  async () => {
    const ref = readReference("planted-llama-f16");
    const model = Model.open(fixturePath("planted-llama-f16"));
    try {
      const edits = ref.withSuperWeightsZeroed.zeroed.map(([l, row, column]: number[]) => ({
        tensor: `model.layers.${l}.mlp.down_proj.weight`,
        row,
        column,
        value: 0,
      }));
      const zeroed = { overrides: editWeights(model, edits) };
      const out = await forward(model, ref.input_ids, { variants: [{}, zeroed, zeroed] });
      const n = out.logits!.length / 3;
      assert.ok(toleranceUsed(out.logits!.subarray(0, n), ref.logits.flat()) <= 1, "variant 0: the model");
      for (const v of [1, 2])
        assert.ok(
          toleranceUsed(out.logits!.subarray(v * n, (v + 1) * n), ref.withSuperWeightsZeroed.logits.flat()) <= 1,
          `variant ${v}: zeroed`,
        );
    } finally {
      model.close();
    }
  },
);
