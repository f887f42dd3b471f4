// Named points of the forward pass where a hook sees a tensor and may change it in place.
//
//   layer_input       the residual entering layer L          [T, hidden]
//   attn_output       the attention block's output (o_proj)  [T, hidden]
//   down_proj_input   the input of mlp.down_proj (GPT-2: mlp.c_proj), act(gate)·up   [T, intermediate]
//   down_proj_output  its output, before the residual add    [T, hidden]
//   layer_output      the residual leaving layer L           [T, hidden]
//   logits            the final logits (layer = number of layers)   [T, vocab]

export type HookPoint = "layer_input" | "attn_output" | "down_proj_input" | "down_proj_output" | "layer_output" | "logits";
export const HOOK_POINTS: readonly HookPoint[] = ["layer_input", "attn_output", "down_proj_input", "down_proj_output", "layer_output", "logits"];

export interface HookEvent {
  point: HookPoint;
  layer: number;
  /** Which variant of the batch (see forward's `variants`), 0 for a plain pass. */
  variant: number;
  /** Row-major [tokens, width]; writing into it changes what the model computes next. */
  data: Float32Array;
  tokens: number;
  width: number;
}

export type Hook = (e: HookEvent) => void;

/** One weight of a stored tensor set to a new value, by its stored index [row, column]. */
export interface WeightEdit {
  tensor: string;
  row: number;
  column: number;
  value: number;
}

/** A variant of the model run in the same pass: same tokens, some weights edited. */
export interface Variant {
  edits?: readonly WeightEdit[];
}
