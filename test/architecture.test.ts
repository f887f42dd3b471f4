// The engine as a platform: an architecture added in one test file runs without changes to src/engine, and
// a Mixture-of-Experts layer fires its hooks per expert over the tokens routed to it. Each is checked
// against the plain float64 implementation in reference-forward.ts.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeCheckpoint, type TensorToWrite } from "../src/checkpoint/writer.js";
import { Checkpoint } from "../src/checkpoint/checkpoint.js";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import { editWeights } from "../src/engine/variants.js";
import type { HookEvent } from "../src/engine/hooks.js";
import { referenceForward, seeded, type RefConfig } from "./reference-forward.js";
import { toleranceUsed } from "./tolerance.js";
import { toyMoe, toyQkNorm } from "./toy-architectures.js";

const root = mkdtempSync(join(tmpdir(), "sw-arch-"));
after(() => rmSync(root, { recursive: true, force: true }));

const base = {
  hidden_size: 16,
  intermediate_size: 24,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 4,
  num_hidden_layers: 2,
  vocab_size: 23,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: "silu",
  tie_word_embeddings: false,
};

function write(name: string, config: Record<string, unknown>, shapes: Map<string, number[]>, seed: number): string {
  const rand = seeded(seed);
  const tensors: TensorToWrite[] = [...shapes].map(([n, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    // Norm weights near 1; matrices with enough spread that attention and routing are not uniform.
    const data = shape.length === 1 ? rand(size, 0.5).map((v) => 1 + v) : rand(size, 0.6);
    return { name: n, dtype: "F32", shape, data };
  });
  const folder = join(root, name);
  writeCheckpoint(folder, config, tensors);
  return folder;
}

const refWeights = (ckpt: Checkpoint) => ({
  get: (n: string) => ckpt.read(n),
  shape: (n: string) => ckpt.info(n).shape,
  has: (n: string) => ckpt.has(n),
});
const ids = [3, 17, 5, 22, 9, 1, 12];

test("an architecture added in one test file (Llama + per-head q/k RMSNorm before RoPE) matches a hand-written float64 reference", async () => {
  const config = { ...base, model_type: "toy_qknorm" };
  const spec = toyQkNorm.config(new (await import("../src/models/spec.js")).ConfigReader(config, "config.json"));
  const folder = write("qknorm", config, toyQkNorm.tensors(spec), 7);
  const model = Model.fromSource(Checkpoint.open(folder), toyQkNorm);
  const out = await forward(model, ids);
  const ckpt = Checkpoint.open(folder);
  const c: RefConfig = {
    hidden: 16,
    heads: 4,
    kvHeads: 2,
    headDim: 4,
    layers: 2,
    vocab: 23,
    eps: 1e-5,
    theta: 10000,
    tied: false,
    qkNorm: true,
  };
  const ref = referenceForward(c, refWeights(ckpt), ids);
  const withoutNorm = referenceForward({ ...c, qkNorm: false }, refWeights(ckpt), ids);
  ckpt.close();
  model.close();
  const used = toleranceUsed(out.logits!, ref.logits.flat());
  assert.ok(used <= 1, `logits ${used.toFixed(2)}× the tolerance`);
  // The q/k norm matters: leaving it out is far outside the tolerance, so the check above can fail.
  assert.ok(toleranceUsed(out.logits!, withoutNorm.logits.flat()) > 100);
});

test("a two-expert layer fires down_proj_input/output once per expert with its routed tokens; an override of one expert changes only its product", async () => {
  const config = {
    ...base,
    num_hidden_layers: 1,
    model_type: "toy_moe",
    intermediate_size: 12,
    num_experts: 2,
    num_experts_per_tok: 1,
  };
  const spec = toyMoe.config(new (await import("../src/models/spec.js")).ConfigReader(config, "config.json"));
  const folder = write("moe", config, toyMoe.tensors(spec), 11);
  const ckpt = Checkpoint.open(folder);
  const c: RefConfig = {
    hidden: 16,
    heads: 4,
    kvHeads: 2,
    headDim: 4,
    layers: 1,
    vocab: 23,
    eps: 1e-5,
    theta: 10000,
    tied: false,
    experts: { count: 2, topK: 1, renormalize: true },
  };
  const ref = referenceForward(c, refWeights(ckpt), ids);
  ckpt.close();
  assert.ok(ref.routerGap > 1e-3, `routing must not be a near tie (${ref.routerGap})`);
  assert.equal(ref.experts.length, 2, "both experts get tokens");

  const model = Model.fromSource(Checkpoint.open(folder), toyMoe);
  const down1 = "model.layers.0.mlp.experts.1.down_proj.weight";
  const events: HookEvent[] = [];
  const keep = (e: HookEvent) => {
    if (e.point === "down_proj_input" || e.point === "down_proj_output") events.push({ ...e, data: e.data.slice() });
  };
  const out = await forward(model, ids, {
    hooks: [keep],
    variants: [{}, { overrides: editWeights(model, [{ tensor: down1, row: 3, column: 5, value: 0 }]) }],
  });
  model.close();

  for (const variant of [0, 1]) {
    const mine = events.filter((e) => e.variant === variant);
    // Each expert's pair, then the block's own output (no expert, no tensor) with the routing.
    assert.deepEqual(
      mine.map((e) => `${e.point}:${e.expert}`),
      [
        "down_proj_input:0",
        "down_proj_output:0",
        "down_proj_input:1",
        "down_proj_output:1",
        "down_proj_output:undefined",
      ],
    );
    assert.equal(mine[4].tensor, undefined);
    assert.deepEqual(
      Array.from(mine[4].routing!.experts),
      ids.map((_, t) => ref.experts.find((r) => r.positions.includes(t))!.expert),
      "top-1 choice per token",
    );
    for (const r of ref.experts) {
      const input = mine.find((e) => e.point === "down_proj_input" && e.expert === r.expert)!;
      const output = mine.find((e) => e.point === "down_proj_output" && e.expert === r.expert)!;
      assert.deepEqual(input.positions, r.positions, `expert ${r.expert} rows`);
      assert.equal(input.tokens, r.positions.length);
      assert.equal(input.tensor, `model.layers.0.mlp.experts.${r.expert}.down_proj.weight`);
      assert.ok(toleranceUsed(input.data, r.input.flat()) <= 1, `expert ${r.expert} down_proj input`);
      if (variant === 0 || r.expert === 0)
        assert.ok(toleranceUsed(output.data, r.output.flat()) <= 1, `variant ${variant} expert ${r.expert} output`);
    }
  }
  // The override zeroes expert 1's weight [3, 5]: only expert 1's output row 3 moves, by −w·x[:, 5].
  const get = (v: number, e: number) =>
    events.find((x) => x.variant === v && x.point === "down_proj_output" && x.expert === e)!.data;
  assert.deepEqual(get(1, 0), get(0, 0), "expert 0's product is the same in both variants");
  const e1 = ref.experts.find((r) => r.expert === 1)!;
  const w35 = Checkpoint.open(folder).read(down1)[3 * 12 + 5];
  e1.positions.forEach((_, i) => {
    for (let j = 0; j < 16; j++) {
      const moved = get(1, 1)[i * 16 + j] - get(0, 1)[i * 16 + j];
      const want = j === 3 ? -w35 * e1.input[i][5] : 0;
      assert.ok(
        Math.abs(moved - want) <= 1e-5 + 1e-4 * Math.abs(want),
        `row ${i} channel ${j}: moved ${moved}, want ${want}`,
      );
    }
  });
  assert.ok(toleranceUsed(out.logits!.subarray(0, ids.length * 23), ref.logits.flat()) <= 1, "logits");
});
