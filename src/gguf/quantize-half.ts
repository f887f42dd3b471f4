// float32 ↔ float16 / bfloat16 on raw bit patterns, as ggml rounds them (round to nearest even, NaN → quiet
// NaN), written to run per element with no allocation: the quantizers call these once per value or per block.
import { UserError } from "../errors.js";

/** float32 bits → float16 bits as ggml_compute_fp32_to_fp16: nearest even, ≥ 65520 → ±inf, NaN → 0x7e00. */
export function f16FromF32Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;
  if (a >= 0x477ff000) return sign | 0x7c00; // 65520 and up round to infinity
  if (a >= 0x38800000) {
    // normal half: rebias the exponent (127 → 15) and round the 13 dropped mantissa bits to even
    return sign | (((a + 0xfff + ((a >>> 13) & 1)) >>> 13) - 0x1c000);
  }
  if (a <= 0x33000000) return sign; // ≤ 2^-25: rounds to ±0 (2^-25 itself is a tie, to even)
  // half subnormal: count in units of 2^-24
  const mant = (a & 0x7fffff) | 0x800000;
  const shift = 126 - (a >>> 23);
  const half = 1 << (shift - 1);
  const rem = mant & ((1 << shift) - 1);
  let r = mant >>> shift;
  if (rem > half || (rem === half && r & 1)) r++;
  return sign | r;
}

/** float32 bits → bfloat16 bits: ggml_compute_fp32_to_bf16 (round to nearest even, NaN kept quiet). */
export function bf16FromF32Bits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 64) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float16 bits → its exact value (a float32). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** A number's float32 bit pattern (the number is rounded to float32 first). */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

/** float32 value → float16 bits (GGML_FP32_TO_FP16). */
export function toHalfBits(x: number): number {
  return f16FromF32Bits(f32Bits(x));
}

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
