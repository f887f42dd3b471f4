// Eval measurements, one per process so that peak RSS is its own: `node dist/bench/child-eval.js <kind> <args…>`.
// Prints one line `BENCH_RESULT {json}` (with maxRSSKB, minor page faults and CPU seconds, as bench/child.ts).
//   perplexity <ckpt> <tokens> <variants>   one perplexity window of `tokens` pseudo-random ids through
//                                           `variants` arms: the baseline and a sweep of the planted super
//                                           weight's scale (variants − 1 factors), all in one pass
//   perplexity-llama3 <dir> <tokens> [layers]   the same, 1 variant, on a Llama-3-shaped checkpoint (vocab
//                                           128256, hidden 4096, GQA 32/8, intermediate 14336; written into
//                                           <dir> once): the 128k-vocabulary head on a long window
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { Model } from "../src/engine/model.js";
import { getBackend } from "../src/engine/matmul.js";
import { headerFor } from "../src/checkpoint/writer.js";
import { toBf16Bits } from "../src/checkpoint/dtype.js";
import { planArms } from "../src/eval/arms.js";
import { ArmRunner } from "../src/eval/runner.js";
import { windowedPerplexity } from "../src/eval/perplexity.js";
import { PLANT, xorshift } from "./synthetic.js";

const now = () => performance.now() / 1000;
const report = (result: Record<string, unknown>) => {
  const u = process.resourceUsage();
  const usage = { maxRSSKB: u.maxRSS, minorPageFaults: u.minorPageFault, userS: u.userCPUTime / 1e6 };
  Object.assign(usage, { systemS: u.systemCPUTime / 1e6 });
  process.stdout.write(`BENCH_RESULT ${JSON.stringify({ ...result, ...usage })}\n`);
};

/** BOS 1, then fixed pseudo-random ids in [3, vocab) (the same as bench/child.ts's prompts). */
function windowIds(tokens: number, vocab: number): number[] {
  const next = xorshift(2024);
  return [1, ...Array.from({ length: tokens - 1 }, () => 3 + (next() % (vocab - 3)))];
}

/** The sweep factors of a `variants`-arm run: the baseline, then these scales of the super weight. */
const FACTORS = [0, 0.5, 2, 3, 1.5, 0.2, 5];

async function perplexity(folder: string, tokens: number, variants: number): Promise<void> {
  const t0 = now();
  const backend = await getBackend();
  const model = Model.open(folder);
  const factors = FACTORS.slice(0, variants - 1);
  if (factors.length !== variants - 1) throw new Error(`at most ${FACTORS.length + 1} variants`);
  // The sweep scales the planted weight, named by a ×1 scale (which itself changes nothing: the baseline's model).
  const weight = { layer: PLANT.layer, row: PLANT.row, column: PLANT.channel };
  const runner = new ArmRunner(
    model,
    planArms(model, factors.length ? { scale: [{ weight, factor: 1 }], sweepScale: factors } : {}).arms,
    16,
  );
  const ids = windowIds(tokens, model.spec.vocab);
  const t1 = now();
  const run = await windowedPerplexity(model, ids, runner, { ctx: tokens, stride: tokens });
  const t2 = now();
  report({
    kind: "perplexity",
    tokens,
    variants: runner.models.length,
    backend: backend.name,
    openS: t1 - t0,
    seconds: t2 - t1,
    tokensPerS: tokens / (t2 - t1),
    variantTokensPerS: (tokens * runner.models.length) / (t2 - t1),
    bytesRead: runner.bytesRead,
    meanNll: run.scores.map((s) => s.meanNll),
  });
  model.close();
}

/** A Llama-3-8B-shaped bf16 checkpoint of `layers` layers (random N(0, ~0.02)-ish weights), written once. */
function ensureLlama3(folder: string, layers: number): void {
  if (existsSync(join(folder, "config.json"))) return;
  mkdirSync(folder, { recursive: true });
  const H = 4096,
    I = 14336,
    V = 128256,
    KV = 1024;
  const specs: { name: string; shape: number[]; ones?: boolean }[] = [
    { name: "model.embed_tokens.weight", shape: [V, H] },
  ];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    specs.push(
      { name: `${p}input_layernorm.weight`, shape: [H], ones: true },
      { name: `${p}post_attention_layernorm.weight`, shape: [H], ones: true },
      { name: `${p}self_attn.q_proj.weight`, shape: [H, H] },
      { name: `${p}self_attn.k_proj.weight`, shape: [KV, H] },
      { name: `${p}self_attn.v_proj.weight`, shape: [KV, H] },
      { name: `${p}self_attn.o_proj.weight`, shape: [H, H] },
      { name: `${p}mlp.gate_proj.weight`, shape: [I, H] },
      { name: `${p}mlp.up_proj.weight`, shape: [I, H] },
      { name: `${p}mlp.down_proj.weight`, shape: [H, I] },
    );
  }
  specs.push({ name: "model.norm.weight", shape: [H], ones: true }, { name: "lm_head.weight", shape: [V, H] });
  const file = join(folder, "model.safetensors"),
    tmp = `${file}.tmp`;
  const fd = openSync(tmp, "w");
  writeSync(fd, headerFor(specs.map((s) => ({ name: s.name, dtype: "BF16", shape: s.shape }))));
  const chunk = new Uint16Array(1 << 22),
    next = xorshift(99);
  // Uniform in ±0.035 (std ≈ 0.02), as bf16 bits; norms 1.
  const levels = Uint16Array.from({ length: 256 }, (_, i) => toBf16Bits(((i + 0.5) / 256 - 0.5) * 0.07));
  for (const s of specs) {
    const count = s.shape.reduce((a, b) => a * b, 1);
    for (let done = 0; done < count; done += chunk.length) {
      const n = Math.min(chunk.length, count - done);
      if (s.ones) chunk.fill(0x3f80, 0, n);
      else
        for (let i = 0; i < n; i += 4) {
          const r = next();
          ((chunk[i] = levels[r & 255]),
            (chunk[i + 1] = levels[(r >>> 8) & 255]),
            (chunk[i + 2] = levels[(r >>> 16) & 255]),
            (chunk[i + 3] = levels[r >>> 24]));
        }
      writeSync(fd, new Uint8Array(chunk.buffer, 0, n * 2));
    }
  }
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, file);
  writeFileSync(
    join(folder, "config.json"),
    JSON.stringify({
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      hidden_size: H,
      intermediate_size: I,
      num_hidden_layers: layers,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      vocab_size: V,
      max_position_embeddings: 8192,
      rms_norm_eps: 1e-5,
      rope_theta: 500000.0,
      tie_word_embeddings: false,
      torch_dtype: "bfloat16",
      bos_token_id: 1,
      eos_token_id: 2,
      hidden_act: "silu",
    }),
  );
}

const [kind, ...args] = process.argv.slice(2);
if (kind === "perplexity") await perplexity(args[0], Number(args[1]), Number(args[2]));
else if (kind === "perplexity-llama3") {
  ensureLlama3(args[0], Number(args[2] ?? 2));
  await perplexity(args[0], Number(args[1]), 1);
} else throw new Error(`unknown measurement kind "${kind}"`);
