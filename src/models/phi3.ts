// Phi-3: the Llama layer with fused projections. qkv_proj rows are [q; k; v]; gate_up_proj rows are
// [gate; up] (gate first). Attention slides over `sliding_window` keys.
import type { Architecture } from "./architecture.js";
import { llamaLike, llamaLikeSpec, llamaTensors, preNormLayer } from "./builders.js";

export const phi3: Architecture = {
  ...llamaLike,
  modelTypes: ["phi3"],
  config(c) {
    const window = c.window("sliding_window");
    return llamaLikeSpec(c, { slidingWindow: () => window });
  },
  tensors(spec) {
    const { hidden: H, intermediate: I, heads, kvHeads, headDim: d } = spec;
    const t = llamaTensors(spec);
    for (let l = 0; l < spec.layers; l++) {
      const p = `model.layers.${l}.`;
      for (const n of ["q_proj", "k_proj", "v_proj"]) t.delete(`${p}self_attn.${n}.weight`);
      for (const n of ["gate_proj", "up_proj"]) t.delete(`${p}mlp.${n}.weight`);
      t.set(`${p}self_attn.qkv_proj.weight`, [(heads + 2 * kvHeads) * d, H]);
      t.set(`${p}mlp.gate_up_proj.weight`, [2 * I, H]);
    }
    return t;
  },
  layer: preNormLayer(
    { proj: { qkv: "self_attn.qkv_proj" }, out: "self_attn.o_proj" },
    { proj: { gateUp: "mlp.gate_up_proj" }, down: "mlp.down_proj" },
  ),
};
