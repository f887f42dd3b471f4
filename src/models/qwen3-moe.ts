// Qwen3-MoE: Qwen3's attention (per-head q/k RMSNorm before RoPE, attention_bias on q, k, v, o) with
// Qwen2-MoE's routing without a shared expert: num_experts experts of moe_intermediate_size, norm_topk_prob,
// dense MLPs (intermediate_size) in mlp_only_layers and off the decoder_sparse_step grid.
import type { Architecture } from "./architecture.js";
import {
  attentionBiases,
  editLayers,
  fullAttentionOnly,
  llamaLike,
  llamaLikeSpec,
  qkNormAttention,
  qkNormTensors,
} from "./builders.js";
import {
  expertsSpec,
  mlpExperts,
  moeDownProjections,
  moeLayer,
  moeTensors,
  qwenSparseLayers,
  refuseSlidingWindow,
} from "./moe.js";

const EXPERTS = mlpExperts(false);

export const qwen3Moe: Architecture = {
  ...llamaLike,
  modelTypes: ["qwen3_moe"],
  config(c) {
    const layers = c.int("num_hidden_layers");
    refuseSlidingWindow(c);
    fullAttentionOnly(c, layers);
    const experts = expertsSpec(
      c,
      {
        count: c.intEither(["num_experts", "num_local_experts"], 128),
        topK: c.int("num_experts_per_tok", 8),
        renormalize: c.bool("norm_topk_prob", false),
        intermediate: c.int("moe_intermediate_size", 768),
        sparse: qwenSparseLayers(c, layers),
      },
      "num_experts",
    );
    return llamaLikeSpec(c, { biases: attentionBiases(c), experts }, { kvHeads: 4 });
  },
  tensors: (spec) => editLayers(moeTensors(spec, EXPERTS), spec, () => qkNormTensors(spec, true)),
  downProjections: moeDownProjections(EXPERTS),
  layer: moeLayer(qkNormAttention(true), EXPERTS),
};
