// Long windows on large vocabularies stay small: `run --json` on 2048 tokens of a model with a 128k
// vocabulary never builds the [T, vocab] logits (1 GB in float32). The CLI runs in a child process that
// reports its own peak RSS.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeCheckpoint } from "../src/checkpoint/writer.js";
import { repoRoot } from "./fixtures.js";
import { seeded } from "./reference-forward.js";

const root = mkdtempSync(join(tmpdir(), "sw-memory-"));
after(() => rmSync(root, { recursive: true, force: true }));

test("run --json on 2048 tokens with a 128k vocabulary stays under 600 MB peak RSS", (t) => {
  const H = 64,
    I = 128,
    V = 131072,
    T = 2048;
  const config = {
    model_type: "llama",
    hidden_size: H,
    intermediate_size: I,
    num_hidden_layers: 1,
    num_attention_heads: 4,
    num_key_value_heads: 4,
    vocab_size: V,
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: false,
  };
  const rand = seeded(5);
  const m = (name: string, shape: number[], scale = 0.05) => ({
    name,
    dtype: "BF16" as const,
    shape,
    data: rand(
      shape.reduce((a, b) => a * b, 1),
      scale,
    ),
  });
  const ones = (name: string) => ({ name, dtype: "BF16" as const, shape: [H], data: new Float32Array(H).fill(1) });
  const p = "model.layers.0.";
  const folder = join(root, "vocab128k");
  writeCheckpoint(folder, config, [
    m("model.embed_tokens.weight", [V, H], 1),
    ones(p + "input_layernorm.weight"),
    ones(p + "post_attention_layernorm.weight"),
    m(p + "self_attn.q_proj.weight", [H, H]),
    m(p + "self_attn.k_proj.weight", [H, H]),
    m(p + "self_attn.v_proj.weight", [H, H]),
    m(p + "self_attn.o_proj.weight", [H, H]),
    m(p + "mlp.gate_proj.weight", [I, H]),
    m(p + "mlp.up_proj.weight", [I, H]),
    m(p + "mlp.down_proj.weight", [H, I]),
    ones("model.norm.weight"),
    m("lm_head.weight", [V, H], 0.5),
  ]);
  const ids = Array.from({ length: T }, (_, i) => (i * 7919) % V).join(",");
  const bin = join(repoRoot, "dist", "src", "cli", "main.js");
  const wrapper = `process.on("exit", () => process.stderr.write("MAXRSS_KB " + process.resourceUsage().maxRSS + "\\n"));
process.argv = [process.argv[0], ${JSON.stringify(bin)}, ...process.argv.slice(1)];
await import(${JSON.stringify(new URL(`file://${bin}`).href)});`;
  const child = spawnSync(
    process.execPath,
    ["--input-type=module", "-e", wrapper, "run", folder, "--ids", ids, "--json"],
    {
      encoding: "utf8",
      maxBuffer: 64 << 20,
      env: { ...process.env, SUPERWEIGHT_PROGRESS: "0" },
    },
  );
  assert.equal(child.status, 0, child.stderr);
  const out = JSON.parse(child.stdout);
  assert.equal(out.nll.length, T - 1);
  assert.ok(out.nll.every((x: number) => Number.isFinite(x) && x > 0));
  assert.ok(Number.isFinite(out.perplexity));
  const peakMB = Number(/MAXRSS_KB (\d+)/.exec(child.stderr)![1]) / 1024;
  assert.ok(peakMB < 600, `peak RSS ${peakMB.toFixed(0)} MB`);
  t.diagnostic(`peak RSS ${peakMB.toFixed(0)} MB`);
  // What the logits alone would have taken: T·V float32.
  assert.ok((T * V * 4) / 2 ** 20 > 1000);
});
