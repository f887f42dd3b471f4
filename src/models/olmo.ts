// OLMo "-hf" (allenai/OLMo-*-0724-hf): the Llama layer with LayerNorm that has no weight or bias
// (eps 1e-5, also before the LM head) and q, k, v clamped to ±clip_qkv right after their projections.
import type { Architecture } from "./architecture.js";
import { llamaLike, llamaLikeSpec, llamaTensors } from "./builders.js";

export const olmo: Architecture = {
  ...llamaLike,
  modelTypes: ["olmo"],
  config(c) {
    const attn = c.bool("attention_bias", false);
    return llamaLikeSpec(c, {
      norm: "layernorm_no_affine",
      normEps: 1e-5,
      clipQkv: c.has("clip_qkv") ? c.positive("clip_qkv") : undefined,
      biases: { qkv: attn, o: attn, mlp: false },
    });
  },
  // Parameter-free norms: stored norm weights (some exports write them) are never used, as in transformers.
  sanitize: (name, spec) => (/(layernorm|^model\.norm)\.weight$/.test(name) ? null : llamaLike.sanitize(name, spec)),
  tensors(spec) {
    const t = llamaTensors(spec);
    for (const name of [...t.keys()])
      if (name.endsWith("layernorm.weight") || name === "model.norm.weight") t.delete(name);
    return t;
  },
};
