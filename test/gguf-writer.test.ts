// The GGUF writer: every value type round-trips through the reader; layout (alignment, padding, offsets);
// streamed tensor data; atomic writes that leave nothing behind on error; and re-writing llama.cpp's own
// files from their parsed metadata and tensor bytes gives the identical file.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../src/errors.js";
import { readGgufFile, readTensorBytes, type GgufKv } from "../src/gguf/container.js";
import { encodeHeader, writeGguf } from "../src/gguf/writer.js";
import { fixturePath, skipWithoutFixtures } from "./fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "sw-gguf-writer-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const out = () => join(dir, `w${counter++}.gguf`);

const EVERY_TYPE: [string, GgufKv][] = [
  ["u8", { type: "UINT8", value: 255 }],
  ["i8", { type: "INT8", value: -128 }],
  ["u16", { type: "UINT16", value: 65535 }],
  ["i16", { type: "INT16", value: -32768 }],
  ["u32", { type: "UINT32", value: 4294967295 }],
  ["i32", { type: "INT32", value: -2147483648 }],
  ["f32", { type: "FLOAT32", value: Math.fround(1e-5) }],
  ["bool", { type: "BOOL", value: false }],
  ["str", { type: "STRING", value: "ünïcode ✓ \ufeffBOM kept" }],
  ["u64", { type: "UINT64", value: 2n ** 64n - 1n }],
  ["i64", { type: "INT64", value: -(2n ** 63n) }],
  ["f64", { type: "FLOAT64", value: Math.PI }],
  ["a.u8", { type: "ARRAY", itemType: "UINT8", value: [0, 1, 255] }],
  ["a.i8", { type: "ARRAY", itemType: "INT8", value: [-1, 127] }],
  ["a.u16", { type: "ARRAY", itemType: "UINT16", value: [7] }],
  ["a.i16", { type: "ARRAY", itemType: "INT16", value: [-7, 7] }],
  ["a.u32", { type: "ARRAY", itemType: "UINT32", value: [] }],
  ["a.i32", { type: "ARRAY", itemType: "INT32", value: [1, -3, 3] }],
  ["a.f32", { type: "ARRAY", itemType: "FLOAT32", value: [0.5, -Infinity] }],
  ["a.bool", { type: "ARRAY", itemType: "BOOL", value: [true, false, true] }],
  ["a.str", { type: "ARRAY", itemType: "STRING", value: ["<s>", "", "Ġthe", "日本"] }],
  ["a.u64", { type: "ARRAY", itemType: "UINT64", value: [0n, 2n ** 63n] }],
  ["a.i64", { type: "ARRAY", itemType: "INT64", value: [-1n] }],
  ["a.f64", { type: "ARRAY", itemType: "FLOAT64", value: [1e300, -0] }],
];

test("every value type, arrays of each included, round-trips through the reader in order", () => {
  const path = out();
  writeGguf(path, EVERY_TYPE, []);
  const f = readGgufFile(path);
  assert.equal(f.version, 3);
  assert.deepEqual([...f.metadata], EVERY_TYPE);
  assert.ok(Object.is((f.metadata.get("a.f64")!.value as number[])[1], -0));
});

test("a header far larger than the writer's initial buffer (a 30k-token vocabulary)", () => {
  const path = out();
  const tokens = Array.from({ length: 30000 }, (_, i) => (i % 3 ? `Ġt${i}` : `日本${i}`));
  const kvs: [string, GgufKv][] = [
    ["tokenizer.ggml.tokens", { type: "ARRAY", itemType: "STRING", value: tokens }],
    ["tokenizer.ggml.token_type", { type: "ARRAY", itemType: "INT32", value: tokens.map((_, i) => i % 5) }],
  ];
  writeGguf(path, kvs, [{ name: "t", type: "F32", ne: [2], data: new Uint8Array(8).fill(1) }]);
  const f = readGgufFile(path);
  assert.deepEqual([...f.metadata], kvs);
  assert.ok(f.dataOffset > 300_000);
  const data = readFileSync(path).subarray(f.tensors[0].start, f.tensors[0].start + 8);
  assert.deepEqual([...data], [1, 1, 1, 1, 1, 1, 1, 1]);
});

test("tensors: offsets padded to the alignment, data section aligned, bytes as given, zero padding", () => {
  const path = out();
  const a = new Uint8Array(18 * 2).map((_, i) => i + 1); // two Q4_0 blocks
  const b = new Uint8Array(12).fill(7); // F32 [3]
  writeGguf(
    path,
    [["general.alignment", { type: "UINT32", value: 64 }]],
    [
      { name: "a", type: "Q4_0", ne: [64], data: a },
      { name: "b", type: "F32", ne: [3], data: () => [b.subarray(0, 5), b.subarray(5)] },
    ],
  );
  const f = readGgufFile(path);
  assert.equal(f.alignment, 64);
  assert.equal(f.dataOffset % 64, 0);
  assert.deepEqual(
    f.tensors.map((t) => [t.name, t.type.name, t.ne, t.offset, t.byteLength]),
    [
      ["a", "Q4_0", [64], 0, 36],
      ["b", "F32", [3], 64, 12],
    ],
  );
  const bytes = readFileSync(path);
  assert.deepEqual(bytes.subarray(f.dataOffset, f.dataOffset + 36), Buffer.from(a));
  assert.ok(
    bytes.subarray(f.dataOffset + 36, f.dataOffset + 64).every((x) => x === 0),
    "padding is zeros",
  );
  assert.deepEqual(bytes.subarray(f.dataOffset + 64, f.dataOffset + 76), Buffer.from(b));
  // The last tensor is padded too: the file ends on the alignment.
  assert.equal(bytes.length, f.dataOffset + 128);
});

test("bad input is refused before anything is written", () => {
  const yes: GgufKv = { type: "BOOL", value: true };
  const bad: [string, () => void, RegExp][] = [
    ["u8 out of range", () => writeGguf(out(), [["k", { type: "UINT8", value: 256 }]], []), /outside the UINT8 range/],
    ["i64 not an integer", () => writeGguf(out(), [["k", { type: "INT64", value: 1.5 }]], []), /must be an integer/],
    ["wrong JS type", () => writeGguf(out(), [["k", { type: "STRING", value: 3 }]], []), /must be a string/],
    ["array item", () => writeGguf(out(), [["k", { type: "ARRAY", itemType: "BOOL", value: [1] }]], []), /"k"\[0\]/],
    [
      "duplicate key",
      () =>
        writeGguf(
          out(),
          [
            ["k", yes],
            ["k", yes],
          ],
          [],
        ),
      /given twice/,
    ],
    ["alignment", () => writeGguf(out(), [["general.alignment", { type: "UINT32", value: 24 }]], []), /power of two/],
    [
      "partial block",
      () => writeGguf(out(), [], [{ name: "t", type: "Q8_0", ne: [16], data: new Uint8Array(17) }]),
      /multiple of the Q8_0 block size/,
    ],
    [
      "unknown type",
      () => writeGguf(out(), [], [{ name: "t", type: "Q9_9", ne: [1], data: new Uint8Array(1) }]),
      /unknown ggml type/,
    ],
    [
      "dims",
      () => writeGguf(out(), [], [{ name: "t", type: "F32", ne: [1, 1, 1, 1, 1], data: new Uint8Array(4) }]),
      /1\.\.4/,
    ],
    [
      "duplicate tensor",
      () =>
        writeGguf(
          out(),
          [],
          [
            { name: "t", type: "F32", ne: [1], data: new Uint8Array(4) },
            { name: "t", type: "F32", ne: [1], data: new Uint8Array(4) },
          ],
        ),
      /given twice/,
    ],
  ];
  for (const [what, fn, message] of bad) assert.throws(fn, message, what);
  assert.deepEqual(
    readdirSync(dir).filter((f) => !/^w\d+\.gguf$/.test(f)),
    [],
    "no temporary files left",
  );
  for (const f of readdirSync(dir)) assert.ok(statSync(join(dir, f)).size > 0);
});

test("atomic: data of the wrong length or a failing stream leaves no file and no temporary", () => {
  const target = join(dir, "atomic.gguf");
  writeFileSync(target, "previous contents");
  const short = { name: "t", type: "F32", ne: [4], data: new Uint8Array(15) };
  assert.throws(() => writeGguf(target, [], [short]), /needs 16 bytes; its data gave 15/);
  const long = { name: "t", type: "F32", ne: [4], data: () => [new Uint8Array(8), new Uint8Array(12)] };
  assert.throws(() => writeGguf(target, [], [long]), /gave more/);
  const failing = {
    name: "t",
    type: "F32",
    ne: [4],
    *data() {
      yield new Uint8Array(8);
      throw new Error("source disk vanished");
    },
  };
  assert.throws(() => writeGguf(target, [], [failing]), /source disk vanished/);
  assert.equal(readFileSync(target, "utf8"), "previous contents", "the existing file is untouched");
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes("atomic")),
    ["atomic.gguf"],
  );
  const fresh = join(dir, "never.gguf");
  assert.throws(() => writeGguf(fresh, [], [short]));
  assert.ok(!readdirSync(dir).some((f) => f.startsWith("never")), "nothing appears");
  // An unwritable destination is a UserError naming it.
  const missing = join(dir, "no-such-folder", "x.gguf");
  assert.throws(
    () => writeGguf(missing, [], []),
    (e) => e instanceof UserError && e.message.startsWith(missing),
  );
});

test("encodeHeader places tensors the way the reader finds them", () => {
  const { header, alignment, placed } = encodeHeader(
    [],
    [
      { name: "x", type: "Q6_K", ne: [256, 3] },
      { name: "y", type: "F16", ne: [5] },
    ],
  );
  assert.equal(alignment, 32);
  assert.equal(header.length % 32, 0);
  assert.deepEqual(
    placed.map((p) => [p.name, p.byteLength, p.offset]),
    [
      ["x", 630, 0],
      ["y", 10, 640],
    ],
  );
});

test(
  "re-writing llama.cpp's files from their parsed metadata and tensor bytes gives identical files",
  { skip: skipWithoutFixtures },
  () => {
    const files = readdirSync(fixturePath("gguf")).filter((f) => f.endsWith(".gguf"));
    assert.equal(files.length, 10);
    for (const name of files) {
      const source = fixturePath("gguf", name);
      const f = readGgufFile(source);
      const fd = openSync(source, "r");
      const path = out();
      try {
        writeGguf(
          path,
          f.metadata,
          f.tensors.map((t) => ({
            name: t.name,
            type: t.type,
            ne: t.ne,
            data: () => {
              const bytes = new Uint8Array(t.byteLength);
              readTensorBytes(fd, t, 0, bytes);
              return [bytes];
            },
          })),
        );
      } finally {
        closeSync(fd);
      }
      assert.ok(readFileSync(path).equals(readFileSync(source)), `${name} differs when re-written`);
    }
  },
);
