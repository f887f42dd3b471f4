// What the sparse Mixture-of-Experts families share: the experts' config, their tensors and down projections,
// and the pre-norm layer whose MLP is a sparse block in the layers `experts.sparse` names (a dense MLP
// elsewhere):
//   h   = x + attn(norm(x));  n = norm(h)
//   out = h + Σ_{e ∈ top-k} w_e · down_e(act(gate_e n) · up_e n)  (+ sigmoid(n · shared_gateᵀ) · shared(n))
// with w = softmax(n · routerᵀ) over all experts, the k largest, divided by their sum when renormalised.
import type { ConfigReader, ExpertsSpec, ModelSpec } from "./spec.js";
import type { Activations, AttentionBlock, ExpertsBlock, LayerOps, MlpBlock } from "./ops.js";
import type { DownProjection } from "./architecture.js";
import { editLayers, LLAMA_MLP, llamaTensors } from "./builders.js";

const gated = (prefix: string): MlpBlock => ({
  proj: { gate: `${prefix}.gate_proj`, up: `${prefix}.up_proj` },
  down: `${prefix}.down_proj`,
});

/** Mixtral: w1 = gate, w3 = up, w2 = the down projection. */
export const MIXTRAL_EXPERTS: ExpertsBlock = {
  router: "block_sparse_moe.gate",
  expert: (e) => {
    const p = `block_sparse_moe.experts.${e}`;
    return { proj: { gate: `${p}.w1`, up: `${p}.w3` }, down: `${p}.w2` };
  },
};

/** Qwen2-MoE, OLMoE, Qwen3-MoE: mlp.gate routes to mlp.experts.N; Qwen2-MoE adds a gated shared expert. */
export function mlpExperts(shared: boolean): ExpertsBlock {
  return {
    router: "mlp.gate",
    expert: (e) => gated(`mlp.experts.${e}`),
    ...(shared ? { shared: { mlp: gated("mlp.shared_expert"), gate: "mlp.shared_expert_gate" } } : {}),
  };
}

/** The experts' spec, checked: at least one expert, 1 ≤ top-k ≤ experts. */
export function expertsSpec(c: ConfigReader, e: ExpertsSpec, countField: string): ExpertsSpec {
  if (e.count === 0) c.fail(countField, "is 0: a sparse block needs experts");
  if (e.topK < 1 || e.topK > e.count)
    c.fail("num_experts_per_tok", `(${e.topK}) must be between 1 and the number of experts (${e.count})`);
  return e;
}

/** Qwen2-MoE / Qwen3-MoE: layer l is sparse iff l ∉ mlp_only_layers and (l + 1) % decoder_sparse_step = 0. */
export function qwenSparseLayers(c: ConfigReader, layers: number): (layer: number) => boolean {
  const dense = new Set(c.intList("mlp_only_layers", layers));
  const step = c.int("decoder_sparse_step", 1);
  if (step === 0) c.fail("decoder_sparse_step", "must be at least 1");
  return (l) => !dense.has(l) && (l + 1) % step === 0;
}

/** Sliding-window attention is not implemented for the Qwen MoE families: refused, not ignored. */
export function refuseSlidingWindow(c: ConfigReader): void {
  if (c.bool("use_sliding_window", false))
    c.fail("use_sliding_window", `is true: sliding windows are not supported for model_type "${c.str("model_type")}"`);
}

function mlpTensors(block: MlpBlock, inner: number, hidden: number): [string, number[]][] {
  const p = block.proj;
  if (!("gate" in p && "up" in p)) throw new Error("an expert is a gated MLP with separate gate and up projections");
  return [
    [p.gate, [inner, hidden]],
    [p.up, [inner, hidden]],
    [block.down, [hidden, inner]],
  ];
}

/** Llama's tensor table with each sparse layer's MLP replaced by the router, the experts and a shared expert. */
export function moeTensors(spec: ModelSpec, block: ExpertsBlock): Map<string, number[]> {
  const ex = spec.experts!,
    H = spec.hidden;
  return editLayers(llamaTensors(spec), spec, (l) => {
    if (!ex.sparse(l)) return [];
    const entries: [string, number[] | null][] = [
      ["mlp.gate_proj", null],
      ["mlp.up_proj", null],
      ["mlp.down_proj", null],
      [block.router, [ex.count, H]],
    ];
    for (let e = 0; e < ex.count; e++) entries.push(...mlpTensors(block.expert(e), ex.intermediate, H));
    if (block.shared)
      entries.push(...mlpTensors(block.shared.mlp, ex.sharedIntermediate!, H), [block.shared.gate, [1, H]]);
    return entries;
  });
}

/** Layer L's down projections: every expert's (then the shared expert's) in a sparse layer, else mlp.down_proj. */
export function moeDownProjections(block: ExpertsBlock) {
  return (spec: ModelSpec, l: number): DownProjection[] => {
    const ex = spec.experts!,
      p = `model.layers.${l}.`;
    if (!ex.sparse(l)) return [{ tensor: `${p}${LLAMA_MLP.down}.weight` }];
    const out: DownProjection[] = Array.from({ length: ex.count }, (_, e) => ({
      tensor: `${p}${block.expert(e).down}.weight`,
      expert: e,
    }));
    if (block.shared) out.push({ tensor: `${p}${block.shared.mlp.down}.weight`, expert: "shared" });
    return out;
  };
}

/** The pre-norm layer with a sparse block where the spec says so, Llama's MLP elsewhere. */
export function moeLayer(attention: AttentionBlock, block: ExpertsBlock) {
  return async (ops: LayerOps, x: Activations): Promise<Activations> => {
    const h = ops.add(x, await ops.attention(ops.norm(x, "input_layernorm"), attention));
    const n = ops.norm(h, "post_attention_layernorm");
    return ops.add(h, ops.spec.experts!.sparse(ops.layer) ? await ops.experts(n, block) : await ops.mlp(n, LLAMA_MLP));
  };
}
