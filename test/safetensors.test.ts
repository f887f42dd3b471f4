// The safetensors reader, one test per fault, each built from bytes (as the Rust reader's tests are):
// the error code, and a message that names the file. Then exact read-back of F32/F16/BF16, and the
// float32 → f16/bf16 rounding of dtype.ts.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckpointError } from "../src/errors.js";
import {
  closeFile,
  MAX_HEADER_BYTES,
  openSafetensors,
  parseHeader,
  readTensorRange,
} from "../src/checkpoint/safetensors.js";
import { Checkpoint } from "../src/checkpoint/checkpoint.js";
import { toBf16Bits, toF16Bits, widenInPlace } from "../src/checkpoint/dtype.js";
import { encode, headerFor, writeCheckpoint, writeSafetensors } from "../src/checkpoint/writer.js";

const dir = mkdtempSync(join(tmpdir(), "sw-safetensors-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
/** Write bytes to a fresh file in the temp folder; returns its path. */
function file(bytes: Uint8Array, name = `t${counter++}.safetensors`): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** u64 LE length + header bytes + data. `length` overrides the stated header length. */
function bytesOf(header: unknown, data: Uint8Array | number = 0, length?: bigint): Uint8Array {
  const body =
    header instanceof Uint8Array
      ? header
      : new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const payload = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + body.length + payload.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(body.length), true);
  out.set(body, 8);
  out.set(payload, 8 + body.length);
  return out;
}

/** `fn` throws a CheckpointError with this code, for this file, whose message names the file and each of `mentions`. */
function throwsCheckpoint(fn: () => unknown, code: string, path: string, ...mentions: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected a CheckpointError, got ${e}`);
    assert.equal(e.code, code, `code (message: ${e.message})`);
    assert.equal(e.file, path);
    assert.ok(e.message.startsWith(`${path}: `), `message should name the file: ${e.message}`);
    for (const m of mentions)
      assert.ok(e.message.includes(m), `message should mention ${JSON.stringify(m)}: ${e.message}`);
    return true;
  });
}

/** Open these bytes as a safetensors file and expect the fault. */
function fault(bytes: Uint8Array, code: string, ...mentions: string[]): void {
  const path = file(bytes);
  throwsCheckpoint(() => openSafetensors(path), code, path, ...mentions);
}

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: "F32", shape, data_offsets: [begin, end] });

// ---- the 8-byte length prefix ----

test("header length over 100 MB is HEADER_TOO_LARGE", () => {
  fault(bytesOf("{}", 0, BigInt(MAX_HEADER_BYTES) + 1n), "HEADER_TOO_LARGE", String(MAX_HEADER_BYTES + 1));
  fault(bytesOf("{}", 0, 0xffff_ffff_ffff_ffffn), "HEADER_TOO_LARGE", "18446744073709551615");
  // A text file that happens to start with 8 ASCII bytes: an absurd little-endian length.
  fault(new TextEncoder().encode("versions of this file are text\n"), "HEADER_TOO_LARGE");
});

test("header length past the end of the file is TRUNCATED", () => {
  fault(bytesOf("{}", 0, 1000n), "TRUNCATED", "1000", "10-byte file");
  fault(bytesOf("", 0, 1n), "TRUNCATED");
});

test("a file shorter than 8 bytes is TRUNCATED", () => {
  fault(new Uint8Array(0), "TRUNCATED");
  fault(new Uint8Array([2, 0, 0]), "TRUNCATED");
  fault(new Uint8Array(7), "TRUNCATED");
  // parseHeader alone says why.
  throwsCheckpoint(
    () => parseHeader("x.safetensors", new Uint8Array(8), 3),
    "TRUNCATED",
    "x.safetensors",
    "3 bytes",
    "too short",
  );
});

// ---- the JSON header ----

test("a header that is not UTF-8 is HEADER_NOT_UTF8", () => {
  fault(bytesOf(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), "HEADER_NOT_UTF8");
  // An overlong encoding of "{" and a lone surrogate are not UTF-8 either.
  fault(bytesOf(new Uint8Array([0xc1, 0xbb, 0x7d])), "HEADER_NOT_UTF8");
  fault(bytesOf(new Uint8Array([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d])), "HEADER_NOT_UTF8");
});

test("a header that is not JSON is HEADER_NOT_JSON", () => {
  fault(bytesOf('{"a": '), "HEADER_NOT_JSON", "not valid JSON");
  fault(bytesOf(""), "HEADER_NOT_JSON");
  fault(bytesOf("{'a': 1}"), "HEADER_NOT_JSON");
});

test("a JSON header that is not an object is HEADER_NOT_JSON", () => {
  for (const h of ["[]", "[1, 2]", "42", '"header"', "null", "true"])
    fault(bytesOf(h), "HEADER_NOT_JSON", "not an object");
});

test("a tensor entry that is not an object is INVALID_ENTRY, naming the tensor", () => {
  fault(bytesOf({ w: 5 }), "INVALID_ENTRY", '"w"');
  fault(bytesOf({ w: null }), "INVALID_ENTRY", '"w"');
});

test("an unknown dtype is UNKNOWN_DTYPE, naming the tensor and the dtype", () => {
  fault(bytesOf({ w: { dtype: "F128", shape: [1], data_offsets: [0, 16] } }, 16), "UNKNOWN_DTYPE", '"w"', '"F128"');
  fault(bytesOf({ w: { dtype: "f32", shape: [1], data_offsets: [0, 4] } }, 4), "UNKNOWN_DTYPE", '"f32"');
  fault(bytesOf({ w: { shape: [1], data_offsets: [0, 4] } }, 4), "UNKNOWN_DTYPE", '"w"');
  fault(bytesOf({ w: { dtype: 4, shape: [1], data_offsets: [0, 4] } }, 4), "UNKNOWN_DTYPE");
  // Names that exist on every JS object are still not dtypes.
  for (const d of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
    fault(bytesOf({ w: { dtype: d, shape: [1], data_offsets: [0, 4] } }, 4), "UNKNOWN_DTYPE", JSON.stringify(d));
    fault(bytesOf({ w: { dtype: d, shape: [], data_offsets: [0, 4] } }, 4), "UNKNOWN_DTYPE", JSON.stringify(d));
  }
});

test("a bad shape is INVALID_SHAPE, naming the tensor", () => {
  for (const shape of [[-1], [1.5], [2, null], "4", null, [2, "2"], [2 ** 53]])
    fault(bytesOf({ w: { dtype: "F32", shape, data_offsets: [0, 16] } }, 16), "INVALID_SHAPE", '"w"');
  fault(bytesOf({ w: { dtype: "F32", data_offsets: [0, 16] } }, 16), "INVALID_SHAPE", '"w"');
});

test("bad data_offsets are INVALID_OFFSETS, naming the tensor", () => {
  for (const offsets of [[8, 0], [0], [0, 8, 16], [-4, 4], [0, 4.5], ["0", "8"], null, { begin: 0, end: 8 }])
    fault(bytesOf({ w: { dtype: "F32", shape: [2], data_offsets: offsets } }, 8), "INVALID_OFFSETS", '"w"');
  fault(bytesOf({ w: { dtype: "F32", shape: [2] } }, 8), "INVALID_OFFSETS", '"w"');
});

test("a shape whose byte size overflows is SIZE_OVERFLOW", () => {
  fault(
    bytesOf({ w: { dtype: "F32", shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] } }, 8),
    "SIZE_OVERFLOW",
    '"w"',
  );
});

test("dtype × shape different from the byte span is SIZE_MISMATCH", () => {
  fault(bytesOf({ w: f32([2], 0, 4) }, 4), "SIZE_MISMATCH", '"w"', "8 bytes", "span 4");
  fault(bytesOf({ w: { dtype: "BF16", shape: [2, 2], data_offsets: [0, 16] } }, 16), "SIZE_MISMATCH", '"w"', "BF16");
  fault(bytesOf({ w: f32([], 0, 0) }, 0), "SIZE_MISMATCH"); // a scalar is one element, 4 bytes
});

// ---- the layout of the data ----

test("overlapping data_offsets are OVERLAP", () => {
  fault(bytesOf({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12), "OVERLAP", '"b"');
  fault(bytesOf({ a: f32([2], 0, 8), b: f32([2], 0, 8) }, 8), "OVERLAP");
  // A zero-size tensor inside another's span still overlaps it.
  fault(bytesOf({ a: f32([2], 0, 8), z: f32([0], 4, 4) }, 8), "OVERLAP", '"z"');
});

test("a gap between tensors, or before the first, is GAP", () => {
  fault(bytesOf({ a: f32([2], 0, 8), b: f32([2], 12, 20) }, 20), "GAP", '"b"');
  fault(bytesOf({ a: f32([2], 4, 12) }, 12), "GAP", '"a"');
  fault(bytesOf({ z: f32([0], 8, 8) }, 0), "GAP");
});

test("data shorter than the offsets claim is TRUNCATED", () => {
  fault(bytesOf({ a: f32([2], 0, 8) }, 4), "TRUNCATED", "8 bytes", "holds 4");
  fault(bytesOf({ a: f32([2], 0, 8), b: f32([1], 8, 12) }, 11), "TRUNCATED");
});

test("bytes after the last tensor are TRAILING_BYTES", () => {
  fault(bytesOf({ a: f32([2], 0, 8) }, 12), "TRAILING_BYTES", "4 bytes");
  fault(bytesOf({}, 1), "TRAILING_BYTES", "1 bytes");
});

// ---- valid files ----

test("valid headers open: empty, metadata only, zero-size tensors, entries out of offset order", () => {
  assert.equal(openSafetensors(file(bytesOf({}))).tensors.size, 0);
  const meta = openSafetensors(file(bytesOf({ __metadata__: { format: "pt" } })));
  assert.deepEqual(meta.metadata, { format: "pt" });
  assert.equal(meta.tensors.size, 0);
  // Header order differs from data order; zero-size tensors sit at the start, between and at the end.
  const f = openSafetensors(
    file(
      bytesOf(
        { b: f32([1], 8, 12), z0: f32([0], 0, 0), a: f32([2], 0, 8), z1: f32([3, 0], 8, 8), z2: f32([0, 5], 12, 12) },
        12,
      ),
    ),
  );
  assert.deepEqual([...f.tensors.keys()], ["b", "z0", "a", "z1", "z2"]);
  const a = f.tensors.get("a")!;
  assert.equal(a.byteLength, 8);
  assert.equal(a.dtype, "F32");
  assert.deepEqual(a.shape, [2]);
  assert.equal(f.tensors.get("b")!.start - a.start, 8);
});

test("headerFor + writeSafetensors write what openSafetensors reads, offsets relative to the data", () => {
  const tensors = [
    { name: "x", dtype: "F16" as const, shape: [3], data: new Float32Array([1, 2, 3]) },
    { name: "y", dtype: "F32" as const, shape: [2, 1], data: new Float32Array([4, 5]) },
  ];
  const header = headerFor(tensors);
  assert.equal(header.length % 8, 0, "header padded to 8 bytes");
  const path = join(dir, "written.safetensors");
  writeSafetensors(path, tensors, { format: "pt", note: "test" });
  const f = openSafetensors(path);
  assert.deepEqual(f.metadata, { format: "pt", note: "test" });
  assert.equal(f.tensors.get("x")!.byteLength, 6);
  assert.equal(f.tensors.get("y")!.start, f.tensors.get("x")!.start + 6);
  assert.deepEqual([...readTensorRange(f, f.tensors.get("y")!, 0, 2)], [4, 5]);
  closeFile(path);
});

/** A checkpoint folder holding exactly these raw tensors (hand-built bytes), opened with Checkpoint. */
function rawCheckpoint(
  name: string,
  tensors: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[],
): Checkpoint {
  const folder = join(dir, name);
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  const data = new Uint8Array(offset);
  offset = 0;
  for (const t of tensors) (data.set(t.bytes, offset), (offset += t.bytes.length));
  writeCheckpoint(folder, {}, []);
  writeFileSync(join(folder, "model.safetensors"), bytesOf(header, data));
  return Checkpoint.open(folder);
}

const u16 = (...bits: number[]) => new Uint8Array(new Uint16Array(bits).buffer);

test("F32 reads back bit-exact, including -0, subnormals, extremes, infinities and NaN", () => {
  const values = new Float32Array([
    0,
    -0,
    1,
    -1.5,
    Math.PI,
    1e-45,
    1.1754942e-38,
    3.4028234663852886e38,
    -3.4028234663852886e38,
    Infinity,
    -Infinity,
    NaN,
  ]);
  const ckpt = rawCheckpoint("f32", [{ name: "w", dtype: "F32", shape: [3, 4], bytes: new Uint8Array(values.buffer) }]);
  try {
    const got = ckpt.read("w");
    assert.deepEqual(new Uint32Array(got.buffer.slice(0)), new Uint32Array(values.buffer));
    assert.ok(Object.is(got[1], -0));
    assert.deepEqual([...ckpt.readRows("w", 1, 2)], [...values.subarray(4, 8)]);
    assert.equal(ckpt.readElement("w", 5), values[5]);
  } finally {
    ckpt.close();
  }
});

test("F16 widens exactly: subnormals, max, ±inf, NaN, -0, and row ranges", () => {
  const bits = [
    0x0001, 0x03ff, 0x0400, 0x3c00, 0xc000, 0x3555, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x8001, 0x2e66,
    0x3bff, 0x0200,
  ];
  const expected = [
    2 ** -24,
    1023 * 2 ** -24,
    2 ** -14,
    1,
    -2,
    0.333251953125,
    65504,
    -65504,
    Infinity,
    -Infinity,
    NaN,
    -0,
    -(2 ** -24),
    0.0999755859375,
    0.99951171875,
    2 ** -15,
  ];
  const ckpt = rawCheckpoint("f16", [
    { name: "a", dtype: "F32", shape: [1], bytes: new Uint8Array(new Float32Array([7]).buffer) },
    { name: "h", dtype: "F16", shape: [4, 4], bytes: u16(...bits) },
  ]);
  try {
    assert.equal(ckpt.info("h").dtype, "F16");
    const all = ckpt.read("h");
    for (let i = 0; i < bits.length; i++)
      assert.ok(Object.is(all[i], expected[i]), `0x${bits[i].toString(16)}: got ${all[i]}, expected ${expected[i]}`);
    // Rows [1, 3) into a caller's buffer that is a view at a non-zero offset: neighbours untouched.
    const backing = new Float32Array(12).fill(42);
    const out = backing.subarray(2, 10);
    const rows = ckpt.readRows("h", 1, 3, out);
    assert.equal(rows, out);
    for (let i = 0; i < 8; i++) assert.ok(Object.is(out[i], expected[4 + i]), `row element ${i}`);
    assert.deepEqual([...backing.subarray(0, 2)], [42, 42]);
    assert.deepEqual([...backing.subarray(10)], [42, 42]);
    assert.deepEqual([...ckpt.readRows("h", 3, 4)], expected.slice(12));
    assert.equal(ckpt.readRows("h", 2, 2).length, 0);
    assert.equal(ckpt.readElement("h", 6), 65504);
    assert.throws(() => ckpt.readRows("h", 3, 5), RangeError);
    assert.throws(() => ckpt.readRows("h", -1, 1), RangeError);
    assert.throws(() => ckpt.readRows("h", 2, 1), RangeError);
  } finally {
    ckpt.close();
  }
});

test("BF16 widens exactly: negatives, subnormals, max, ±inf, NaN, -0, and row ranges via readTensorRange", () => {
  const bits = [0xbf80, 0xc049, 0x8000, 0xff80, 0x7f80, 0x0001, 0x8001, 0x7f7f, 0xff7f, 0x7fc0, 0x3f80, 0xbe00];
  const expected = [
    -1,
    -3.140625,
    -0,
    -Infinity,
    Infinity,
    2 ** -133,
    -(2 ** -133),
    3.3895313892515355e38,
    -3.3895313892515355e38,
    NaN,
    1,
    -0.125,
  ];
  const ckpt = rawCheckpoint("bf16", [{ name: "b", dtype: "BF16", shape: [6, 2], bytes: u16(...bits) }]);
  try {
    const all = ckpt.read("b");
    for (let i = 0; i < bits.length; i++)
      assert.ok(Object.is(all[i], expected[i]), `0x${bits[i].toString(16)}: got ${all[i]}, expected ${expected[i]}`);
    const f = openSafetensors(ckpt.fileOf("b"));
    const part = readTensorRange(f, f.tensors.get("b")!, 3, 5);
    for (let i = 0; i < 5; i++) assert.ok(Object.is(part[i], expected[3 + i]), `element ${3 + i}`);
    assert.deepEqual([...ckpt.readRows("b", 0, 2)], expected.slice(0, 4));
  } finally {
    ckpt.close();
  }
});

test("reading outside a tensor's elements is refused, not served from the next tensor", () => {
  const ckpt = rawCheckpoint("bounds", [
    { name: "a", dtype: "F32", shape: [2], bytes: new Uint8Array(new Float32Array([1, 2]).buffer) },
    { name: "b", dtype: "F32", shape: [2], bytes: new Uint8Array(new Float32Array([3, 4]).buffer) },
  ]);
  try {
    assert.equal(ckpt.readElement("a", 1), 2);
    assert.throws(() => ckpt.readElement("a", 2), RangeError);
    assert.throws(() => ckpt.readElement("a", -1), RangeError);
    const f = openSafetensors(ckpt.fileOf("a"));
    assert.throws(() => readTensorRange(f, f.tensors.get("a")!, 1, 2), RangeError);
    // An output view too small for the range would be written past its end.
    const backing = new Float32Array(4).fill(9);
    assert.throws(() => readTensorRange(f, f.tensors.get("a")!, 0, 2, backing.subarray(0, 1)), RangeError);
    assert.deepEqual([...backing], [9, 9, 9, 9]);
  } finally {
    ckpt.close();
  }
});

test("an unsupported dtype (I64) is accepted in the header; reading it is UNSUPPORTED_DTYPE naming the tensor", () => {
  const ckpt = rawCheckpoint("i64", [
    { name: "position_ids", dtype: "I64", shape: [2], bytes: new Uint8Array(new BigInt64Array([0n, 1n]).buffer) },
    { name: "w", dtype: "F32", shape: [1], bytes: new Uint8Array(new Float32Array([0.5]).buffer) },
  ]);
  try {
    assert.equal(ckpt.info("position_ids").dtype, "I64");
    assert.equal(ckpt.info("position_ids").bytes, 16);
    const path = ckpt.fileOf("position_ids");
    throwsCheckpoint(() => ckpt.read("position_ids"), "UNSUPPORTED_DTYPE", path, '"position_ids"', "I64");
    throwsCheckpoint(() => ckpt.readRows("position_ids", 0, 1), "UNSUPPORTED_DTYPE", path, '"position_ids"');
    assert.deepEqual([...ckpt.read("w")], [0.5]);
  } finally {
    ckpt.close();
  }
  const sizes: Record<string, number> = { U8: 1, I8: 1, BOOL: 1, F8_E4M3: 1, F64: 8, I32: 4, U16: 2 };
  for (const [dtype, size] of Object.entries(sizes)) {
    const path = file(bytesOf({ t: { dtype, shape: [8], data_offsets: [0, 8 * size] } }, 8 * size));
    const f = openSafetensors(path);
    throwsCheckpoint(() => readTensorRange(f, f.tensors.get("t")!, 0, 1), "UNSUPPORTED_DTYPE", path, '"t"', dtype);
  }
});

// ---- dtype.ts: rounding to nearest even, and exact widening ----

/** The float32 whose bits are `u`. */
const fromBits = (u: number) => new Float32Array(new Uint32Array([u]).buffer)[0];

test("toBf16Bits rounds float32 to nearest even", () => {
  const cases: [number, number][] = [
    [1, 0x3f80],
    [-1.5, 0xbfc0],
    [0, 0x0000],
    [-0, 0x8000],
    [fromBits(0x3f808000), 0x3f80], // 1 + 2^-8: halfway, 0x3f80 is even → down
    [fromBits(0x3f818000), 0x3f82], // 1 + 3·2^-8: halfway, 0x3f81 is odd → up
    [fromBits(0x3f808001), 0x3f81], // just above halfway → up
    [fromBits(0x3f807fff), 0x3f80], // just below halfway → down
    [fromBits(0xbf818000), 0xbf82], // negatives round the magnitude the same way
    [Math.PI, 0x4049], // 0x40490fdb → 0x4049
    [fromBits(0x7f7fffff), 0x7f80], // float32 max rounds up to +inf
    [fromBits(0x7f7f7fff), 0x7f7f], // stays at bf16 max
    [Infinity, 0x7f80],
    [-Infinity, 0xff80],
    [fromBits(0x00008000), 0x0000], // subnormal halfway to even zero
    [fromBits(0x00018000), 0x0002], // subnormal halfway, odd → up
  ];
  for (const [x, bits] of cases)
    assert.equal(
      toBf16Bits(x),
      bits,
      `toBf16Bits(${x}) = 0x${toBf16Bits(x).toString(16)}, expected 0x${bits.toString(16)}`,
    );
  const nan = toBf16Bits(NaN);
  assert.equal(nan & 0x7f80, 0x7f80, "NaN keeps an all-ones exponent");
  assert.ok(nan & 0x7f, "NaN keeps a non-zero mantissa");
  assert.equal(
    toBf16Bits(fromBits(0x7f800001)) & 0x7f,
    0x40,
    "a NaN with only low mantissa bits stays NaN (quiet bit set)",
  );
});

test("toF16Bits rounds float32 to nearest even, with subnormals and overflow to infinity", () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [0, 0x0000],
    [-0, 0x8000],
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
    [65504, 0x7bff],
    [65519, 0x7bff], // below halfway to 65536
    [65520, 0x7c00], // halfway between max and 2^16: the even neighbour is infinity
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [1 + 2 ** -11, 0x3c00], // halfway, even → down
    [1 + 3 * 2 ** -11, 0x3c02], // halfway, odd → up
    [fromBits(0x3f801001), 0x3c01], // just above halfway
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [-(2 ** -24), 0x8001],
    [2 ** -25, 0x0000], // halfway to the smallest subnormal → even zero
    [fromBits(0x33000001), 0x0001], // just above 2^-25 → smallest subnormal
    [1.5 * 2 ** -24, 0x0002], // halfway 1↔2 → 2
    [2.5 * 2 ** -24, 0x0002], // halfway 2↔3 → 2
    [2 ** -14 - 2 ** -25, 0x0400], // halfway between largest subnormal and smallest normal → normal (even)
    [1023 * 2 ** -24, 0x03ff],
    [2 ** -26, 0x0000],
    [1e-10, 0x0000],
    [-1e-10, 0x8000],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
  ];
  for (const [x, bits] of cases)
    assert.equal(
      toF16Bits(x),
      bits,
      `toF16Bits(${x}) = 0x${toF16Bits(x).toString(16)}, expected 0x${bits.toString(16)}`,
    );
  const nan = toF16Bits(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.ok(nan & 0x3ff, "NaN keeps a non-zero mantissa");
});

/** Widen every 16-bit pattern of `dtype` with widenInPlace (the reader's path). */
function widenAll(dtype: "F16" | "BF16"): Float32Array {
  const out = new Float32Array(65536);
  const raw = new Uint16Array(out.buffer, 0, 65536);
  for (let h = 0; h < 65536; h++) raw[h] = h;
  widenInPlace(out, 65536, dtype);
  return out;
}

test("every F16 and BF16 value widens to float32 and narrows back to the same bits", () => {
  for (const [dtype, narrow] of [
    ["F16", toF16Bits],
    ["BF16", toBf16Bits],
  ] as const) {
    const wide = widenAll(dtype);
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(wide[h])) {
        const exp = dtype === "F16" ? 0x7c00 : 0x7f80;
        assert.ok((h & exp) === exp && (h & ~exp & 0x7fff) !== 0, `${dtype} 0x${h.toString(16)} widened to NaN`);
        assert.ok(Number.isNaN(wide[narrow(wide[h])]), `${dtype} 0x${h.toString(16)}: NaN narrows to NaN`);
        continue;
      }
      const back = narrow(wide[h]);
      if (back !== h) assert.fail(`${dtype} 0x${h.toString(16)} → ${wide[h]} → 0x${back.toString(16)}`);
    }
  }
});

test("encode is the dtype.ts conversion, little-endian", () => {
  const x = new Float32Array([1, -2, 0.1, 65520]);
  assert.deepEqual([...new Uint16Array(encode(x, "F16").slice().buffer)], [0x3c00, 0xc000, 0x2e66, 0x7c00]);
  assert.deepEqual([...new Uint16Array(encode(x, "BF16").slice().buffer)], [0x3f80, 0xc000, 0x3dcd, 0x4780]);
  assert.deepEqual(encode(x, "F32"), new Uint8Array(x.buffer));
  // Encoding a view encodes only the view.
  assert.equal(encode(x.subarray(1, 3), "F32").length, 8);
  assert.deepEqual(new Float32Array(encode(x.subarray(1, 3), "F32").slice().buffer), new Float32Array([-2, 0.1]));
});
