// Named points of the forward pass where a hook sees a tensor and may change it in place. The engine fires
// every point itself, the same for every architecture:
//
//   layer_input       the residual entering layer L          [T, hidden]
//   linear_input      the input of one of the layer's linear projections (q/k/v, o_proj, gate/up, down_proj,
//                     a router), as that projection alone sees it: a copy, so writing into it changes only
//                     that product; `tensor` names the weight. Fired only when the pass has hooks (the copy
//                     costs nothing otherwise) and not checked for NaN: every point downstream is.  [rows, in]
//   attn_output       the attention block's output (o_proj)  [T, hidden]
//   down_proj_input   the input of a down projection (mlp.down_proj; GPT-2: mlp.c_proj; an expert's w2 /
//                     down_proj), act(gate)·up               [rows, its intermediate]
//   down_proj_output  its output, before the residual add (and, for an expert, before its routing weight)
//   layer_output      the residual leaving layer L           [T, hidden]
//   logits            the final logits (layer = number of layers), when the caller asks for them   [T, vocab]
//
// A dense layer's down projection sees every token (rows = T). In a Mixture-of-Experts layer each expert fires
// its own pair of events with only the tokens routed to it: `positions` says which, `routingWeights` with what
// weight; an edited variant may route differently, so each variant's event carries its own rows. After its
// experts, a sparse layer fires one more down_proj_output, without `tensor` or `expert`: the whole block's
// output Σ weight·expert output (+ gate·shared expert) [T, hidden] — what the layer adds to the residual, the
// role a dense layer's down_proj output plays — with `routing` (what the router chose; changing it has no
// effect). So in every layer the down_proj_output event with no `expert` is what the MLP adds.

export type HookPoint =
  "layer_input" | "linear_input" | "attn_output" | "down_proj_input" | "down_proj_output" | "layer_output" | "logits";
export const HOOK_POINTS: readonly HookPoint[] = [
  "layer_input",
  "linear_input",
  "attn_output",
  "down_proj_input",
  "down_proj_output",
  "layer_output",
  "logits",
];

export interface HookEvent {
  point: HookPoint;
  layer: number;
  /** Which variant of the batch (see forward's `variants`), 0 for a plain pass. */
  variant: number;
  /** Row-major [tokens, width]; writing into it changes what the model computes next. */
  data: Float32Array;
  /** Rows in `data`. */
  tokens: number;
  width: number;
  /** down_proj_*, linear_input: the projection's weight tensor. */
  tensor?: string;
  /** down_proj_*: the expert, in a Mixture-of-Experts layer (a shared expert is "shared"). */
  expert?: number | "shared";
  /** Token position of each row of `data`, when not all of 0..T−1 (an expert's routed tokens). */
  positions?: readonly number[];
  /** The routing weight of each row (an expert's tokens; a shared expert's rows: its sigmoid gate). */
  routingWeights?: Float32Array;
  /** A sparse block's output event: how its tokens were routed. */
  routing?: Routing;
}

/** A sparse block's routing of T tokens over E experts, the k best each. */
export interface Routing {
  /** Router logits x·routerᵀ, [T, E]. */
  logits: Float32Array;
  /** The chosen experts of each token, by descending probability, [T, k]. */
  experts: Int32Array;
  /** The weights applied to them (renormalised when the model does), [T, k]. */
  weights: Float32Array;
  /** sigmoid(x·shared_expert_gateᵀ) of each token, when the block has a shared expert, [T]. */
  sharedGate?: Float32Array;
}

export type Hook = (e: HookEvent) => void;
