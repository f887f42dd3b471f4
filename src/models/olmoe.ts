// OLMoE: the Llama layout with q_norm / k_norm over the whole q and k projections, then clip_qkv on q, k and v
// (after the norms), and a sparse block of num_experts experts in every layer; the top-k weights are
// renormalised only with norm_topk_prob. attention_bias puts biases on q, k, v and o.
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
import { expertsSpec, mlpExperts, moeDownProjections, moeLayer, moeTensors } from "./moe.js";

const EXPERTS = mlpExperts(false);

export const olmoe: Architecture = {
  ...llamaLike,
  modelTypes: ["olmoe"],
  config(c) {
    fullAttentionOnly(c, c.int("num_hidden_layers"));
    const experts = expertsSpec(
      c,
      {
        count: c.intEither(["num_experts", "num_local_experts"], 64),
        topK: c.int("num_experts_per_tok", 8),
        renormalize: c.bool("norm_topk_prob", false),
        intermediate: c.int("intermediate_size"),
        sparse: () => true,
      },
      "num_experts",
    );
    const clipQkv = c.positiveOrNull("clip_qkv");
    return llamaLikeSpec(c, { clipQkv, biases: attentionBiases(c), experts }, { normEps: 1e-5 });
  },
  tensors: (spec) => editLayers(moeTensors(spec, EXPERTS), spec, () => qkNormTensors(spec, false)),
  downProjections: moeDownProjections(EXPERTS),
  layer: moeLayer(qkNormAttention(false), EXPERTS),
};
