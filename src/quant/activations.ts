// Fake quantization of an activation tensor (quantize, then dequantize in place), per tensor, for a forward-pass
// hook: the paper's §4.1 activation experiment, min–max asymmetric round-to-nearest over the whole tensor with the
// super activation held out at full precision. The paper replaces it by the median before quantizing and restores
// it afterwards; here it is replaced by another element of the tensor, which leaves min/max those of the rest.
// Same float32 arithmetic as the weights (rtn.ts).
import { QuantizeError, rtnCode } from "./rtn.js";

/**
 * x (any shape, e.g. [tokens, channels] row-major) → its `bits`-bit round-to-nearest reconstruction, in place;
 * the flat indices in `keep` (e.g. token·channels + channel of the super activation) stay exactly as they are.
 */
export function fakeQuantizeActivations(x: Float32Array, bits: number, keep: readonly number[] = []): void {
  if (!Number.isInteger(bits) || bits < 2 || bits > 16)
    throw new RangeError(`activation bits must be an integer in 2..16, not ${bits}`);
  for (const i of keep)
    if (!Number.isSafeInteger(i) || i < 0 || i >= x.length)
      throw new RangeError(`held-out activation ${i} outside a tensor of ${x.length}`);
  const held = new Set(keep);
  let other = 0;
  while (held.has(other)) other++;
  if (other >= x.length) return; // everything is held out
  const saved = keep.map((i) => x[i]);
  for (const i of keep) x[i] = x[other];

  let lo = Infinity,
    hi = -Infinity,
    poison = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    poison += v * 0; // NaN exactly when some v is ±Infinity or NaN
  }
  if (poison !== 0) throw new QuantizeError("activations hold a value that is not finite", "NON_FINITE");
  const top = 2 ** bits - 1;
  const range = Math.fround(hi - lo);
  if (range === Infinity)
    throw new QuantizeError(`activations span [${lo}, ${hi}], wider than float32 holds`, "RANGE_OVERFLOW");
  const scale = Math.fround(range / top);
  for (let i = 0; i < x.length; i++)
    x[i] = scale === 0 ? lo : Math.fround(rtnCode(Math.fround(Math.fround(x[i] - lo) / scale), top) * scale) + lo;
  keep.forEach((i, k) => (x[i] = saved[k]));
}
