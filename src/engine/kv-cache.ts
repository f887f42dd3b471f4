// Keys and values of the positions already run, per layer and variant, so that a pass can run only new
// tokens after them: greedy generation (one token per step), or each choice after a shared context.
// A pass appends its tokens' keys (after RoPE) and values in every layer; `advance` commits them once the
// pass is through, `truncate` forgets a continuation to run another one from the same prefix.

export class KvCache {
  /** Positions held: the position of the next token run. */
  length = 0;
  /** [layer][variant]: k and v rows [capacity, width], filled up to `length` (+ the running pass). */
  private readonly store: { k: Float32Array; v: Float32Array; width: number }[][] = [];

  constructor(readonly variants: number) {
    if (!(Number.isInteger(variants) && variants >= 1))
      throw new RangeError(`a KV cache needs ≥ 1 variant, got ${variants}`);
  }

  /**
   * Store k, v [tokens, width] of (layer, variant) at positions length.. and return every position's
   * k, v [length + tokens, width] (views into the cache, valid until the next call for that slot).
   */
  extend(
    layer: number,
    variant: number,
    k: Float32Array,
    v: Float32Array,
    width: number,
  ): { k: Float32Array; v: Float32Array } {
    if (variant < 0 || variant >= this.variants)
      throw new RangeError(`variant ${variant} outside the cache's ${this.variants}`);
    const tokens = k.length / width;
    const need = (this.length + tokens) * width;
    const slots = (this.store[layer] ??= []);
    let slot = slots[variant];
    if (slot && slot.width !== width)
      throw new RangeError(`layer ${layer}: cached rows are ${slot.width} wide, not ${width}`);
    if (!slot || slot.k.length < need) {
      // Double the capacity so that N single-token steps copy O(N) rows in all, not O(N²).
      const capacity = Math.max(need, 2 * (slot?.k.length ?? 0), 16 * width);
      const grown = { k: new Float32Array(capacity), v: new Float32Array(capacity), width };
      if (slot)
        (grown.k.set(slot.k.subarray(0, this.length * width)), grown.v.set(slot.v.subarray(0, this.length * width)));
      slots[variant] = slot = grown;
    }
    slot.k.set(k, this.length * width);
    slot.v.set(v, this.length * width);
    return { k: slot.k.subarray(0, need), v: slot.v.subarray(0, need) };
  }

  /** Commit the `tokens` positions the pass just appended. */
  advance(tokens: number): void {
    this.length += tokens;
  }

  /** Keep only the first `length` positions. */
  truncate(length: number): void {
    if (!(Number.isInteger(length) && length >= 0 && length <= this.length))
      throw new RangeError(`cannot truncate a cache of ${this.length} positions to ${length}`);
    this.length = length;
  }
}
