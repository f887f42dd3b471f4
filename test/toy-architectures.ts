// Two architectures added the way a contributor adds one, without touching src/engine: each is a few lines
// over the shared builders and layer operations.
import type { Architecture } from "../src/models/architecture.js";
import {
  LLAMA_ATTENTION,
  LLAMA_MLP,
  llamaLike,
  llamaLikeSpec,
  llamaTensors,
  preNormLayer,
} from "../src/models/builders.js";

/** Llama with a per-head RMSNorm on q and k before RoPE (as Qwen3 does). */
export const toyQkNorm: Architecture = {
  ...llamaLike,
  modelTypes: ["toy_qknorm"],
  config: (c) => llamaLikeSpec(c),
  tensors(spec) {
    const t = llamaTensors(spec);
    for (let l = 0; l < spec.layers; l++)
      for (const n of ["q_norm", "k_norm"]) t.set(`model.layers.${l}.self_attn.${n}.weight`, [spec.headDim]);
    return t;
  },
  layer: preNormLayer(
    { ...LLAMA_ATTENTION, qkNorm: { q: "self_attn.q_norm", k: "self_attn.k_norm", perHead: true } },
    LLAMA_MLP,
  ),
};

/** Llama whose MLP is a sparse block of `num_experts` experts, the `num_experts_per_tok` best per token. */
export const toyMoe: Architecture = {
  ...llamaLike,
  modelTypes: ["toy_moe"],
  config(c) {
    const count = c.int("num_experts"),
      intermediate = c.int("intermediate_size");
    return llamaLikeSpec(c, {
      experts: { count, topK: c.int("num_experts_per_tok"), renormalize: true, intermediate, sparse: () => true },
    });
  },
  tensors(spec) {
    const t = llamaTensors(spec);
    const { hidden: H, intermediate: I } = spec;
    for (let l = 0; l < spec.layers; l++) {
      const p = `model.layers.${l}.mlp.`;
      for (const n of ["gate_proj", "up_proj", "down_proj"]) t.delete(`${p}${n}.weight`);
      t.set(`${p}gate.weight`, [spec.experts!.count, H]);
      for (let e = 0; e < spec.experts!.count; e++) {
        t.set(`${p}experts.${e}.gate_proj.weight`, [I, H]);
        t.set(`${p}experts.${e}.up_proj.weight`, [I, H]);
        t.set(`${p}experts.${e}.down_proj.weight`, [H, I]);
      }
    }
    return t;
  },
  downProjections: (spec, l) =>
    Array.from({ length: spec.experts!.count }, (_, e) => ({
      tensor: `model.layers.${l}.mlp.experts.${e}.down_proj.weight`,
      expert: e,
    })),
  async layer(ops, x) {
    const h = ops.add(x, await ops.attention(ops.norm(x, "input_layernorm"), LLAMA_ATTENTION));
    const mlp = (e: number) => ({
      proj: { gate: `mlp.experts.${e}.gate_proj`, up: `mlp.experts.${e}.up_proj` },
      down: `mlp.experts.${e}.down_proj`,
    });
    return ops.add(h, await ops.experts(ops.norm(h, "post_attention_layernorm"), { router: "mlp.gate", expert: mlp }));
  },
};
