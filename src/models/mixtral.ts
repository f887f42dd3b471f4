// Mixtral: the Mistral layer with a sparse block, block_sparse_moe: the router `gate` over num_local_experts
// experts (w1 = gate, w3 = up, w2 = down), the top num_experts_per_tok per token, always renormalised.
// Every layer is sparse; a sliding_window (default none) applies to every layer.
import type { Architecture } from "./architecture.js";
import { fullAttentionOnly, LLAMA_ATTENTION, llamaLike, llamaLikeSpec } from "./builders.js";
import { expertsSpec, MIXTRAL_EXPERTS, moeDownProjections, moeLayer, moeTensors } from "./moe.js";

export const mixtral: Architecture = {
  ...llamaLike,
  modelTypes: ["mixtral"],
  config(c) {
    fullAttentionOnly(c, c.int("num_hidden_layers"));
    const window = c.window("sliding_window");
    const experts = expertsSpec(
      c,
      {
        count: c.intEither(["num_local_experts", "num_experts"], 8),
        topK: c.int("num_experts_per_tok", 2),
        renormalize: true,
        intermediate: c.int("intermediate_size"),
        sparse: () => true,
      },
      "num_local_experts",
    );
    return llamaLikeSpec(c, { slidingWindow: () => window, experts }, { kvHeads: 8, ropeTheta: 1e6, normEps: 1e-5 });
  },
  tensors: (spec) => moeTensors(spec, MIXTRAL_EXPERTS),
  downProjections: moeDownProjections(MIXTRAL_EXPERTS),
  layer: moeLayer(LLAMA_ATTENTION, MIXTRAL_EXPERTS),
};
