// Storage dtypes and their exact conversion to float32 (little-endian hosts).
import { widenSimd } from "./block-buffer.js";

/** Every dtype the safetensors format defines, with its size in bytes (F4/F6 sub-byte types are not listed). */
export const DTYPE_BYTES = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
} as const;
export type Dtype = keyof typeof DTYPE_BYTES;
export type FloatDtype = "F32" | "F16" | "BF16";

export function isSupportedDtype(d: Dtype): d is FloatDtype {
  return d === "F32" || d === "F16" || d === "BF16";
}

let f16Table: Float32Array | undefined;
/** All 65536 half-precision values as float32 (subnormals, infinities and NaN included). */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) table[h] = sign * frac * 2 ** -24;
    else if (exp === 31) table[h] = frac ? NaN : sign * Infinity;
    else table[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
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
    for (let i = count - 1; i >= 0; i--) bits[i] = raw[i] << 16;
  } else {
    const table = halfTable();
    for (let i = count - 1; i >= 0; i--) out[i] = table[raw[i]];
  }
}

/** float32 → bf16 bits, round to nearest even (NaN kept quiet). */
export function toBf16Bits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 → f16 bits, round to nearest even, overflow to infinity. */
export function toF16Bits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) r++;
  if (r === 0x400) { r = 0; e++; if (e >= 31) return sign | 0x7c00; }
  return sign | (e << 10) | r;
}
