// The ggml tensor types a GGUF file can name: id (the u32 stored in a tensor info), name (as gguf-py and
// llama-quantize spell it), values per block and bytes per block (ggml's type_traits blck_size / type_size),
// and whether src/gguf/dequant.ts can turn it into float32.
//
// The ids are ggml's `enum ggml_type` (ggml/include/ggml.h), which only ever grows at the end. Ids 4, 5
// (Q4_2, Q4_3), 31–33 (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8) and 36–38 (IQ4_NL_4_4, …) were removed from ggml;
// llama.cpp refuses files that use them, and so do we.

export interface GgmlType {
  id: number;
  name: string;
  /** Values per block; blocks run along ne0, so ne0 must be a multiple of it. */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
  /** src/gguf/dequant.ts has a kernel for it. */
  dequantizable: boolean;
}

// [id, name, blockSize, typeSize, dequantizable]
const TABLE: [number, string, number, number, boolean][] = [
  [0, "F32", 1, 4, true],
  [1, "F16", 1, 2, true],
  [2, "Q4_0", 32, 18, true], // d f16, qs[16]
  [3, "Q4_1", 32, 20, true], // d f16, m f16, qs[16]
  [6, "Q5_0", 32, 22, true], // d f16, qh[4], qs[16]
  [7, "Q5_1", 32, 24, true], // d f16, m f16, qh[4], qs[16]
  [8, "Q8_0", 32, 34, true], // d f16, qs[32] int8
  [9, "Q8_1", 32, 36, false], // d f16, s f16, qs[32] int8 (an activation format)
  [10, "Q2_K", 256, 84, true],
  [11, "Q3_K", 256, 110, true],
  [12, "Q4_K", 256, 144, true],
  [13, "Q5_K", 256, 176, true],
  [14, "Q6_K", 256, 210, true],
  [15, "Q8_K", 256, 292, false], // d f32, qs[256], bsums[16] int16 (an activation format)
  [16, "IQ2_XXS", 256, 66, false],
  [17, "IQ2_XS", 256, 74, false],
  [18, "IQ3_XXS", 256, 98, false],
  [19, "IQ1_S", 256, 50, false],
  [20, "IQ4_NL", 32, 18, true],
  [21, "IQ3_S", 256, 110, false],
  [22, "IQ2_S", 256, 82, false],
  [23, "IQ4_XS", 256, 136, true],
  [24, "I8", 1, 1, false],
  [25, "I16", 1, 2, false],
  [26, "I32", 1, 4, false],
  [27, "I64", 1, 8, false],
  [28, "F64", 1, 8, false],
  [29, "IQ1_M", 256, 56, false],
  [30, "BF16", 1, 2, true],
  [34, "TQ1_0", 256, 54, false],
  [35, "TQ2_0", 256, 66, false],
  [39, "MXFP4", 32, 17, false], // e (E8M0), qs[16]
  [40, "NVFP4", 64, 36, false], // d[4] (UE4M3), qs[32]
  [41, "Q1_0", 128, 18, false],
  [42, "Q2_0", 64, 18, false],
];

export const GGML_TYPES: readonly GgmlType[] = TABLE.map(([id, name, blockSize, typeSize, dequantizable]) =>
  Object.freeze({ id, name, blockSize, typeSize, dequantizable }),
);

/** Ids ggml once had and removed: a file using one gets a message saying so. */
export const REMOVED_GGML_TYPES: ReadonlyMap<number, string> = new Map([
  [4, "Q4_2"],
  [5, "Q4_3"],
  [31, "Q4_0_4_4"],
  [32, "Q4_0_4_8"],
  [33, "Q4_0_8_8"],
  [36, "IQ4_NL_4_4"],
  [37, "IQ4_NL_4_8"],
  [38, "IQ4_NL_8_8"],
]);

const BY_ID = new Map(GGML_TYPES.map((t) => [t.id, t]));
const BY_NAME = new Map(GGML_TYPES.map((t) => [t.name, t]));

export function ggmlTypeById(id: number): GgmlType | undefined {
  return BY_ID.get(id);
}

/** By name as gguf-py spells it ("Q4_K", "BF16"); case-insensitive. */
export function ggmlTypeByName(name: string): GgmlType | undefined {
  return BY_NAME.get(name.toUpperCase());
}

/** Bytes of `elements` values of `type`, `elements` a multiple of its block size (else a RangeError). */
export function ggmlBytes(type: GgmlType, elements: number): number {
  if (elements % type.blockSize !== 0) {
    throw new RangeError(`${elements} values are not a whole number of ${type.name} blocks of ${type.blockSize}`);
  }
  return (elements / type.blockSize) * type.typeSize;
}
