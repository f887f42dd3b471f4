// GPT-2: learned absolute positions, LayerNorm with weight and bias, fused c_attn, gelu_new MLP, tied
// head. Conv1D weights are stored [in, out]: y = x·W + b. The MLP's c_proj plays down_proj's role.
//   h   = x + attn.c_proj(attn(split(attn.c_attn(ln_1(x)))))
//   out = h + mlp.c_proj(gelu(mlp.c_fc(ln_2(h))))
import type { Architecture } from "./architecture.js";
import type { Activations, LayerOps } from "./ops.js";
import type { ModelSpec } from "./spec.js";

async function gpt2Layer(ops: LayerOps, x: Activations): Promise<Activations> {
  const h = ops.add(x, await ops.attention(ops.norm(x, "ln_1"), { proj: { qkv: "attn.c_attn" }, out: "attn.c_proj" }));
  return ops.add(h, await ops.mlp(ops.norm(h, "ln_2"), { proj: { up: "mlp.c_fc" }, down: "mlp.c_proj" }));
}

export const gpt2: Architecture = {
  modelTypes: ["gpt2"],
  config(c): ModelSpec {
    const hidden = c.size("n_embd");
    const heads = c.size("n_head");
    if (hidden % heads) c.fail("n_head", `(${heads}) must divide n_embd (${hidden})`);
    const vocab = c.size("vocab_size");
    const d = hidden / heads;
    const scaled = c.bool("scale_attn_weights", true);
    const byLayer = c.bool("scale_attn_by_inverse_layer_idx", false);
    return {
      modelType: "gpt2",
      hidden,
      heads,
      kvHeads: heads,
      headDim: d,
      intermediate: c.size("n_inner", 4 * hidden),
      layers: c.size("n_layer"),
      vocab,
      norm: "layernorm",
      normEps: c.eps("layer_norm_epsilon", 1e-5),
      act: c.activation(["activation_function"], "gelu_new"),
      rope: () => undefined,
      maxPositions: c.size("n_positions", 1024),
      tiedEmbeddings: true,
      embedScale: 1,
      attnScale: (layer) => (scaled ? 1 / Math.sqrt(d) : 1) / (byLayer ? layer + 1 : 1),
      slidingWindow: () => undefined,
      bosTokenId: c.bos(vocab),
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
      ["transformer.wte.weight", [V, H]],
      ["transformer.wpe.weight", [P, H]],
      ["transformer.ln_f.weight", [H]],
      ["transformer.ln_f.bias", [H]],
    ]);
    for (let l = 0; l < spec.layers; l++) {
      const p = `transformer.h.${l}.`;
      const shapes: [string, number[]][] = [
        ["ln_1", [H]],
        ["ln_2", [H]],
        ["attn.c_attn", [H, 3 * H]],
        ["attn.c_proj", [H, H]],
        ["mlp.c_fc", [H, I]],
        ["mlp.c_proj", [I, H]],
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
  downProjections: (_spec, l) => [{ tensor: `transformer.h.${l}.mlp.c_proj.weight` }],
  layerPrefix: (l) => `transformer.h.${l}.`,
  layer: gpt2Layer,
};
