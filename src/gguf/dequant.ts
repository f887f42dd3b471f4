// ggml block formats → float32, bit for bit as ggml's own `dequantize_row_*` (ggml/src/ggml-quants.c) computes
// them: ggml's base library is scalar float32 code without FMA, so every product and sum is rounded to float32
// on its own, in ggml's order. Here a product of a small integer and a float32 is exact in a double and rounds
// once when stored into the Float32Array; anything computed from two roundings gets Math.fround in between.
// (A float32 sum or product done in double and rounded once to float32 is correctly rounded: 53 ≥ 2·24 + 2.)
//
// Blocks run along ne0; `src` holds whole blocks, `out` receives blockSize values per block. No allocation per
// block: kernels read the bytes directly and look halves up in one 65536-entry table.
import type { GgmlType } from "./types.js";

// IEEE binary16 → binary32 bit patterns, exact (subnormals normalised; NaN payload kept and quieted, as the
// x86 conversion ggml uses does). HALF is the same table read as numbers, for the scale fields.
const HALF_BITS = new Uint32Array(65536);
const HALF = new Float32Array(HALF_BITS.buffer);
for (let h = 0; h < 65536; h++) {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let frac = h & 0x3ff;
  let bits: number;
  if (exp === 31) bits = sign | 0x7f800000 | (frac << 13) | (frac ? 0x400000 : 0);
  else if (exp > 0) bits = sign | ((exp + 112) << 23) | (frac << 13);
  else if (frac === 0) bits = sign;
  else {
    let e = 113; // a subnormal is frac · 2^-24: shift the leading one up to bit 10
    while ((frac & 0x400) === 0) {
      frac <<= 1;
      e--;
    }
    bits = sign | (e << 23) | ((frac & 0x3ff) << 13);
  }
  HALF_BITS[h] = bits >>> 0;
}

/** The non-linear 4-bit grid of IQ4_NL and IQ4_XS (ggml's kvalues_iq4nl). */
const IQ4_GRID = new Int8Array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);

const fround = Math.fround;
const i8 = (b: number) => (b << 24) >> 24;

type Kernel = (out: Float32Array, s: Uint8Array, blocks: number) => void;

function f32(out: Float32Array, s: Uint8Array, n: number): void {
  new Uint8Array(out.buffer, out.byteOffset, n * 4).set(s.subarray(0, n * 4));
}

// F16 / BF16 write bit patterns (a NaN stored through a Float32Array could lose its payload); an even source
// offset is read as 16-bit words (little-endian hosts, as everywhere in this project).
function f16(out: Float32Array, s: Uint8Array, n: number): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, n);
  if (s.byteOffset % 2 === 0) {
    const h = new Uint16Array(s.buffer, s.byteOffset, n);
    for (let i = 0; i < n; i++) bits[i] = HALF_BITS[h[i]];
  } else for (let i = 0, o = 0; i < n; i++, o += 2) bits[i] = HALF_BITS[s[o] | (s[o + 1] << 8)];
}

function bf16(out: Float32Array, s: Uint8Array, n: number): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, n);
  if (s.byteOffset % 2 === 0) {
    const h = new Uint16Array(s.buffer, s.byteOffset, n);
    for (let i = 0; i < n; i++) bits[i] = h[i] << 16;
  } else for (let i = 0, o = 0; i < n; i++, o += 2) bits[i] = (s[o] | (s[o + 1] << 8)) << 16;
}

// Q4_0: d f16, qs[16]; value j = ((qs[j] & 15) − 8)·d, value j + 16 = ((qs[j] >> 4) − 8)·d.
function q4_0(out: Float32Array, s: Uint8Array, blocks: number): void {
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += 18, y += 32) {
    const d = HALF[s[o] | (s[o + 1] << 8)];
    for (let j = 0; j < 16; j++) {
      const q = s[o + 2 + j];
      out[y + j] = ((q & 15) - 8) * d;
      out[y + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

// Q4_1: d f16, m f16, qs[16]; value = q·d + m.
function q4_1(out: Float32Array, s: Uint8Array, blocks: number): void {
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += 20, y += 32) {
    const d = HALF[s[o] | (s[o + 1] << 8)];
    const m = HALF[s[o + 2] | (s[o + 3] << 8)];
    for (let j = 0; j < 16; j++) {
      const q = s[o + 4 + j];
      out[y + j] = fround((q & 15) * d) + m;
      out[y + j + 16] = fround((q >> 4) * d) + m;
    }
  }
}

// Q5_0: d f16, qh u32, qs[16]; the fifth bit of value j is qh bit j, of value j + 16 qh bit j + 16.
function q5_0(out: Float32Array, s: Uint8Array, blocks: number): void {
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += 22, y += 32) {
    const d = HALF[s[o] | (s[o + 1] << 8)];
    const qh = (s[o + 2] | (s[o + 3] << 8) | (s[o + 4] << 16) | (s[o + 5] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = s[o + 6 + j];
      out[y + j] = (((q & 15) | (((qh >>> j) << 4) & 0x10)) - 16) * d;
      out[y + j + 16] = (((q >> 4) | ((qh >>> (j + 12)) & 0x10)) - 16) * d;
    }
  }
}

// Q5_1: d f16, m f16, qh u32, qs[16]; value = q·d + m.
function q5_1(out: Float32Array, s: Uint8Array, blocks: number): void {
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += 24, y += 32) {
    const d = HALF[s[o] | (s[o + 1] << 8)];
    const m = HALF[s[o + 2] | (s[o + 3] << 8)];
    const qh = (s[o + 4] | (s[o + 5] << 8) | (s[o + 6] << 16) | (s[o + 7] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = s[o + 8 + j];
      out[y + j] = fround(((q & 15) | (((qh >>> j) << 4) & 0x10)) * d) + m;
      out[y + j + 16] = fround(((q >> 4) | ((qh >>> (j + 12)) & 0x10)) * d) + m;
    }
  }
}

// Q8_0: d f16, qs[32] int8; value = q·d.
function q8_0(out: Float32Array, s: Uint8Array, blocks: number): void {
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += 34, y += 32) {
    const d = HALF[s[o] | (s[o + 1] << 8)];
    for (let j = 0; j < 32; j++) out[y + j] = i8(s[o + 2 + j]) * d;
  }
}

// Q2_K: scales[16] (4-bit scale | 4-bit min << 4), qs[64], d f16, dmin f16. Per 128 values (32 qs bytes),
// four shifts, each two groups of 16 with the next scale byte: value = (d·sc)·q − dmin·m.
function q2_K(out: Float32Array, s: Uint8Array, blocks: number): void {
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += 84) {
    const d = HALF[s[o + 80] | (s[o + 81] << 8)];
    const dmin = HALF[s[o + 82] | (s[o + 83] << 8)];
    let is = o;
    for (let q = o + 16; q < o + 80; q += 32) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 32; half += 16) {
          const sc = s[is++];
          const dl = fround(d * (sc & 15));
          const ml = fround(dmin * (sc >> 4));
          for (let l = 0; l < 16; l++) out[y++] = fround(dl * ((s[q + half + l] >> shift) & 3)) - ml;
        }
      }
    }
  }
}

// Q3_K: hmask[32], qs[64], scales[12] (16 6-bit scales), d f16. Groups of 16 in Q2_K's order; the high bit
// comes from hmask (the same 32 bytes for both halves, one bit per shift): q − 4 where it is clear.
function q3_K(out: Float32Array, s: Uint8Array, blocks: number): void {
  const sc = new Int32Array(16);
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += 110) {
    const d = HALF[s[o + 108] | (s[o + 109] << 8)];
    const a = o + 96;
    for (let i = 0; i < 16; i++) {
      const low = i < 8 ? s[a + i] & 15 : s[a + i - 8] >> 4;
      sc[i] = (low | (((s[a + 8 + (i & 3)] >> (2 * (i >> 2))) & 3) << 4)) - 32;
    }
    let is = 0;
    let m = 1;
    for (let q = o + 32; q < o + 96; q += 32) {
      for (let shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (let half = 0; half < 32; half += 16) {
          const dl = fround(d * sc[is++]);
          for (let l = half; l < half + 16; l++) out[y++] = dl * (((s[q + l] >> shift) & 3) - (s[o + l] & m ? 0 : 4));
        }
      }
    }
  }
}

// Q4_K / Q5_K 6-bit scales and mins (ggml's get_scale_min_k4), for sub-block j of the 12 bytes at `a`.
function scaleK4(s: Uint8Array, a: number, j: number): number {
  return j < 4 ? s[a + j] & 63 : (s[a + j + 4] & 15) | ((s[a + j - 4] >> 6) << 4);
}
function minK4(s: Uint8Array, a: number, j: number): number {
  return j < 4 ? s[a + j + 4] & 63 : (s[a + j + 4] >> 4) | ((s[a + j] >> 6) << 4);
}

// Q4_K: d f16, dmin f16, scales[12], qs[128]. Per 64 values (32 qs bytes): low nibbles → sub-block 2k,
// high nibbles → 2k + 1; value = (d·sc)·q − dmin·m.
function q4_K(out: Float32Array, s: Uint8Array, blocks: number): void {
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += 144) {
    const d = HALF[s[o] | (s[o + 1] << 8)];
    const dmin = HALF[s[o + 2] | (s[o + 3] << 8)];
    for (let k = 0, q = o + 16; k < 8; k += 2, q += 32, y += 64) {
      const d1 = fround(d * scaleK4(s, o + 4, k));
      const m1 = fround(dmin * minK4(s, o + 4, k));
      const d2 = fround(d * scaleK4(s, o + 4, k + 1));
      const m2 = fround(dmin * minK4(s, o + 4, k + 1));
      for (let l = 0; l < 32; l++) {
        const v = s[q + l];
        out[y + l] = fround(d1 * (v & 15)) - m1;
        out[y + 32 + l] = fround(d2 * (v >> 4)) - m2;
      }
    }
  }
}

// Q5_K: d f16, dmin f16, scales[12], qh[32], qs[128]; as Q4_K with a fifth bit from qh (two bits per 64
// values, moving up two per 64; qh itself is not advanced).
function q5_K(out: Float32Array, s: Uint8Array, blocks: number): void {
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += 176) {
    const d = HALF[s[o] | (s[o + 1] << 8)];
    const dmin = HALF[s[o + 2] | (s[o + 3] << 8)];
    const qh = o + 16;
    for (let k = 0, q = o + 48, u1 = 1, u2 = 2; k < 8; k += 2, q += 32, y += 64, u1 <<= 2, u2 <<= 2) {
      const d1 = fround(d * scaleK4(s, o + 4, k));
      const m1 = fround(dmin * minK4(s, o + 4, k));
      const d2 = fround(d * scaleK4(s, o + 4, k + 1));
      const m2 = fround(dmin * minK4(s, o + 4, k + 1));
      for (let l = 0; l < 32; l++) {
        const v = s[q + l];
        const h = s[qh + l];
        out[y + l] = fround(d1 * ((v & 15) + (h & u1 ? 16 : 0))) - m1;
        out[y + 32 + l] = fround(d2 * ((v >> 4) + (h & u2 ? 16 : 0))) - m2;
      }
    }
  }
}

// Q6_K: ql[128], qh[64], scales[16] int8, d f16. Per 128 values (ql 64 bytes, qh 32, 8 scales): four values
// per l < 32 from ql[l], ql[l + 32] nibbles and qh[l] bit pairs; value = (d·sc)·(q − 32).
function q6_K(out: Float32Array, s: Uint8Array, blocks: number): void {
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += 210) {
    const d = HALF[s[o + 208] | (s[o + 209] << 8)];
    for (let n = 0; n < 2; n++, y += 128) {
      const ql = o + 64 * n;
      const qh = o + 128 + 32 * n;
      const sc = o + 192 + 8 * n;
      for (let l = 0; l < 32; l++) {
        const is = sc + (l >> 4);
        const lo = s[ql + l];
        const hi = s[ql + l + 32];
        const h = s[qh + l];
        out[y + l] = fround(d * i8(s[is])) * (((lo & 15) | ((h & 3) << 4)) - 32);
        out[y + l + 32] = fround(d * i8(s[is + 2])) * (((hi & 15) | (((h >> 2) & 3) << 4)) - 32);
        out[y + l + 64] = fround(d * i8(s[is + 4])) * (((lo >> 4) | (((h >> 4) & 3) << 4)) - 32);
        out[y + l + 96] = fround(d * i8(s[is + 6])) * (((hi >> 4) | (((h >> 6) & 3) << 4)) - 32);
      }
    }
  }
}

// IQ4_NL: d f16, qs[16]; value = d·grid[nibble] (low nibbles first 16, high nibbles next 16).
function iq4_NL(out: Float32Array, s: Uint8Array, blocks: number): void {
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += 18, y += 32) {
    const d = HALF[s[o] | (s[o + 1] << 8)];
    for (let j = 0; j < 16; j++) {
      const q = s[o + 2 + j];
      out[y + j] = d * IQ4_GRID[q & 15];
      out[y + j + 16] = d * IQ4_GRID[q >> 4];
    }
  }
}

// IQ4_XS: d f16, scales_h u16, scales_l[4], qs[128]; 8 sub-blocks of 32 with 6-bit scales ls,
// value = (d·(ls − 32))·grid[nibble], nibbles laid out as IQ4_NL.
function iq4_XS(out: Float32Array, s: Uint8Array, blocks: number): void {
  for (let b = 0, o = 0, y = 0; b < blocks; b++, o += 136) {
    const d = HALF[s[o] | (s[o + 1] << 8)];
    const sh = s[o + 2] | (s[o + 3] << 8);
    for (let ib = 0, q = o + 8; ib < 8; ib++, q += 16, y += 32) {
      const ls = ((s[o + 4 + (ib >> 1)] >> (4 * (ib & 1))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
      const dl = fround(d * (ls - 32));
      for (let j = 0; j < 16; j++) {
        const v = s[q + j];
        out[y + j] = dl * IQ4_GRID[v & 15];
        out[y + j + 16] = dl * IQ4_GRID[v >> 4];
      }
    }
  }
}

const KERNELS: Record<string, Kernel> = {
  F32: f32,
  F16: f16,
  BF16: bf16,
  Q4_0: q4_0,
  Q4_1: q4_1,
  Q5_0: q5_0,
  Q5_1: q5_1,
  Q8_0: q8_0,
  Q2_K: q2_K,
  Q3_K: q3_K,
  Q4_K: q4_K,
  Q5_K: q5_K,
  Q6_K: q6_K,
  IQ4_NL: iq4_NL,
  IQ4_XS: iq4_XS,
};

/** Names of the types `dequantize` handles (types.ts marks the same ones `dequantizable`; a test checks). */
export const DEQUANTIZED_TYPES: readonly string[] = Object.keys(KERNELS);

/**
 * out[0, elements) ← the values of the first elements / blockSize blocks of `type` in `src`. `elements` must be
 * a whole number of blocks; `out` and `src` must not share memory. Throws for a type without a kernel
 * (callers check `type.dequantizable` first and name the tensor).
 */
export function dequantize(out: Float32Array, src: Uint8Array, type: GgmlType, elements: number): void {
  const kernel = KERNELS[type.name];
  if (!kernel)
    throw new Error(`no dequantizer for ggml type ${type.name} (supported: ${DEQUANTIZED_TYPES.join(", ")})`);
  const blocks = elements / type.blockSize;
  if (!Number.isInteger(blocks) || blocks < 0)
    throw new RangeError(`${elements} values are not a whole number of ${type.name} blocks of ${type.blockSize}`);
  if (src.length < blocks * type.typeSize)
    throw new RangeError(`${type.name}: ${blocks} blocks need ${blocks * type.typeSize} bytes, got ${src.length}`);
  if (out.length < elements) throw new RangeError(`output holds ${out.length} values, ${elements} needed`);
  kernel(out, src, type.blockSize === 1 ? elements : blocks);
}
