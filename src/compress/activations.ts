// Activation quantization for evaluation (the paper's §4.1, W8A8-style): a hook that fake-quantizes the inputs of
// the down projections — or of every linear layer of the decoder (q/k/v, o_proj, gate/up, down_proj; not the LM
// head) — per tensor (one event's [tokens, in] rows) with min–max round-to-nearest, and can hold the super
// activation out at full precision. The super activation is the down_proj input at (token, channel) of the super
// weight's layer — the channel is the super weight's column, the token the one the scan saw it at (the first token
// in the models the paper studies): a fixed position in each pass. Every linear input is quantized on the engine's
// linear_input point, which gives each projection its own copy: q, k and v each see their input quantized once.
import type { Hook } from "../engine/hooks.js";
import { fakeQuantizeActivations } from "../quant/activations.js";

/** Where a super activation sits: the input of a layer's down projection (`tensor`), at (token, channel). */
export interface ActivationSite {
  layer: number;
  tensor: string;
  token: number;
  channel: number;
}

/** Activation bits the comparison offers (the paper's W8A8 and below). */
export const ACTIVATION_BITS = [8, 6, 4] as const;

/** Which activations are quantized: the down projections' inputs (the paper's experiment), or every linear's. */
export type ActivationInputs = "down_proj" | "linear";

/** Quantize each `inputs` tensor to `bits`, leaving the activations at `sites` exactly as they are. */
export function quantizeActivations(
  bits: number,
  sites: readonly ActivationSite[] = [],
  inputs: ActivationInputs = "down_proj",
): Hook {
  const point = inputs === "down_proj" ? "down_proj_input" : "linear_input";
  return (e) => {
    if (e.point !== point) return;
    const keep: number[] = [];
    for (const s of sites) {
      if (s.layer !== e.layer || s.tensor !== e.tensor || s.channel >= e.width) continue;
      const row = e.positions ? e.positions.indexOf(s.token) : s.token < e.tokens ? s.token : -1;
      if (row >= 0) keep.push(row * e.width + s.channel);
    }
    fakeQuantizeActivations(e.data, bits, [...new Set(keep)]);
  };
}
