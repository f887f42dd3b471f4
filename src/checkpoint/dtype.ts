// Storage dtypes and their exact conversion to float32 (little-endian hosts).
import { widenSimd } from "./block-buffer.js";

/** Every dtype the safetensors format defines, with its size in bytes (F4/F6 sub-byte types are not listed). */
export const DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
} as const;
export type Dtype = keyof typeof DTYPE_BYTES;
export type FloatDtype = "F32" | "F16" | "BF16";

export function isSupportedDtype(d: Dtype): d is FloatDtype {
  return d === "F32" || d === "F16" || d === "BF16";
}

let f16Table: Float32Array | undefined;
/** All 65536 half-precision values as float32 (subnormals, infinities and NaN included). */
function halfTable(): Float32Array {
  // Stryker disable next-line ConditionalExpression: equivalent, without the cache the same table is built again
  if (f16Table) return f16Table;
  const table = new Float32Array(65536);
  // Stryker disable next-line EqualityOperator: equivalent, one step past the end writes nowhere
  for (let h = 0; h < 65536; h++) table[h] = halfToFloat(h);
  return (f16Table = table);
}

/**
 * `out` holds `count` raw elements of `dtype` packed at its start; widen them to float32 in place.
 * Walking from the back is safe: element i's 4 output bytes only cover raw elements ≥ i.
 */
export function widenInPlace(out: Float32Array, count: number, dtype: FloatDtype): void {
  if (dtype === "F32" || widenSimd(out, count, dtype)) return;
  const raw = new Uint16Array(out.buffer, out.byteOffset, count);
  if (dtype === "BF16") {
    const bits = new Uint32Array(out.buffer, out.byteOffset, count);
    // Stryker disable next-line ArithmeticOperator: equivalent, starting past the end writes nowhere until count − 1
    for (let i = count - 1; i >= 0; i--) bits[i] = raw[i] << 16;
  } else {
    const table = halfTable();
    // Stryker disable next-line ArithmeticOperator: equivalent, starting past the end writes nowhere until count − 1
    for (let i = count - 1; i >= 0; i--) out[i] = table[raw[i]];
  }
}

// float32 ↔ float16 / bfloat16 on bit patterns, without allocation (the writers and quantizers call these per
// value): round to nearest even, NaN kept quiet — as PyTorch and ggml round.

/** float32 bits → float16 bits: nearest even, ≥ 65520 → ±inf, NaN → quiet NaN (0x7e00 with its sign). */
export function f16FromF32Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;
  // Stryker disable next-line EqualityOperator: equivalent, at 65520 the normal branch rounds to the same infinity
  if (a >= 0x477ff000) return sign | 0x7c00; // 65520 and up round to infinity
  // Stryker disable next-line EqualityOperator: equivalent, at 2^-14 the subnormal branch gives the same smallest normal
  if (a >= 0x38800000) {
    // normal half: rebias the exponent (127 → 15) and round the 13 dropped mantissa bits to even
    return sign | (((a + 0xfff + ((a >>> 13) & 1)) >>> 13) - 0x1c000);
  }
  // Stryker disable next-line EqualityOperator: equivalent, at 2^-25 the subnormal branch rounds the tie to the same ±0
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

/** float32 bits → bfloat16 bits (round to nearest even, NaN kept quiet). */
export function bf16FromF32Bits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 64) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float16 bits → its exact value. */
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

/** A number's float32 bit pattern (rounded to float32 first). */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

/** float32 → bf16 bits. */
export function toBf16Bits(x: number): number {
  return bf16FromF32Bits(f32Bits(x));
}

/** float32 → f16 bits. */
export function toF16Bits(x: number): number {
  return f16FromF32Bits(f32Bits(x));
}
