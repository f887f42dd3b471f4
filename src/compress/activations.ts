// Activation quantization for evaluation (the paper's §4.1, W8A8-style): a hook that fake-quantizes every down
// projection's input, per tensor (one event's [tokens, intermediate] rows) with min–max round-to-nearest, and can
// hold the super activation out at full precision. The super activation is the down_proj input at (token,
// channel) of the super weight's layer — the channel is the super weight's column, the token the one the scan saw
// it at (the first token in the models the paper studies): a fixed position in each pass.
//
// Only down_proj inputs: the hook vocabulary has no point at the other linear layers' inputs (see docs/quantize.md).
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

/** Quantize each down_proj input to `bits`, leaving the activations at `sites` exactly as they are. */
export function quantizeActivations(bits: number, sites: readonly ActivationSite[] = []): Hook {
  return (e) => {
    if (e.point !== "down_proj_input") return;
    const keep: number[] = [];
    for (const s of sites) {
      if (s.layer !== e.layer || s.tensor !== e.tensor || s.channel >= e.width) continue;
      const row = e.positions ? e.positions.indexOf(s.token) : s.token < e.tokens ? s.token : -1;
      if (row >= 0) keep.push(row * e.width + s.channel);
    }
    fakeQuantizeActivations(e.data, bits, [...new Set(keep)]);
  };
}
