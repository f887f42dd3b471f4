// Qwen2-MoE: Qwen2's attention (q/k/v bias, `qkv_bias`) and a sparse block of num_experts experts of
// moe_intermediate_size plus a shared expert (shared_expert_intermediate_size) on every token, scaled by
// sigmoid(x · shared_expert_gateᵀ); norm_topk_prob renormalises the top-k weights. Layers in mlp_only_layers,
// or off the decoder_sparse_step grid, keep a dense MLP of intermediate_size.
import type { Architecture } from "./architecture.js";
import { fullAttentionOnly, LLAMA_ATTENTION, llamaLike, llamaLikeSpec } from "./builders.js";
import {
  expertsSpec,
  mlpExperts,
  moeDownProjections,
  moeLayer,
  moeTensors,
  qwenSparseLayers,
  refuseSlidingWindow,
} from "./moe.js";

const EXPERTS = mlpExperts(true);

export const qwen2Moe: Architecture = {
  ...llamaLike,
  modelTypes: ["qwen2_moe"],
  config(c) {
    const layers = c.int("num_hidden_layers");
    refuseSlidingWindow(c);
    fullAttentionOnly(c, layers);
    const experts = expertsSpec(
      c,
      {
        count: c.intEither(["num_experts", "num_local_experts"], 60),
        topK: c.int("num_experts_per_tok", 4),
        renormalize: c.bool("norm_topk_prob", false),
        intermediate: c.int("moe_intermediate_size", 1408),
        sharedIntermediate: c.int("shared_expert_intermediate_size", 5632),
        sparse: qwenSparseLayers(c, layers),
      },
      "num_experts",
    );
    const biases = { qkv: c.bool("qkv_bias", true), o: false, mlp: false };
    return llamaLikeSpec(c, { biases, experts }, { kvHeads: 16 });
  },
  tensors: (spec) => moeTensors(spec, EXPERTS),
  downProjections: moeDownProjections(EXPERTS),
  layer: moeLayer(LLAMA_ATTENTION, EXPERTS),
};
