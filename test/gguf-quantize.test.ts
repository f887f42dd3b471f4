// ggml's reference quantizers, byte for byte: golden/input.f32 → golden/T.quant.bin for every type the writer
// targets (ggml's own output), the F16/BF16 rounding edge cases, and every quantized tensor of the planted-llama-256
// GGUF files re-made from the F32 file's data (each is ggml_quantize_chunk of it in llama-quantize).
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { UserError } from "../src/errors.js";
import { GGML_TYPES, isWritable, quantizedSize, quantizeRow, type GgmlType } from "../src/gguf/quantize.js";
import { bf16FromF32Bits, f16FromF32Bits } from "../src/gguf/quantize-half.js";
import { fixturePath, skipWithoutFixtures } from "./fixtures.js";

const golden = (file: string) => fixturePath("gguf", "golden", file);
const gguf = (file: string) => fixturePath("gguf", file);

function readBytes(path: string): Uint8Array {
  const b = readFileSync(path);
  return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}
const readF32 = (path: string) => new Float32Array(readBytes(path).buffer);

/** Fails with the first differing byte (its block and offset within the block). */
function assertSameBytes(got: Uint8Array, want: Uint8Array, type: GgmlType, what: string): void {
  assert.equal(got.length, want.length, `${what}: ${got.length} bytes, expected ${want.length}`);
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== want[i]) {
      const size = GGML_TYPES[type].typeSize;
      assert.fail(
        `${what}: byte ${i} (block ${Math.floor(i / size)}, offset ${i % size}) is ${got[i]}, ` +
          `ggml wrote ${want[i]}`,
      );
    }
  }
}

interface GoldenType {
  ggmlType: number;
  blockSize: number;
  typeSize: number;
  writerTarget: boolean;
}
const index = skipWithoutFixtures ? undefined : JSON.parse(readFileSync(golden("index.json"), "utf8"));

test(
  "the type table matches ggml's (golden/index.json: id, block size, bytes per block, writer targets)",
  { skip: skipWithoutFixtures },
  () => {
    const types = index.types as Record<string, GoldenType>;
    for (const [name, t] of Object.entries(types)) {
      assert.ok(Object.hasOwn(GGML_TYPES, name), `${name} missing`);
      const ours = GGML_TYPES[name as GgmlType];
      assert.deepEqual([ours.id, ours.blockSize, ours.typeSize], [t.ggmlType, t.blockSize, t.typeSize], name);
      assert.equal(isWritable(name as GgmlType), t.writerTarget, `${name} writable`);
    }
  },
);

test(
  "golden/input.f32 quantized row by row equals ggml's T.quant.bin for every writer type",
  { skip: skipWithoutFixtures },
  () => {
    const input = readF32(golden("input.f32"));
    const [rows, cols] = index.files["input.f32"].shape as [number, number];
    const targets = Object.keys(index.types).filter((t) => index.types[t].writerTarget) as GgmlType[];
    assert.equal(targets.length, 10);
    for (const type of targets) {
      const want = readBytes(golden(`${type}.quant.bin`));
      const rowBytes = quantizedSize(type, cols);
      for (let r = 0; r < rows; r++) {
        const out = new Uint8Array(rowBytes).fill(0xa5); // the output must not depend on what dst held
        quantizeRow(type, input.subarray(r * cols, (r + 1) * cols), out);
        assertSameBytes(out, want.subarray(r * rowBytes, (r + 1) * rowBytes), type, `${type} row ${r}`);
      }
    }
  },
);

test(
  "float16 / bfloat16 rounding of golden/edge.f32 equals ggml's (ties, subnormals, overflow to inf)",
  { skip: skipWithoutFixtures },
  () => {
    const bits = new Uint32Array(readBytes(golden("edge.f32")).buffer);
    for (const [type, convert] of [
      ["F16", f16FromF32Bits],
      ["BF16", bf16FromF32Bits],
    ] as const) {
      const want = new Uint16Array(readBytes(golden(`${type}.edge.bin`)).buffer);
      for (let i = 0; i < bits.length; i++) {
        const got = convert(bits[i]);
        assert.equal(
          got,
          want[i],
          `${type} of 0x${bits[i].toString(16)}: 0x${got.toString(16)}, ` + `ggml 0x${want[i].toString(16)}`,
        );
      }
    }
    assert.equal(f16FromF32Bits(0x7fc00000), 0x7e00, "NaN → quiet NaN");
    assert.equal(f16FromF32Bits(0xff800001), 0xfe00, "negative NaN keeps its sign");
    assert.equal(bf16FromF32Bits(0x7f800001), 0x7fc0, "NaN with only low bits set stays NaN");
  },
);

interface GgufTensor {
  name: string;
  type: GgmlType;
  ne: number[];
  offset: number;
  nbytes: number;
}
interface Expected {
  gguf: { dataOffset: number; tensors: GgufTensor[] };
}

/** A tensor's bytes, read at the offsets the file's expected.json gives (no GGUF parser involved). */
function tensorBytes(file: string, e: Expected, name: string): Uint8Array {
  const t = e.gguf.tensors.find((x) => x.name === name);
  assert.ok(t, `${name} in ${file}`);
  const out = new Uint8Array(t.nbytes);
  const fd = openSync(gguf(file), "r");
  try {
    assert.equal(readSync(fd, out, 0, t.nbytes, e.gguf.dataOffset + t.offset), t.nbytes);
  } finally {
    closeSync(fd);
  }
  return out;
}
const expected = (stem: string): Expected => JSON.parse(readFileSync(gguf(`${stem}.expected.json`), "utf8"));

test(
  "planted-llama-256: every quantized tensor of the F16, Q8_0, Q6_K, Q4_K_M, Q4_K_M-keep-sw-F16 and Q4_0 files " +
    "is ours, byte for byte",
  { skip: skipWithoutFixtures },
  () => {
    const source = expected("planted-llama-256.F32");
    const checked: Record<string, number> = {};
    for (const variant of ["F16", "Q8_0", "Q6_K", "Q4_K_M", "Q4_K_M-keep-sw-F16", "Q4_0"]) {
      const stem = `planted-llama-256.${variant}`;
      const e = expected(stem);
      for (const t of e.gguf.tensors) {
        if (t.type === "F32") continue;
        // the keep-sw file equals the stock Q4_K_M elsewhere: only its ffn_down tensors are checked again
        if (variant === "Q4_K_M-keep-sw-F16" && !t.name.includes("ffn_down")) continue;
        const values = new Float32Array(tensorBytes("planted-llama-256.F32.gguf", source, t.name).buffer);
        assert.equal(values.length, t.ne[0] * t.ne[1]);
        const out = new Uint8Array(quantizedSize(t.type, values.length));
        quantizeRow(t.type, values, out); // all rows in one call: blocks in order, as ggml_quantize_chunk
        assertSameBytes(out, tensorBytes(`${stem}.gguf`, e, t.name), t.type, `${stem} ${t.name} (${t.type})`);
        checked[t.type] = (checked[t.type] ?? 0) + 1;
      }
    }
    assert.deepEqual(checked, { F16: 31, Q8_0: 30, Q6_K: 38, Q4_K: 26, Q4_0: 29 });
  },
);

test("quantizedSize counts whole blocks and refuses partial ones", () => {
  assert.equal(quantizedSize("Q4_K", 512), 288);
  assert.equal(quantizedSize("Q8_0", 64), 68);
  assert.equal(quantizedSize("F16", 3), 6);
  assert.equal(quantizedSize("Q6_K", 0), 0);
  assert.throws(() => quantizedSize("Q4_K", 300), /Q4_K stores whole blocks of 256 values: 300 values/);
  assert.throws(() => quantizedSize("Q8_0", -32), UserError);
});

test("quantizeRow refuses what ggml would write as garbage or llama-quantize would reject", () => {
  const x = new Float32Array(256).fill(0.01);
  assert.throws(
    () => quantizeRow("Q4_K", x, new Uint8Array(143)),
    /Q4_K: 256 values take 144 bytes, the output buffer has 143/,
  );
  assert.throws(() => quantizeRow("Q4_K", x.subarray(0, 255), new Uint8Array(144)), /whole blocks of 256/);
  assert.throws(() => quantizeRow("Q2_K", x, new Uint8Array(84)), /no quantizer for Q2_K: writable types are F32, F16/);
  for (const bad of [NaN, Infinity, -Infinity]) {
    const y = x.slice();
    y[77] = bad;
    assert.throws(
      () => quantizeRow("Q8_0", y, new Uint8Array(quantizedSize("Q8_0", 256))),
      new RegExp(`cannot quantize to Q8_0: value 77 is ${bad}`),
    );
  }
  const big = new Float32Array(32).fill(1e7); // d = 1e7 / 127 ≈ 78740 > 65504
  assert.throws(() => quantizeRow("Q8_0", big, new Uint8Array(34)), /does not fit in float16/);
  assert.throws(() => quantizeRow("F16", big, new Uint8Array(64)), /value 0 \(10000000\) is beyond float16's range/);
  const huge = new Float32Array(2).fill(3.4e38); // rounds up to bfloat16 infinity
  assert.throws(() => quantizeRow("BF16", huge, new Uint8Array(4)), /beyond bfloat16's range/);
});

test("F32 rows are copied as little-endian float32", () => {
  const x = new Float32Array([1, -2.5, 3e-40]);
  const out = new Uint8Array(12);
  quantizeRow("F32", x, out);
  assert.deepEqual(new Float32Array(out.buffer), x);
});
