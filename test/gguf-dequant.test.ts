// The dequantizer against ggml's own to_float: every golden file (quantizer output, random blocks that set
// every bit of every field, F16/BF16 edge cases) must come out bit for bit (uint32 patterns compared).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fixturePath, skipWithoutFixtures } from "./fixtures.js";
import { dequantize, DEQUANTIZED_TYPES } from "../src/gguf/dequant.js";
import { GGML_TYPES, ggmlBytes, ggmlTypeById, ggmlTypeByName, REMOVED_GGML_TYPES } from "../src/gguf/types.js";

const golden = (name: string) => fixturePath("gguf", "golden", name);
const bytes = (name: string) => new Uint8Array(readFileSync(golden(name)));

/** Bit patterns of a float32 file. */
function f32Bits(name: string): Uint32Array {
  const b = bytes(name);
  return new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
}

function assertBitsEqual(actual: Float32Array, expected: Uint32Array, what: string): void {
  const bits = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  assert.equal(bits.length, expected.length, `${what}: length`);
  let bad = 0;
  let first = -1;
  for (let i = 0; i < bits.length; i++)
    if (bits[i] !== expected[i]) {
      bad++;
      if (first < 0) first = i;
    }
  if (bad)
    assert.fail(
      `${what}: ${bad} of ${bits.length} values differ; first at ${first}: ` +
        `got 0x${bits[first].toString(16)} (${actual[first]}), ggml 0x${expected[first].toString(16)}`,
    );
}

test("the ggml type table: ids, block sizes and bytes per block as ggml defines them", () => {
  const index = JSON.parse(readFileSync(golden("index.json"), "utf8"));
  // Spot values from ggml's type_traits, then every type the golden index describes.
  assert.deepEqual(
    ["F32", "Q4_K", "Q8_K", "IQ2_XXS", "TQ1_0", "MXFP4"].map((n) => {
      const t = ggmlTypeByName(n)!;
      return [t.id, t.blockSize, t.typeSize];
    }),
    [
      [0, 1, 4],
      [12, 256, 144],
      [15, 256, 292],
      [16, 256, 66],
      [34, 256, 54],
      [39, 32, 17],
    ],
  );
  for (const [name, info] of Object.entries<any>(index.types)) {
    const t = ggmlTypeById(info.ggmlType)!;
    assert.equal(t.name, name);
    assert.deepEqual([t.blockSize, t.typeSize], [info.blockSize, info.typeSize], name);
  }
  assert.equal(new Set(GGML_TYPES.map((t) => t.id)).size, GGML_TYPES.length, "ids are unique");
  for (const id of REMOVED_GGML_TYPES.keys()) assert.equal(ggmlTypeById(id), undefined);
  assert.equal(ggmlBytes(ggmlTypeByName("q6_k")!, 512), 420);
  assert.throws(() => ggmlBytes(ggmlTypeByName("Q4_0")!, 33), RangeError);
  // types.ts's `dequantizable` flags exactly the types dequant.ts has a kernel for.
  assert.deepEqual(
    GGML_TYPES.filter((t) => t.dequantizable)
      .map((t) => t.name)
      .sort(),
    [...DEQUANTIZED_TYPES].sort(),
  );
});

test("dequantize equals ggml's to_float bit for bit on every golden file", { skip: skipWithoutFixtures }, () => {
  const index = JSON.parse(readFileSync(golden("index.json"), "utf8"));
  const checked: string[] = [];
  for (const name of Object.keys(index.types)) {
    const type = ggmlTypeByName(name)!;
    for (const kind of ["quant", "random", "edge"]) {
      const bin = `${name}.${kind}.bin`;
      if (!index.files[bin]) continue;
      const expected = f32Bits(`${name}.${kind}.dequant.f32`);
      const out = new Float32Array(expected.length);
      dequantize(out, bytes(bin), type, expected.length);
      assertBitsEqual(out, expected, bin);
      checked.push(bin);
    }
  }
  // 14 types × quant + random, plus the two edge files.
  assert.equal(checked.length, 30, checked.join(", "));
});

test("dequantize a row at a time from an odd byte offset: the same bits", { skip: skipWithoutFixtures }, () => {
  for (const name of ["Q4_K", "Q5_0", "F16", "IQ4_XS"]) {
    const type = ggmlTypeByName(name)!;
    const expected = f32Bits(`${name}.random.dequant.f32`);
    const src = bytes(`${name}.random.bin`);
    // Copy to an odd offset: kernels must not assume aligned source views.
    const odd = new Uint8Array(src.length + 1).subarray(1);
    odd.set(src);
    const rowBytes = ggmlBytes(type, 512);
    const out = new Float32Array(expected.length);
    for (let r = 0; r < 4; r++) dequantize(out.subarray(r * 512, (r + 1) * 512), odd.subarray(r * rowBytes), type, 512);
    assertBitsEqual(out, expected, `${name} row by row`);
  }
});

test("dequantize refuses types without a kernel and bad sizes", () => {
  const out = new Float32Array(256);
  const iq2 = ggmlTypeByName("IQ2_XXS")!;
  assert.throws(() => dequantize(out, new Uint8Array(66), iq2, 256), /no dequantizer for ggml type IQ2_XXS/);
  assert.throws(() => dequantize(out, new Uint8Array(34), ggmlTypeByName("Q8_0")!, 33), RangeError);
  assert.throws(() => dequantize(out, new Uint8Array(33), ggmlTypeByName("Q8_0")!, 32), RangeError);
  assert.throws(() => dequantize(new Float32Array(31), new Uint8Array(34), ggmlTypeByName("Q8_0")!, 32), RangeError);
});

test("F16 NaNs keep sign and payload and come out quiet (the golden files hold no NaN; ggml's x86 conversion)", () => {
  // ggml_compute_fp16_to_fp32 rebuilds the exponent and multiplies by 2^-112: an SSE multiply quiets a
  // signalling NaN and keeps its payload. BF16 is a plain shift.
  const halves = new Uint8Array(new Uint16Array([0x7e00, 0xfd00, 0x7c01, 0xfc00]).buffer);
  const out = new Float32Array(4);
  dequantize(out, halves, ggmlTypeByName("F16")!, 4);
  assert.deepEqual([...new Uint32Array(out.buffer)], [0x7fc00000, 0xffe00000, 0x7fc02000, 0xff800000]);
  const bf = new Uint8Array(new Uint16Array([0x7f81, 0xffc0]).buffer);
  dequantize(out, bf, ggmlTypeByName("BF16")!, 2);
  assert.deepEqual([...new Uint32Array(out.buffer, 0, 2)], [0x7f810000, 0xffc00000]);
});
