// forward()'s options on a real fixture: stopping before a layer (the residual there is the reference's), going on
// from it with that residual (the logits of a whole pass), several variants starting from one shared residual,
// each variant's own token ids, what the pass read, and every refusal word for word.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import { KvCache } from "../src/engine/kv-cache.js";
import { UserError } from "../src/errors.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { toleranceUsed } from "./tolerance.js";

const opts = { skip: skipWithoutFixtures };

test(
  "llama-f32: a pass stopped before layer 1 leaves the reference's residual; going on from it gives the logits",
  opts,
  async () => {
    const ref = readReference("llama-f32");
    const ids: number[] = ref.input_ids;
    const model = Model.open(fixturePath("llama-f32"));
    try {
      const half = await forward(model, ids, { toLayer: 1 });
      assert.equal(half.logits, undefined, "no head before the last layer");
      assert.ok(toleranceUsed(half.residual, ref.residual[0].flat()) <= 1, "residual after layer 0");
      const rest = await forward(model, ids, { fromLayer: 1, start: half.residual });
      assert.ok(toleranceUsed(rest.logits!, ref.logits.flat()) <= 1, "logits from layer 1 on");
      // One start residual serves two variants; or each variant brings its own.
      const two = await forward(model, ids, { fromLayer: 1, start: half.residual, variants: [{}, {}] });
      assert.equal(two.variants, 2);
      const V = ref.logits[0].length;
      assert.deepEqual([...two.logits!.subarray(ids.length * V)], [...two.logits!.subarray(0, ids.length * V)]);
      const own = new Float32Array(2 * half.residual.length);
      own.set(half.residual, 0);
      own.set(half.residual, half.residual.length);
      const again = await forward(model, ids, { fromLayer: 1, start: own, variants: [{}, {}], head: false });
      assert.equal(again.logits, undefined, "head: false");
      assert.equal(again.residual.length, 2 * ids.length * model.spec.hidden);
      // Each variant its own ids: the second variant's tokens are the first's reversed.
      const reversed = [...ids].reverse();
      const mixed = await forward(model, ids, { variants: [{}, {}], variantIds: [ids, reversed] });
      const alone = await forward(model, reversed);
      assert.deepEqual([...mixed.logits!.subarray(ids.length * V)], [...alone.logits!]);
      // What the pass read: every layer's weights, the embedding rows of the tokens, the norm and the head.
      assert.equal(alone.rowsRead.get("model.embed_tokens.weight"), ids.length);
      assert.equal(alone.rowsRead.get("lm_head.weight"), model.spec.vocab);
      assert.ok(alone.bytesRead > 0);
      assert.equal(half.rowsRead.get("lm_head.weight"), undefined);
    } finally {
      model.close();
    }
  },
);

test("forward refuses what it cannot run, word for word", opts, async () => {
  const model = Model.open(fixturePath("llama-f32"));
  const L = model.spec.layers;
  try {
    const rejects = (p: Promise<unknown>, message: string, type: Function = Error) =>
      assert.rejects(p, (e: unknown) => e instanceof type && (e as Error).message === message);
    await rejects(forward(model, []), "no tokens to run", UserError);
    await rejects(forward(model, [1], { fromLayer: -1 }), `layers [-1, ${L}) outside 0..${L}`, RangeError);
    await rejects(forward(model, [1], { toLayer: L + 1 }), `layers [0, ${L + 1}) outside 0..${L}`, RangeError);
    await rejects(forward(model, [1], { fromLayer: 2, toLayer: 1 }), `layers [2, 1) outside 0..${L}`, RangeError);
    await rejects(
      forward(model, [1], { fromLayer: 1 }),
      "forward: fromLayer > 0 needs the residual entering that layer (start)",
    );
    await rejects(
      forward(model, [1], { fromLayer: 1, start: new Float32Array(3) }),
      "forward: start residual has the wrong size",
    );
    await rejects(
      forward(model, [1], { cache: new KvCache(1), toLayer: 1 }),
      "forward: a KV cache needs every layer run from the embeddings",
    );
    await rejects(
      forward(model, [1], { cache: new KvCache(2) }),
      "forward: the KV cache holds 2 variants, the pass runs 1",
    );
    await rejects(
      forward(model, [1, 2], { variantIds: [[1]] }),
      "forward: variantIds must give 2 tokens for each of 1 variants, from layer 0",
    );
    await rejects(
      forward(model, [1, 2], {
        variantIds: [
          [1, 2],
          [3, 4],
        ],
      }),
      "forward: variantIds must give 2 tokens for each of 1 variants, from layer 0",
    );
    const V = model.spec.vocab;
    await rejects(forward(model, [1, V]), `token id ${V} is outside the vocabulary (0..${V - 1})`, UserError);
    await rejects(forward(model, [-1]), `token id -1 is outside the vocabulary (0..${V - 1})`, UserError);
    await rejects(forward(model, [1.5]), `token id 1.5 is outside the vocabulary (0..${V - 1})`, UserError);
    await rejects(
      forward(model, [1], { variants: [{ overrides: [{ tensor: "nope", key: "x", apply() {} }] }] }),
      `cannot override "nope": no such tensor in ${model.path}`,
      UserError,
    );
  } finally {
    model.close();
  }
});

test("gpt2-f32: learned positions beyond the model's are refused", opts, async () => {
  const model = Model.open(fixturePath("gpt2-f32"));
  try {
    const n = model.spec.maxPositions + 1;
    await assert.rejects(forward(model, new Array(n).fill(1)), {
      message: `${n} tokens exceed the model's ${n - 1} positions`,
    });
  } finally {
    model.close();
  }
});

test(
  "bytesRead: every weight once, the embedding's rows of the prompt only (and whole when it is also the head)",
  opts,
  async () => {
    for (const name of ["llama-f32", "qwen2-bf16"]) {
      const ref = readReference(name);
      const ids: number[] = ref.input_ids;
      const model = Model.open(fixturePath(name));
      try {
        const embedding = model.arch.embedding;
        const tied = model.arch.lmHead(model.spec) === embedding;
        const emb = model.info(embedding);
        let want = (emb.bytes / emb.shape[0]) * ids.length + (tied ? emb.bytes : 0);
        for (const n of model.arch.tensors(model.spec).keys()) if (n !== embedding) want += model.info(n).bytes;
        for (const backend of ["default", "js"]) {
          const { jsBackend } = await import("../src/engine/matmul.js");
          const out = await forward(model, ids, backend === "js" ? { backend: jsBackend } : {});
          assert.equal(out.bytesRead, want, `${name} (${backend} backend, tied ${tied})`);
        }
      } finally {
        model.close();
      }
    }
  },
);

test("token id 0, exactly the model's positions, and a start residual left as the caller gave it", opts, async () => {
  const llama = Model.open(fixturePath("llama-f32"));
  try {
    const out = await forward(llama, [0, 1, 0]);
    assert.ok(out.logits!.every(Number.isFinite), "id 0 is a token like any other");
    const half = await forward(llama, [0, 1, 2], { toLayer: 1 });
    const copy = half.residual.slice();
    await forward(llama, [0, 1, 2], { fromLayer: 1, start: half.residual });
    const two = new Float32Array(2 * copy.length);
    two.set(copy);
    two.set(copy, copy.length);
    const twoCopy = two.slice();
    await forward(llama, [0, 1, 2], { fromLayer: 1, start: two, variants: [{}, {}] });
    assert.deepEqual([...half.residual], [...copy], "a start residual for one variant is not written");
    assert.deepEqual([...two], [...twoCopy], "nor one for every variant");
    // A KV cache from a later layer, and per-variant ids that are not all whole, or from a later layer.
    await assert.rejects(
      forward(llama, [1], { cache: new KvCache(1), fromLayer: 1, start: copy.subarray(0, llama.spec.hidden) }),
      {
        message: "forward: a KV cache needs every layer run from the embeddings",
      },
    );
    await assert.rejects(forward(llama, [1], { cache: new KvCache(1), start: copy.subarray(0, llama.spec.hidden) }), {
      message: "forward: a KV cache needs every layer run from the embeddings",
    });
    await assert.rejects(forward(llama, [1, 2], { variants: [{}, {}], variantIds: [[1, 2], [3]] }), {
      message: "forward: variantIds must give 2 tokens for each of 2 variants, from layer 0",
    });
    await assert.rejects(
      forward(llama, [1, 2, 3], { variants: [{}], variantIds: [[1, 2, 3]], fromLayer: 1, start: copy }),
      { message: "forward: variantIds must give 3 tokens for each of 1 variants, from layer 0" },
    );
    await assert.rejects(forward(llama, [1, 2, 3], { variants: [{}], variantIds: [[1, 2, 3]], start: copy }), {
      message: "forward: variantIds must give 3 tokens for each of 1 variants, from layer 0",
    });
  } finally {
    llama.close();
  }
  const gpt2 = Model.open(fixturePath("gpt2-f32"));
  try {
    const n = gpt2.spec.maxPositions;
    const out = await forward(gpt2, new Array(n).fill(1), { head: { targets: new Array(n).fill(1) } });
    assert.ok(out.nll![0].every(Number.isFinite), `exactly ${n} positions run`);
    // GPT-2 stores its Conv1D weights [in, out], but its embedding and head [vocab, hidden] as every model does.
    assert.equal(gpt2.layout("transformer.h.0.mlp.c_fc.weight"), "kn");
    assert.equal(gpt2.layout("transformer.wte.weight"), "nk");
  } finally {
    gpt2.close();
  }
});
