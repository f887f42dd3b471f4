// Phi-3: the Llama layer with fused projections. qkv_proj rows are [q; k; v]; gate_up_proj rows are
// [gate; up] (gate first). Attention slides over `sliding_window` keys.
import type { Architecture } from "../engine/model.js";
import type { LayerRun } from "../engine/layer.js";
import { addInPlace } from "../engine/kernels.js";
import { attentionBlock, gatedMlp, llama, llamaLikeSpec, llamaTensors } from "./llama.js";

/** Split x[rows, Σwidths] into column blocks [rows, width_i]. */
export function splitColumns(x: Float32Array, rows: number, widths: number[]): Float32Array[] {
  const total = widths.reduce((a, b) => a + b, 0);
  const parts = widths.map((w) => new Float32Array(rows * w));
  for (let r = 0; r < rows; r++) {
    let c = r * total;
    widths.forEach((w, i) => {
      parts[i].set(x.subarray(c, c + w), r * w);
      c += w;
    });
  }
  return parts;
}

async function phi3Layer(run: LayerRun, x: Float32Array): Promise<Float32Array> {
  const { heads, kvHeads, headDim: d, intermediate: I } = run.spec;
  const n1 = run.norm(x, "input_layernorm");
  const [q, k, v] = splitColumns(await run.linear(n1, "self_attn.qkv_proj"), run.rows, [heads * d, kvHeads * d, kvHeads * d]);
  const h = x;
  addInPlace(h, await attentionBlock(run, q, k, v));
  const n2 = run.norm(h, "post_attention_layernorm");
  const [gate, up] = splitColumns(await run.linear(n2, "mlp.gate_up_proj"), run.rows, [I, I]);
  addInPlace(h, await gatedMlp(run, gate, up));
  return h;
}

export const phi3: Architecture = {
  ...llama,
  modelTypes: ["phi3"],
  config: (c) => llamaLikeSpec(c, { slidingWindow: c.optNum("sliding_window") }),
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
  layer: phi3Layer,
};
