// The safetensors reader's refusals word for word, and the parts of it the fault tests reach only through the
// CLI: the duplicate-key scan over the header text, `__metadata__`, Git LFS pointers, reads that fail or come up
// short, the shared descriptors, and the range checks of readTensorRange / readTensorBytes. Every file is built
// from bytes here, in os.tmpdir().
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckpointError } from "../src/errors.js";
import {
  closeFile,
  fdFor,
  openSafetensors,
  parseHeader,
  readExactly,
  readTensorBytes,
  readTensorRange,
} from "../src/checkpoint/safetensors.js";

const dir = mkdtempSync(join(tmpdir(), "sw-safetensors-messages-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function file(bytes: Uint8Array | string): string {
  const path = join(dir, `m${counter++}.safetensors`);
  writeFileSync(path, bytes);
  return path;
}

/** u64 LE header length + the header text (exactly as given, so keys can repeat) + `data` zero bytes. */
function bytesOf(headerText: string, data = 0): Uint8Array {
  const body = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + body.length + data);
  new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true);
  out.set(body, 8);
  return out;
}

/** Opening these bytes fails with exactly `${path}: ${message}` and this code. */
function refuses(bytes: Uint8Array | string, code: string, message: string): void {
  const path = file(bytes);
  assert.throws(
    () => openSafetensors(path),
    (e: unknown) => {
      assert.ok(e instanceof CheckpointError, `expected a CheckpointError, got ${e}`);
      assert.equal(e.message, `${path}: ${message}`);
      assert.equal(e.code, code);
      return true;
    },
  );
}

const F32 = (begin: number, end: number, shape = [(end - begin) / 4]) =>
  `{"dtype":"F32","shape":${JSON.stringify(shape)},"data_offsets":[${begin},${end}]}`;

test("each refusal of the header, word for word", () => {
  refuses(
    new Uint8Array(3),
    "TRUNCATED",
    "file is 3 bytes, too short to be safetensors (8-byte header length missing)",
  );
  refuses(
    bytesOf("\u00ff").map((b, i) => (i === 8 ? 0xff : b)),
    "HEADER_NOT_UTF8",
    "header is not valid UTF-8",
  );
  refuses(bytesOf("[1]"), "HEADER_NOT_JSON", "header JSON is not an object");
  refuses(bytesOf(`{"w":5}`), "INVALID_ENTRY", 'tensor "w": header entry is not an object');
  refuses(bytesOf(`{"w":null}`), "INVALID_ENTRY", 'tensor "w": header entry is not an object');
  refuses(bytesOf(`{"":${F32(0, 4)}}`, 4), "INVALID_ENTRY", "header has a tensor with an empty name");
  refuses(
    bytesOf(`{"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}`, 1),
    "UNKNOWN_DTYPE",
    'tensor "w": unknown dtype "Q4"',
  );
  refuses(
    bytesOf(`{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, 8),
    "INVALID_SHAPE",
    'tensor "w": shape [-2] is not a list of non-negative integers',
  );
  refuses(
    bytesOf(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}`, 8),
    "INVALID_OFFSETS",
    'tensor "w": data_offsets [8,0] are not [begin, end] with 0 <= begin <= end',
  );
  refuses(
    bytesOf(`{"w":{"dtype":"F32","shape":[1073741824,1073741824,1073741824],"data_offsets":[0,8]}}`, 8),
    "SIZE_OVERFLOW",
    'tensor "w": shape [1073741824,1073741824,1073741824] overflows',
  );
  refuses(
    bytesOf(`{"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}}`, 4),
    "SIZE_MISMATCH",
    'tensor "w": BF16 × [3] is 6 bytes but data_offsets [0, 4] span 4',
  );
});

test("overlaps and gaps name the tensor and the offsets relative to the data, not the file", () => {
  refuses(
    bytesOf(`{"a":${F32(0, 8)},"b":${F32(4, 12)}}`, 12),
    "OVERLAP",
    'tensor "b" data_offsets [4, 12] overlap the previous tensor',
  );
  refuses(
    bytesOf(`{"a":${F32(0, 8)},"b":${F32(12, 16)}}`, 16),
    "GAP",
    'tensor "b" starts at 12, leaving a gap after byte 8 (offsets must be contiguous)',
  );
  refuses(
    bytesOf(`{"a":${F32(0, 8)}}`, 5),
    "TRUNCATED",
    "tensor data needs 8 bytes after the header but the file holds 5 (truncated?)",
  );
  refuses(
    bytesOf(`{"a":${F32(0, 8)}}`, 11),
    "TRAILING_BYTES",
    "3 bytes after the last tensor (offsets do not end at the end of the file)",
  );
});

test("two equal keys at the top of the header are refused, however they are spelled", () => {
  const dup = (text: string, data: number, key: string) =>
    refuses(bytesOf(text, data), "DUPLICATE_TENSOR", `header names tensor ${JSON.stringify(key)} twice`);
  dup(`{"a":${F32(0, 4)},"a":${F32(0, 4)}}`, 4, "a");
  // After entries holding arrays (the shape, the offsets) and nested objects: the depth must come back to 1.
  dup(`{"a":${F32(0, 4)},"b":${F32(4, 8)},"__metadata__":{"k":"v"},"b":${F32(4, 8)}}`, 8, "b");
  // Whitespace, newlines and tabs between a key and its colon.
  dup(`{\n  "a" :\t${F32(0, 4)},\n  "a"\n:${F32(0, 4)}\n}`, 4, "a");
  // Escaped quotes and backslashes inside the key, and brackets inside strings, which are not structure.
  dup(`{"a\\"b":${F32(0, 4)},"a\\"b":${F32(0, 4)}}`, 4, 'a"b');
  dup(`{"x\\\\":${F32(0, 4)},"x\\\\":${F32(0, 4)}}`, 4, "x\\");
  dup(`{"{[":${F32(0, 4)},"}]":${F32(4, 8)},"{[":${F32(0, 4)}}`, 8, "{[");
  // A key spelled with an escape is the same key as its plain spelling.
  dup(`{"ab":${F32(0, 4)},"\\u0061b":${F32(0, 4)}}`, 4, "ab");
});

test("equal keys inside an entry, or a key's text seen again as a value, are not a repeated tensor", () => {
  // Inside an entry (depth 2): JSON.parse keeps the last, which is valid here.
  const nested = openSafetensors(
    file(bytesOf(`{"w":{"dtype":"F16","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4)),
  );
  assert.equal(nested.tensors.get("w")!.dtype, "F32");
  // "b" first appears as a metadata value, then as a tensor name.
  const valued = openSafetensors(file(bytesOf(`{"__metadata__":{"name":"b"},"b":${F32(0, 4)}}`, 4)));
  assert.deepEqual([...valued.tensors.keys()], ["b"]);
  assert.deepEqual(valued.metadata, { name: "b" });
  // A top-level value that is a string is no key: "w" is refused for its entry, not as a repeat of "v".
  refuses(bytesOf(`{"w":"v","v":${F32(0, 4)}}`, 4), "INVALID_ENTRY", 'tensor "w": header entry is not an object');
});

test("__metadata__ maps strings to strings, or is null", () => {
  const message = `"__metadata__" must map strings to strings`;
  for (const meta of [`[]`, `["a"]`, `"text"`, `5`, `true`, `{"a":1}`, `{"a":"b","c":2}`, `{"a":null}`, `{"a":{}}`])
    refuses(bytesOf(`{"__metadata__":${meta}}`), "INVALID_METADATA", message);
  assert.deepEqual(openSafetensors(file(bytesOf(`{"__metadata__":null}`))).metadata, {});
  assert.deepEqual(openSafetensors(file(bytesOf(`{"__metadata__":{}}`))).metadata, {});
  assert.deepEqual(openSafetensors(file(bytesOf(`{"__metadata__":{"a":"1","b":""}}`))).metadata, { a: "1", b: "" });
});

test("a Git LFS pointer is named as one; other text starting with 'version ' is not", () => {
  const pointer =
    "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n";
  refuses(
    pointer,
    "LFS_POINTER",
    "is a Git LFS pointer, not the weights: fetch them with `git lfs pull` (or download the model again)",
  );
  // A pointer cut short is still one (the check reads at most the file).
  refuses(
    "version https://git-lfs",
    "LFS_POINTER",
    "is a Git LFS pointer, not the weights: fetch them with `git lfs pull` (or download the model again)",
  );
  // "version " then something else: an absurd header length, as any other text file.
  refuses(
    "version 2.0 of the weights\n",
    "HEADER_TOO_LARGE",
    `header length ${new DataView(new TextEncoder().encode("version ").buffer).getBigUint64(0, true)} exceeds the 104857600-byte limit (not a safetensors file, or corrupt)`,
  );
});

/** The descriptors this process holds open. */
const openDescriptors = () => readdirSync("/proc/self/fd").length;

test("opening a file, valid or not, leaves no descriptor open", () => {
  const good = file(bytesOf(`{"a":${F32(0, 8)}}`, 8));
  const bad = file(bytesOf(`{"a":${F32(0, 8)}}`, 4));
  const before = openDescriptors();
  for (let i = 0; i < 20; i++) {
    openSafetensors(good);
    assert.throws(() => openSafetensors(bad), CheckpointError);
  }
  assert.equal(openDescriptors(), before);
});

test("readExactly fills the buffer from the position, or names the byte where the file ended or the read failed", () => {
  const path = file(new Uint8Array([10, 11, 12, 13, 14, 15]));
  const fd = openSync(path, "r");
  try {
    const into = new Uint8Array(3);
    readExactly(fd, into, 2, path);
    assert.deepEqual([...into], [12, 13, 14]);
    assert.throws(
      () => readExactly(fd, new Uint8Array(8), 3, path),
      (e: unknown) =>
        e instanceof CheckpointError &&
        e.code === "TRUNCATED" &&
        e.message === `${path}: unexpected end of file at byte 6 (truncated?)`,
    );
  } finally {
    closeSync(fd);
  }
  // Reading a folder's descriptor fails with EISDIR: an IO error naming the byte it was reading.
  const folder = join(dir, `folder${counter++}`);
  mkdirSync(folder);
  const dirFd = openSync(folder, "r");
  try {
    assert.throws(
      () => readExactly(dirFd, new Uint8Array(4), 7, folder),
      (e: unknown) =>
        e instanceof CheckpointError &&
        e.code === "IO" &&
        e.message.startsWith(`${folder}: read failed at byte 7: `) &&
        e.message.includes("EISDIR"),
    );
  } finally {
    closeSync(dirFd);
  }
});

test("fdFor keeps one descriptor per file until closeFile, and names a file it cannot open", () => {
  const path = file(bytesOf(`{"a":${F32(0, 8)}}`, 8));
  const before = openDescriptors();
  const fd = fdFor(path);
  assert.equal(fdFor(path), fd);
  assert.equal(openDescriptors(), before + 1);
  closeFile(path);
  assert.equal(openDescriptors(), before);
  closeFile(path); // a second close is a no-op
  const again = fdFor(path);
  const bytes = new Uint8Array(8);
  readExactly(again, bytes, 0, path);
  assert.equal(new DataView(bytes.buffer).getBigUint64(0, true), BigInt(`{"a":${F32(0, 8)}}`.length));
  closeFile(path);
  const missing = join(dir, "absent.safetensors");
  assert.throws(
    () => fdFor(missing),
    (e: unknown) =>
      e instanceof CheckpointError && e.code === "IO" && e.message.startsWith(`${missing}: cannot be opened: ENOENT`),
  );
});

test("readTensorRange reads the elements asked for, and refuses a range outside the tensor word for word", () => {
  const values = new Float32Array([1.5, -2, 3.25, 4, 5, -6]);
  const header = `{"pad":${F32(0, 8)},"w":${F32(8, 32, [2, 3])}}`;
  const data = new Uint8Array(32);
  data.set(new Uint8Array(values.buffer), 8);
  const bytes = bytesOf(header, 32);
  bytes.set(data, 8 + header.length);
  const f = openSafetensors(file(bytes));
  const w = f.tensors.get("w")!;
  assert.deepEqual([...readTensorRange(f, w, 2, 3)], [3.25, 4, 5]);
  const into = new Float32Array(4).fill(9);
  readTensorRange(f, w, 5, 1, into);
  assert.deepEqual([...into], [-6, 9, 9, 9]);
  assert.deepEqual([...readTensorRange(f, w, 6, 0)], []);
  const outside = (first: number, count: number) =>
    assert.throws(
      () => readTensorRange(f, w, first, count),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message === `elements [${first}, ${first + count}) outside tensor "w" of 6 elements`,
    );
  outside(0.5, 1);
  outside(1, 1.5);
  outside(-1, 2);
  outside(2, -1);
  outside(4, 3);
  outside(6, 1);
  assert.throws(
    () => readTensorRange(f, w, 0, 3, new Float32Array(2)),
    (e: unknown) => e instanceof RangeError && e.message === `output buffer holds 2 elements, 3 requested from "w"`,
  );
  closeFile(f.path);
});

test("readTensorBytes reads stored bytes from an offset into a tensor, and refuses a range outside it", () => {
  const header = `{"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"b":{"dtype":"U8","shape":[5],"data_offsets":[3,8]}}`;
  const bytes = bytesOf(header, 8);
  bytes.set([1, 2, 3, 20, 21, 22, 23, 24], 8 + header.length);
  const f = openSafetensors(file(bytes));
  const b = f.tensors.get("b")!;
  assert.deepEqual([...readTensorBytes(f, b, 0, 5)], [20, 21, 22, 23, 24]);
  assert.deepEqual([...readTensorBytes(f, b, 2, 3)], [22, 23, 24]);
  const into = new Uint8Array(6).fill(7);
  const got = readTensorBytes(f, b, 1, 2, into);
  assert.deepEqual([...got], [21, 22]);
  assert.deepEqual([...into], [21, 22, 7, 7, 7, 7]);
  assert.deepEqual([...readTensorBytes(f, b, 5, 0)], []);
  const outside = (first: number, count: number) =>
    assert.throws(
      () => readTensorBytes(f, b, first, count),
      (e: unknown) =>
        e instanceof RangeError && e.message === `bytes [${first}, ${first + count}) outside tensor "b" of 5 bytes`,
    );
  outside(-1, 2);
  outside(0, -1);
  outside(0.5, 1);
  outside(1, 0.5);
  outside(3, 3);
  outside(5, 1);
  assert.throws(
    () => readTensorBytes(f, b, 0, 3, new Uint8Array(2)),
    (e: unknown) => e instanceof RangeError && e.message === `output buffer holds 2 bytes, 3 requested from "b"`,
  );
  closeFile(f.path);
});
