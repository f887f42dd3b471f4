// ggml's reference quantizers (what llama-quantize writes without an importance matrix), byte for byte:
// quantizeRow(type, values, out) is ggml_quantize_chunk / quantize_row_T_ref on whole blocks. The 32-value
// formats are here; the K-quants are in quantize-kquants.ts, the float16/bfloat16 rounding in quantize-half.ts.
// Every float32 operation is rounded (Math.fround) in ggml's order; integer conversions truncate or round exactly
// as the C code does (see each kernel).
import { UserError } from "../errors.js";
import { bf16FromF32Bits, f16FromF32Bits, writeHalf } from "./quantize-half.js";
import { quantizeQ4K, quantizeQ5K, quantizeQ6K } from "./quantize-kquants.js";
import { ggmlTypeByName, type GgmlType as GgmlTypeInfo } from "./types.js";

/** The ggml types the quantizers and llama.cpp's mixture rules (mixture.ts) name, by name. Their facts (GGUF type
 * id, values and bytes per block) are src/gguf/types.ts's table; this is only the list. */
const NAMES = [
  "F32",
  "F16",
  "Q4_0",
  "Q4_1",
  "Q5_0",
  "Q5_1",
  "Q8_0",
  "Q2_K",
  "Q3_K",
  "Q4_K",
  "Q5_K",
  "Q6_K",
  "IQ4_NL",
  "IQ4_XS",
  "BF16",
] as const;
export type GgmlType = (typeof NAMES)[number];

/** Name → its entry in types.ts's table. */
export const GGML_TYPES: Readonly<Record<GgmlType, GgmlTypeInfo>> = Object.freeze(
  Object.fromEntries(NAMES.map((name) => [name, typeInfo(name)])) as Record<GgmlType, GgmlTypeInfo>,
);

function typeInfo(name: string): GgmlTypeInfo {
  const info = ggmlTypeByName(name);
  if (!info) throw new Error(`quantize.ts names ggml type ${name}, which src/gguf/types.ts does not list`);
  return info;
}

type Kernel = (dst: Uint8Array, src: Float32Array, blocks: number) => void;

/** The types quantizeRow writes. */
const KERNELS = {
  F32: copyF32,
  F16: toF16,
  BF16: toBf16,
  Q4_0: quantizeQ4_0,
  Q4_1: quantizeQ4_1,
  Q5_0: quantizeQ5_0,
  Q5_1: quantizeQ5_1,
  Q8_0: quantizeQ8_0,
  Q4_K: quantizeQ4K,
  Q5_K: quantizeQ5K,
  Q6_K: quantizeQ6K,
} satisfies Partial<Record<GgmlType, Kernel>>;
export type WritableType = keyof typeof KERNELS;

export function isWritable(type: GgmlType): type is WritableType {
  return type in KERNELS;
}

/** Bytes that `elements` values of `type` take (whole blocks only). */
export function quantizedSize(type: GgmlType, elements: number): number {
  const { blockSize, typeSize } = GGML_TYPES[type];
  if (!Number.isSafeInteger(elements) || elements < 0 || elements % blockSize !== 0) {
    throw new UserError(`${type} stores whole blocks of ${blockSize} values: ${elements} values do not fit`);
  }
  return (elements / blockSize) * typeSize;
}

/**
 * Quantize `src` (one or more rows of whole blocks, blocks in order) to `type` into `dst`, which must be exactly
 * quantizedSize(type, src.length) bytes. Refuses non-finite values and results that would not be finite (a scale
 * or a float16 value beyond float16's range), as llama-quantize does.
 */
export function quantizeRow(type: GgmlType, src: Float32Array, dst: Uint8Array): void {
  if (!isWritable(type)) {
    throw new UserError(`no quantizer for ${type}: writable types are ${Object.keys(KERNELS).join(", ")}`);
  }
  const bytes = quantizedSize(type, src.length);
  if (dst.length !== bytes) {
    throw new UserError(`${type}: ${src.length} values take ${bytes} bytes, the output buffer has ${dst.length}`);
  }
  for (let i = 0; i < src.length; i++) {
    if (src[i] - src[i] !== 0) throw new UserError(`cannot quantize to ${type}: value ${i} is ${src[i]}`);
  }
  KERNELS[type](dst, src, src.length / GGML_TYPES[type].blockSize);
}

const f = Math.fround;

function copyF32(dst: Uint8Array, src: Float32Array): void {
  dst.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
}

/** ggml_fp32_to_fp16_row. dst[2n]. */
function toF16(dst: Uint8Array, src: Float32Array, n: number): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const h = f16FromF32Bits(bits[i]);
    if ((h & 0x7c00) === 0x7c00) throw new UserError(`value ${i} (${src[i]}) is beyond float16's range`);
    dst[2 * i] = h & 0xff;
    dst[2 * i + 1] = h >> 8;
  }
}

/** ggml_fp32_to_bf16_row_ref. dst[2n]. */
function toBf16(dst: Uint8Array, src: Float32Array, n: number): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const h = bf16FromF32Bits(bits[i]);
    if ((h & 0x7f80) === 0x7f80) throw new UserError(`value ${i} (${src[i]}) is beyond bfloat16's range`);
    dst[2 * i] = h & 0xff;
    dst[2 * i + 1] = h >> 8;
  }
}

/** Signed value of largest magnitude in src[o … o + 32) (the first one on ties), as Q4_0/Q5_0 pick it. */
function signedAbsMax(src: Float32Array, o: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    const v = src[o + j];
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

/** quantize_row_q4_0_ref. dst: blocks of 18 bytes: d f16 | qs[16] (value j low nibble, j + 16 high). */
function quantizeQ4_0(dst: Uint8Array, src: Float32Array, nb: number): void {
  for (let i = 0; i < nb; i++) {
    const xo = 32 * i;
    const yo = 18 * i;
    const d = f(signedAbsMax(src, xo) / -8);
    const id = d ? f(1 / d) : 0;
    writeHalf(dst, yo, d);
    for (let j = 0; j < 16; j++) {
      // (int8_t)(x·id + 8.5f): truncation
      const q0 = Math.min(15, Math.trunc(f(f(src[xo + j] * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(f(f(src[xo + 16 + j] * id) + 8.5)));
      dst[yo + 2 + j] = q0 | (q1 << 4);
    }
  }
}

/** quantize_row_q4_1_ref. dst: blocks of 20 bytes: d f16 | m f16 | qs[16]. */
function quantizeQ4_1(dst: Uint8Array, src: Float32Array, nb: number): void {
  for (let i = 0; i < nb; i++) {
    const xo = 32 * i;
    const yo = 20 * i;
    let min = Infinity;
    let max = -Infinity;
    for (let j = 0; j < 32; j++) {
      const v = src[xo + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = f(f(max - min) / 15);
    const id = d ? f(1 / d) : 0;
    writeHalf(dst, yo, d);
    writeHalf(dst, yo + 2, min);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(f(f(f(src[xo + j] - min) * id) + 0.5)));
      const q1 = Math.min(15, Math.trunc(f(f(f(src[xo + 16 + j] - min) * id) + 0.5)));
      dst[yo + 4 + j] = q0 | (q1 << 4);
    }
  }
}

/** quantize_row_q5_0_ref. dst: blocks of 22 bytes: d f16 | qh u32 (fifth bits) | qs[16]. */
function quantizeQ5_0(dst: Uint8Array, src: Float32Array, nb: number): void {
  for (let i = 0; i < nb; i++) {
    const xo = 32 * i;
    const yo = 22 * i;
    const d = f(signedAbsMax(src, xo) / -16);
    const id = d ? f(1 / d) : 0;
    writeHalf(dst, yo, d);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(31, Math.trunc(f(f(src[xo + j] * id) + 16.5)));
      const q1 = Math.min(31, Math.trunc(f(f(src[xo + 16 + j] * id) + 16.5)));
      dst[yo + 6 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh |= ((q0 & 0x10) >> 4) << j;
      qh |= ((q1 & 0x10) >> 4) << (j + 16);
    }
    writeU32(dst, yo + 2, qh);
  }
}

/** quantize_row_q5_1_ref. dst: blocks of 24 bytes: d f16 | m f16 | qh u32 | qs[16]. */
function quantizeQ5_1(dst: Uint8Array, src: Float32Array, nb: number): void {
  for (let i = 0; i < nb; i++) {
    const xo = 32 * i;
    const yo = 24 * i;
    let min = Infinity;
    let max = -Infinity;
    for (let j = 0; j < 32; j++) {
      const v = src[xo + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = f(f(max - min) / 31);
    const id = d ? f(1 / d) : 0;
    writeHalf(dst, yo, d);
    writeHalf(dst, yo + 2, min);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      // (uint8_t)(x + 0.5f): truncation, no clamp (ggml has none here)
      const q0 = Math.trunc(f(f(f(src[xo + j] - min) * id) + 0.5)) & 0xff;
      const q1 = Math.trunc(f(f(f(src[xo + 16 + j] - min) * id) + 0.5)) & 0xff;
      dst[yo + 8 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh |= ((q0 & 0x10) >> 4) << j;
      qh |= ((q1 & 0x10) >> 4) << (j + 16);
    }
    writeU32(dst, yo + 4, qh);
  }
}

/** quantize_row_q8_0_ref. dst: blocks of 34 bytes: d f16 | qs[32] int8 = roundf(x / d) (half away from zero). */
function quantizeQ8_0(dst: Uint8Array, src: Float32Array, nb: number): void {
  for (let i = 0; i < nb; i++) {
    const xo = 32 * i;
    const yo = 34 * i;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(src[xo + j]));
    const d = f(amax / 127);
    const id = d ? f(1 / d) : 0;
    writeHalf(dst, yo, d);
    for (let j = 0; j < 32; j++) {
      const x = f(src[xo + j] * id);
      dst[yo + 2 + j] = x < 0 ? -Math.floor(0.5 - x) : Math.floor(x + 0.5); // stored as int8
    }
  }
}

function writeU32(dst: Uint8Array, off: number, v: number): void {
  dst[off] = v & 0xff;
  dst[off + 1] = (v >>> 8) & 0xff;
  dst[off + 2] = (v >>> 16) & 0xff;
  dst[off + 3] = v >>> 24;
}
