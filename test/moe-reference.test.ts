// Qwen3-MoE, which has no fixture: a small random checkpoint through the engine against the plain float64
// implementation in reference-forward.ts (Qwen3's per-head q/k norm, head_dim ≠ hidden/heads, a dense layer
// from mlp_only_layers, top-2 of 4 experts with and without norm_topk_prob), every routed expert's rows too.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeCheckpoint } from "../src/checkpoint/writer.js";
import { Checkpoint } from "../src/checkpoint/checkpoint.js";
import { Model } from "../src/engine/model.js";
import { ConfigReader } from "../src/models/spec.js";
import { qwen3Moe } from "../src/models/qwen3-moe.js";
import { referenceForward, seeded, type RefConfig } from "./reference-forward.js";
import { runRecorded } from "./recorded.js";
import { toleranceUsed } from "./tolerance.js";

const root = mkdtempSync(join(tmpdir(), "sw-qwen3moe-"));
after(() => rmSync(root, { recursive: true, force: true }));

const config = {
  model_type: "qwen3_moe",
  hidden_size: 16,
  intermediate_size: 20,
  moe_intermediate_size: 12,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 8,
  num_hidden_layers: 3,
  vocab_size: 29,
  num_experts: 4,
  num_experts_per_tok: 2,
  mlp_only_layers: [1],
  decoder_sparse_step: 1,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: false,
};
const ids = [3, 17, 5, 22, 9, 1, 12, 28, 4];

function write(normTopK: boolean): string {
  const raw = { ...config, norm_topk_prob: normTopK };
  const spec = qwen3Moe.config(new ConfigReader(raw, "config.json"));
  const rand = seeded(5);
  const folder = join(root, `norm-${normTopK}`);
  writeCheckpoint(
    folder,
    raw,
    [...qwen3Moe.tensors(spec)].map(([name, shape]) => {
      const n = shape.reduce((a, b) => a * b, 1);
      return {
        name,
        dtype: "F32" as const,
        shape,
        data: shape.length === 1 ? rand(n, 0.5).map((v) => 1 + v) : rand(n, 0.6),
      };
    }),
  );
  return folder;
}

for (const normTopK of [true, false]) {
  test(`qwen3_moe (norm_topk_prob ${normTopK}) matches a float64 reference: logits and every routed expert's rows`, async () => {
    const folder = write(normTopK);
    const ckpt = Checkpoint.open(folder);
    const weights = {
      get: (n: string) => ckpt.read(n),
      shape: (n: string) => ckpt.info(n).shape,
      has: (n: string) => ckpt.has(n),
    };
    const c: RefConfig = {
      hidden: 16,
      heads: 4,
      kvHeads: 2,
      headDim: 8,
      layers: 3,
      vocab: 29,
      eps: 1e-6,
      theta: 10000,
      tied: false,
      qkNorm: true,
      experts: { count: 4, topK: 2, renormalize: normTopK, sparse: (l) => l !== 1 },
    };
    const ref = referenceForward(c, weights, ids);
    const flipped = referenceForward({ ...c, experts: { ...c.experts!, renormalize: !normTopK } }, weights, ids);
    ckpt.close();
    assert.ok(ref.routerGap > 1e-3, `routing is not a near tie (${ref.routerGap})`);

    const model = Model.open(folder);
    const out = await runRecorded(model, ids);
    model.close();
    assert.ok(toleranceUsed(out.logits, ref.logits.flat()) <= 1, "logits");
    assert.ok(toleranceUsed(out.logits, flipped.logits.flat()) > 100, "norm_topk_prob matters");
    assert.equal(out.routing[1], undefined, "layer 1 is dense (mlp_only_layers)");
    assert.ok(out.downIn[1], "...and fires a dense down_proj input");
    assert.deepEqual([...out.experts.keys()].sort(), ref.experts.map((r) => `${r.layer}:${r.expert}`).sort());
    for (const r of ref.experts) {
      const got = out.experts.get(`${r.layer}:${r.expert}`)!;
      assert.deepEqual(got.positions, r.positions, `layer ${r.layer} expert ${r.expert} tokens`);
      assert.ok(toleranceUsed(got.input!, r.input.flat()) <= 1, `layer ${r.layer} expert ${r.expert} input`);
      assert.ok(toleranceUsed(got.output!, r.output.flat()) <= 1, `layer ${r.layer} expert ${r.expert} output`);
    }
  });
}
