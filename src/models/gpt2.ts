// GPT-2: learned absolute positions, LayerNorm with weight and bias, fused c_attn, gelu_new MLP, tied
// head. Conv1D weights are stored [in, out]: y = x·W + b. The MLP's c_proj plays down_proj's role.
//   h   = x + attn.c_proj(attn(split(attn.c_attn(ln_1(x)))))
//   out = h + mlp.c_proj(gelu(mlp.c_fc(ln_2(h))))
import type { Architecture } from "../engine/model.js";
import type { LayerRun } from "../engine/layer.js";
import { activate, addInPlace } from "../engine/kernels.js";
import type { ModelSpec } from "./spec.js";
import { splitColumns } from "./phi3.js";

async function gpt2Layer(run: LayerRun, x: Float32Array): Promise<Float32Array> {
  const { hidden: H, intermediate: I } = run.spec;
  const n1 = run.norm(x, "ln_1");
  const [q, k, v] = splitColumns(await run.linear(n1, "attn.c_attn"), run.rows, [H, H, H]);
  const attn = await run.linear(await run.attention(q, k, v), "attn.c_proj");
  run.hook("attn_output", attn, H);
  const h = x;
  addInPlace(h, attn);
  const inner = await run.linear(run.norm(h, "ln_2"), "mlp.c_fc");
  activate(inner, run.spec.act);
  run.hook("down_proj_input", inner, I);
  const out = await run.linear(inner, "mlp.c_proj");
  run.hook("down_proj_output", out, H);
  addInPlace(h, out);
  return h;
}

export const gpt2: Architecture = {
  modelTypes: ["gpt2"],
  config(c): ModelSpec {
    const hidden = c.int("n_embd");
    const heads = c.int("n_head");
    if (hidden % heads) c.fail("n_head", `(${heads}) must divide n_embd (${hidden})`);
    const d = hidden / heads;
    const scaled = c.bool("scale_attn_weights", true);
    const byLayer = c.bool("scale_attn_by_inverse_layer_idx", false);
    return {
      modelType: "gpt2",
      hidden, heads, kvHeads: heads, headDim: d,
      intermediate: c.int("n_inner", 4 * hidden),
      layers: c.int("n_layer"),
      vocab: c.int("vocab_size"),
      norm: "layernorm",
      normEps: c.num("layer_norm_epsilon", 1e-5),
      act: c.activation(["activation_function"], "gelu_new"),
      maxPositions: c.int("n_positions", 1024),
      tiedEmbeddings: true,
      embedScale: 1,
      attnScale: (layer) => (scaled ? 1 / Math.sqrt(d) : 1) / (byLayer ? layer + 1 : 1),
      bosTokenId: c.has("bos_token_id") ? c.int("bos_token_id") : undefined,
      biases: { qkv: true, o: true, mlp: true },
    };
  },
  // OpenAI's own upload has no "transformer." prefix and carries attention-mask buffers.
  sanitize(name) {
    if (/\.attn\.(masked_)?bias$/.test(name) || name === "lm_head.weight") return null;
    return name.startsWith("transformer.") ? name : `transformer.${name}`;
  },
  tensors(spec) {
    const { hidden: H, intermediate: I, vocab: V, maxPositions: P } = spec;
    const t = new Map<string, number[]>([
      ["transformer.wte.weight", [V, H]], ["transformer.wpe.weight", [P, H]],
      ["transformer.ln_f.weight", [H]], ["transformer.ln_f.bias", [H]],
    ]);
    for (let l = 0; l < spec.layers; l++) {
      const p = `transformer.h.${l}.`;
      const shapes: [string, number[]][] = [
        ["ln_1", [H]], ["ln_2", [H]], ["attn.c_attn", [H, 3 * H]], ["attn.c_proj", [H, H]], ["mlp.c_fc", [H, I]], ["mlp.c_proj", [I, H]],
      ];
      for (const [name, shape] of shapes) {
        t.set(`${p}${name}.weight`, shape);
        t.set(`${p}${name}.bias`, [shape[shape.length - 1]]);
      }
    }
    return t;
  },
  layout: "kn",
  embedding: "transformer.wte.weight",
  positionEmbedding: "transformer.wpe.weight",
  finalNorm: "transformer.ln_f",
  lmHead: () => "transformer.wte.weight",
  downProj: (l) => `transformer.h.${l}.mlp.c_proj.weight`,
  layerPrefix: (l) => `transformer.h.${l}.`,
  layer: gpt2Layer,
};
