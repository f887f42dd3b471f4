// float16 scales for the quantizers, as ggml stores them (ggml_validate_row_data refuses an overflowing scale).
import { UserError } from "../errors.js";

// The bit conversions themselves live in src/checkpoint/dtype.ts (one owner for the rounding).
export { bf16FromF32Bits, f16FromF32Bits, f32Bits, halfToFloat, toF16Bits as toHalfBits } from "../checkpoint/dtype.js";
import { toF16Bits as toHalfBits } from "../checkpoint/dtype.js";

/**
 * Store x as a little-endian float16 at dst[off]; returns the bits. A scale that overflows float16 is refused, as
 * llama.cpp's ggml_validate_row_data refuses it after quantizing.
 */
export function writeHalf(dst: Uint8Array, off: number, x: number): number {
  const h = toHalfBits(x);
  if ((h & 0x7c00) === 0x7c00) {
    throw new UserError(`a block scale of ${x} does not fit in float16: the values are too large for this type`);
  }
  dst[off] = h & 0xff;
  dst[off + 1] = h >> 8;
  return h;
}
