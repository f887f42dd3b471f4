// The GGUF container reader: one test per fault code, each file built byte by byte here (independently of
// src/gguf/writer.ts), checking the code and that the message names the file; lying lengths fail at once;
// file kinds that could hang; split sets; then the real files' layout against their expected.json.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckpointError } from "../src/errors.js";
import {
  describeType,
  MAX_ARRAY_ITEMS,
  openGguf,
  parseShardName,
  readGgufFile,
  shardPath,
  type GgufKv,
} from "../src/gguf/container.js";
import { fixturePath, skipWithoutFixtures } from "./fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "sw-gguf-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// ---- a tiny GGUF byte builder ----

/** Little-endian byte assembly. */
class B {
  private out: number[] = [];
  u8(v: number): this {
    this.out.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v).u8(v >> 8);
  }
  u32(v: number): this {
    for (let i = 0; i < 4; i++) this.u8(Math.floor(v / 2 ** (8 * i)));
    return this;
  }
  u64(v: number | bigint): this {
    const n = BigInt(v);
    for (let i = 0n; i < 8n; i++) this.u8(Number((n >> (8n * i)) & 0xffn));
    return this;
  }
  f32(v: number): this {
    const b = new Uint8Array(new Float32Array([v]).buffer);
    b.forEach((x) => this.u8(x));
    return this;
  }
  raw(bytes: Uint8Array | number[]): this {
    for (const x of bytes) this.u8(x);
    return this;
  }
  str(s: string, length?: number | bigint): this {
    const b = new TextEncoder().encode(s);
    return this.u64(length ?? b.length).raw(b);
  }
  pad(alignment: number): this {
    while (this.out.length % alignment) this.u8(0);
    return this;
  }
  get length(): number {
    return this.out.length;
  }
  bytes(): Uint8Array {
    return new Uint8Array(this.out);
  }
}

interface TensorSpec {
  name: string;
  ne: (number | bigint)[];
  type?: number;
  offset?: number | bigint;
  nDims?: number;
}

interface Spec {
  magic?: string;
  version?: number;
  tensorCount?: number | bigint;
  kvCount?: number | bigint;
  /** Each writes one whole kv (key, type, value). */
  kvs?: ((b: B) => void)[];
  tensors?: TensorSpec[];
  alignment?: number;
  /** Bytes after the padded tensor infos (default: zeros for every tensor, F32 sizes). */
  data?: number;
  /** Cut the file to this many bytes. */
  cut?: number;
}

const u32kv = (key: string, v: number) => (b: B) => b.str(key).u32(4).u32(v);
const strkv = (key: string, v: string) => (b: B) => b.str(key).u32(8).str(v);

function build(spec: Spec): Uint8Array {
  const b = new B();
  b.raw(new TextEncoder().encode(spec.magic ?? "GGUF"));
  b.u32(spec.version ?? 3);
  const tensors = spec.tensors ?? [];
  const kvs = spec.kvs ?? [];
  b.u64(spec.tensorCount ?? tensors.length).u64(spec.kvCount ?? kvs.length);
  for (const kv of kvs) kv(b);
  let offset = 0;
  for (const t of tensors) {
    b.str(t.name).u32(t.nDims ?? t.ne.length);
    for (const n of t.ne) b.u64(n);
    b.u32(t.type ?? 0).u64(t.offset ?? offset);
    offset += Math.ceil((Number(t.ne.reduce((x, y) => BigInt(x) * BigInt(y), 1n)) * 4) / 32) * 32;
  }
  b.pad(spec.alignment ?? 32);
  b.raw(new Uint8Array(spec.data ?? offset));
  const bytes = b.bytes();
  return spec.cut === undefined ? bytes : bytes.subarray(0, spec.cut);
}

let counter = 0;
function file(bytes: Uint8Array, name = `t${counter++}.gguf`): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

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

function fault(spec: Spec | Uint8Array, code: string, ...mentions: string[]): void {
  const path = file(spec instanceof Uint8Array ? spec : build(spec));
  const t0 = performance.now();
  throwsCheckpoint(() => readGgufFile(path), code, path, ...mentions);
  assert.ok(performance.now() - t0 < 500, "a fault is found at once");
}

const ok = (spec: Spec) => readGgufFile(file(build(spec)));

// ---- a valid file first: the builder and the reader agree ----

test("a valid hand-built file: version, counts, values, tensor placement", () => {
  const f = ok({
    kvs: [strkv("general.architecture", "llama"), u32kv("llama.block_count", 2)],
    tensors: [
      { name: "a", ne: [4, 2] },
      { name: "b", ne: [3] },
    ],
  });
  assert.equal(f.version, 3);
  assert.equal(f.alignment, 32);
  assert.deepEqual([...f.metadata.keys()], ["general.architecture", "llama.block_count"]);
  assert.deepEqual(f.metadata.get("llama.block_count"), { type: "UINT32", value: 2 });
  assert.deepEqual(
    f.tensors.map((t) => [t.name, t.type.name, t.ne, t.offset, t.byteLength]),
    [
      ["a", "F32", [4, 2], 0, 32],
      ["b", "F32", [3], 32, 12],
    ],
  );
  // 24 header bytes, two kvs, two infos, padded to 32.
  assert.equal(f.dataOffset % 32, 0);
  assert.equal(f.tensors[1].start, f.dataOffset + 32);
  // Version 2 has the same layout.
  assert.equal(ok({ version: 2 }).version, 2);
});

test("every value type reads back, arrays included", () => {
  const f = ok({
    kvs: [
      (b) => b.str("u8").u32(0).u8(200),
      (b) => b.str("i8").u32(1).u8(0xfe),
      (b) => b.str("u16").u32(2).u16(65535),
      (b) => b.str("i16").u32(3).u16(0x8000),
      (b) => b.str("u32").u32(4).u32(0xffffffff),
      (b) => b.str("i32").u32(5).u32(0xfffffffd),
      (b) => b.str("f32").u32(6).f32(0.1),
      (b) => b.str("bool").u32(7).u8(1),
      (b) => b.str("str").u32(8).str("héllo"),
      (b) =>
        b
          .str("u64")
          .u32(10)
          .u64(2n ** 64n - 1n),
      (b) =>
        b
          .str("i64")
          .u32(11)
          .u64(2n ** 64n - 5n),
      (b) =>
        b
          .str("f64")
          .u32(12)
          .raw(new Uint8Array(new Float64Array([-2.5]).buffer)),
      (b) => b.str("arr").u32(9).u32(8).u64(2).str("a").str("\ufeffb"),
      (b) => b.str("ints").u32(9).u32(5).u64(3).u32(1).u32(0xffffffff).u32(7),
    ],
  });
  const v = (k: string) => f.metadata.get(k)!.value;
  assert.deepEqual(["u8", "i8", "u16", "i16", "u32", "i32", "bool", "str", "u64", "i64", "f64"].map(v), [
    200,
    -2,
    65535,
    -32768,
    4294967295,
    -3,
    true,
    "héllo",
    2n ** 64n - 1n,
    -5n,
    -2.5,
  ]);
  assert.equal(v("f32"), Math.fround(0.1));
  assert.deepEqual(f.metadata.get("arr"), { type: "ARRAY", itemType: "STRING", value: ["a", "\ufeffb"] });
  assert.deepEqual(v("ints"), [1, -1, 7]);
  assert.equal(describeType(f.metadata.get("ints")!), "ARRAY[INT32]");
});

// ---- the fixed header ----

test("TRUNCATED: a file too short, or cut inside a fixed-size field", () => {
  fault(new Uint8Array(0), "TRUNCATED", "0 bytes");
  fault(new TextEncoder().encode("GGU"), "TRUNCATED");
  fault({ cut: 6 }, "TRUNCATED", "version");
  fault({ cut: 20 }, "TRUNCATED", "kv count");
  // Inside a kv's value type, and inside a tensor info's ne.
  fault({ kvs: [u32kv("k", 1)], cut: 24 + 8 + 1 + 4 + 2 }, "TRUNCATED", `key "k"`);
  const name = "a_tensor_with_a_long_name";
  fault({ tensors: [{ name, ne: [4] }], cut: 24 + 8 + name.length + 4 + 3 }, "TRUNCATED", "ne[0]");
});

test("BAD_MAGIC: not a GGUF file; a legacy GGML/GGJT file says so", () => {
  fault({ magic: "GGML" }, "BAD_MAGIC", `"GGML"`);
  fault(new TextEncoder().encode("version https://git-lfs.github.com/spec/v1\n"), "BAD_MAGIC", "not a GGUF file");
  fault({ magic: "tjgg" }, "BAD_MAGIC", "legacy GGJT");
});

test("UNSUPPORTED_VERSION: v1, unknown versions, big-endian files", () => {
  fault({ version: 1 }, "UNSUPPORTED_VERSION", "version 1", "32-bit lengths");
  fault({ version: 4 }, "UNSUPPORTED_VERSION", "version 4");
  fault({ version: 0x03000000 }, "UNSUPPORTED_VERSION", "big-endian");
});

test("KV_COUNT_TOO_LARGE / TENSOR_COUNT_TOO_LARGE: counts the file size cannot hold", () => {
  fault({ kvCount: 2n ** 63n }, "KV_COUNT_TOO_LARGE", "9223372036854775808");
  fault({ kvCount: 1 }, "KV_COUNT_TOO_LARGE");
  fault({ tensorCount: 2n ** 64n - 1n }, "TENSOR_COUNT_TOO_LARGE", "18446744073709551615");
  fault({ tensorCount: 1 }, "TENSOR_COUNT_TOO_LARGE");
});

// ---- key-value pairs ----

test("STRING_TOO_LONG: a key or value length beyond the bytes left or the limits", () => {
  fault(
    {
      kvs: [
        (b) =>
          b
            .str("k", 2n ** 62n)
            .u32(4)
            .u32(0),
      ],
    },
    "STRING_TOO_LONG",
    "4611686018427387904",
  );
  fault({ kvs: [(b) => b.str("x".repeat(70000)).u32(4).u32(0)] }, "STRING_TOO_LONG", "limit is 65535");
  fault({ kvs: [(b) => b.str("k").u32(8).str("abc", 1000)] }, "STRING_TOO_LONG", `key "k"`, "1000");
});

test("ARRAY_TOO_LONG: an item count the file cannot hold, or beyond the limit", () => {
  fault(
    {
      kvs: [
        (b) =>
          b
            .str("a")
            .u32(9)
            .u32(4)
            .u64(2n ** 40n),
      ],
    },
    "ARRAY_TOO_LONG",
    `"a"`,
    "1099511627776",
  );
  fault({ kvs: [(b) => b.str("a").u32(9).u32(8).u64(100).str("x")] }, "ARRAY_TOO_LONG", "100 STRING items");
  fault(
    {
      kvs: [
        (b) =>
          b
            .str("a")
            .u32(9)
            .u32(0)
            .u64(MAX_ARRAY_ITEMS + 1),
      ],
    },
    "ARRAY_TOO_LONG",
    "limit",
  );
});

test("BAD_VALUE_TYPE: unknown value and item types; arrays of arrays", () => {
  fault({ kvs: [(b) => b.str("k").u32(13).u32(0)] }, "BAD_VALUE_TYPE", `key "k"`, "value type 13");
  fault({ kvs: [(b) => b.str("k").u32(9).u32(99).u64(0)] }, "BAD_VALUE_TYPE", "99");
  fault({ kvs: [(b) => b.str("k").u32(9).u32(9).u64(0)] }, "BAD_VALUE_TYPE", "array of arrays");
});

test("BAD_BOOL, BAD_UTF8, BAD_KEY, DUPLICATE_KEY", () => {
  fault({ kvs: [(b) => b.str("flag").u32(7).u8(2)] }, "BAD_BOOL", "flag", "2");
  fault({ kvs: [(b) => b.u64(2).raw([0xff, 0xfe]).u32(4).u32(0)] }, "BAD_UTF8");
  fault({ kvs: [(b) => b.str("k").u32(8).u64(1).raw([0x80])] }, "BAD_UTF8", `key "k"`);
  fault({ kvs: [(b) => b.str("").u32(4).u32(0)] }, "BAD_KEY", "empty key");
  fault({ kvs: [u32kv("a.b", 1), u32kv("a.b", 2)] }, "DUPLICATE_KEY", `"a.b"`);
});

test("BAD_ALIGNMENT: general.alignment zero, not a power of two, or not a UINT32", () => {
  fault({ kvs: [u32kv("general.alignment", 0)] }, "BAD_ALIGNMENT", "0");
  fault({ kvs: [u32kv("general.alignment", 48)] }, "BAD_ALIGNMENT", "48");
  fault({ kvs: [(b) => b.str("general.alignment").u32(10).u64(32)] }, "BAD_ALIGNMENT", "UINT64");
});

test("general.alignment is honoured for the data section and the tensor offsets", () => {
  const spec: Spec = { kvs: [u32kv("general.alignment", 256)], tensors: [{ name: "a", ne: [4] }], alignment: 256 };
  const f = ok(spec);
  assert.equal(f.alignment, 256);
  assert.equal(f.dataOffset, 256);
  // 32-aligned offsets are misaligned under 256.
  const two = [
    { name: "a", ne: [4] },
    { name: "b", ne: [4], offset: 32 },
  ];
  fault({ ...spec, tensors: two, data: 512 }, "MISALIGNED_TENSOR", `"b"`, "256");
});

// ---- tensor infos ----

test("BAD_TENSOR_NAME, BAD_DIMS, SIZE_OVERFLOW", () => {
  fault({ tensors: [{ name: "", ne: [4] }] }, "BAD_TENSOR_NAME");
  fault({ tensors: [{ name: "t", ne: [], nDims: 0 }] }, "BAD_DIMS", `"t"`, "0 dimensions");
  fault({ tensors: [{ name: "t", ne: [1, 1, 1, 1, 1] }] }, "BAD_DIMS", "5 dimensions");
  fault({ tensors: [{ name: "t", ne: [2 ** 32, 2 ** 32] }], data: 0 }, "SIZE_OVERFLOW", `"t"`);
  fault({ tensors: [{ name: "t", ne: [2n ** 63n, 0] }], data: 0 }, "SIZE_OVERFLOW");
  // Elements fit, bytes do not.
  fault({ tensors: [{ name: "t", ne: [2 ** 26, 2 ** 26] }], data: 0 }, "SIZE_OVERFLOW");
});

test("UNKNOWN_GGML_TYPE: unknown ids and ids ggml removed", () => {
  fault({ tensors: [{ name: "t", ne: [32], type: 99 }] }, "UNKNOWN_GGML_TYPE", `"t"`, "99");
  fault({ tensors: [{ name: "t", ne: [32], type: 31 }] }, "UNKNOWN_GGML_TYPE", "Q4_0_4_4", "removed");
});

test("PARTIAL_BLOCK: ne0 not a multiple of the type's block", () => {
  fault({ tensors: [{ name: "t", ne: [33, 2], type: 2 }] }, "PARTIAL_BLOCK", "33", "Q4_0", "32");
});

test("MISALIGNED_TENSOR, TENSOR_OUT_OF_BOUNDS, OVERLAP, DUPLICATE_TENSOR", () => {
  fault({ tensors: [{ name: "t", ne: [4], offset: 4 }], data: 64 }, "MISALIGNED_TENSOR", `"t"`, "4");
  fault({ tensors: [{ name: "t", ne: [4], offset: 2n ** 60n }] }, "TENSOR_OUT_OF_BOUNDS", `"t"`);
  fault({ tensors: [{ name: "t", ne: [16] }], data: 63 }, "TENSOR_OUT_OF_BOUNDS", "truncated?");
  const overlapping = [
    { name: "a", ne: [16] },
    { name: "b", ne: [16], offset: 32 },
  ];
  fault({ tensors: overlapping, data: 128 }, "OVERLAP", `"b"`, `"a"`);
  fault(
    {
      tensors: [
        { name: "a", ne: [4] },
        { name: "a", ne: [4] },
      ],
    },
    "DUPLICATE_TENSOR",
    `"a"`,
  );
});

// ---- what is opened at all ----

test("only regular files are opened: directory, FIFO, dangling symlink, missing file", () => {
  const folder = join(dir, "folder.gguf");
  mkdirSync(folder);
  throwsCheckpoint(() => readGgufFile(folder), "NOT_A_FILE", folder, "directory");
  const link = join(dir, "dangling.gguf");
  symlinkSync(join(dir, "nowhere.gguf"), link);
  throwsCheckpoint(() => readGgufFile(link), "DANGLING_SYMLINK", link, "missing file");
  throwsCheckpoint(() => readGgufFile(join(dir, "absent.gguf")), "NOT_FOUND", join(dir, "absent.gguf"));
  const fifo = join(dir, "pipe.gguf");
  try {
    execFileSync("mkfifo", [fifo]);
  } catch {
    return; // no mkfifo on this system
  }
  // Would block forever in a plain open(); must fail at once.
  throwsCheckpoint(() => readGgufFile(fifo), "NOT_A_FILE", fifo, "FIFO");
  // A symlink to a real file is fine.
  const real = file(build({}));
  const good = join(dir, "link.gguf");
  symlinkSync(real, good);
  assert.equal(readGgufFile(good).tensors.length, 0);
});

// ---- split sets ----

/** Shard k (1-based) of n with these tensors; the first carries `extra` metadata. */
function shard(prefix: string, k: number, n: number, tensors: TensorSpec[], total: number, extra: Spec["kvs"] = []) {
  const kvs = [
    ...(k === 1 ? extra : []),
    (b: B) =>
      b
        .str("split.no")
        .u32(2)
        .u16(k - 1),
    (b: B) => b.str("split.count").u32(2).u16(n),
    (b: B) => b.str("split.tensors.count").u32(5).u32(total),
  ];
  const path = shardPath(prefix, k, n);
  writeFileSync(path, build({ kvs, tensors }));
  return path;
}

test("a split set opens from any shard as one tensor directory", () => {
  const prefix = join(dir, "model");
  const paths = [
    shard(prefix, 1, 3, [{ name: "a", ne: [4] }], 4, [strkv("general.architecture", "llama")]),
    shard(
      prefix,
      2,
      3,
      [
        { name: "b", ne: [8] },
        { name: "c", ne: [2] },
      ],
      4,
    ),
    shard(prefix, 3, 3, [{ name: "d", ne: [1] }], 4),
  ];
  assert.equal(paths[1], join(dir, "model-00002-of-00003.gguf"));
  assert.deepEqual(parseShardName(paths[2]), { prefix, index: 3, count: 3 });
  for (const p of paths) {
    const m = openGguf(p);
    assert.equal(m.path, p);
    assert.deepEqual(
      m.files.map((f) => f.path),
      paths,
    );
    assert.deepEqual([...m.tensors.keys()], ["a", "b", "c", "d"]);
    assert.equal(m.tensors.get("c")!.file, paths[1]);
    assert.equal(m.tensors.get("c")!.start, m.files[1].dataOffset + 32);
    assert.equal(m.metadata.get("general.architecture")!.value, "llama");
  }
});

test("split faults: MISSING_SHARD, SPLIT_MISMATCH, DUPLICATE_TENSOR across shards", () => {
  const sub = join(dir, "splits");
  mkdirSync(sub);
  let n = 0;
  const fresh = () => join(sub, `m${n++}`);

  let p = fresh();
  const first = shard(p, 1, 2, [{ name: "a", ne: [4] }], 2);
  throwsCheckpoint(() => openGguf(first), "MISSING_SHARD", shardPath(p, 2, 2), "shard 2 of 2");

  p = fresh();
  shard(p, 1, 2, [{ name: "a", ne: [4] }], 2);
  writeFileSync(
    shardPath(p, 2, 2),
    build({
      kvs: [
        (b) => b.str("split.no").u32(2).u16(0),
        (b) => b.str("split.count").u32(2).u16(2),
        (b) => b.str("split.tensors.count").u32(5).u32(2),
      ],
      tensors: [{ name: "b", ne: [4] }],
    }),
  );
  throwsCheckpoint(() => openGguf(shardPath(p, 1, 2)), "SPLIT_MISMATCH", shardPath(p, 2, 2), "split.no 0");

  p = fresh();
  shard(p, 1, 2, [{ name: "a", ne: [4] }], 3);
  shard(p, 2, 2, [{ name: "b", ne: [4] }], 3);
  throwsCheckpoint(() => openGguf(shardPath(p, 2, 2)), "SPLIT_MISMATCH", shardPath(p, 1, 2), "3", "2 tensors");

  p = fresh();
  shard(p, 1, 2, [{ name: "a", ne: [4] }], 2);
  shard(p, 2, 2, [{ name: "b", ne: [4] }], 5);
  throwsCheckpoint(() => openGguf(shardPath(p, 1, 2)), "SPLIT_MISMATCH", shardPath(p, 2, 2), "split.tensors.count 5");

  p = fresh();
  shard(p, 1, 2, [{ name: "a", ne: [4] }], 2);
  writeFileSync(shardPath(p, 2, 2), build({ tensors: [{ name: "b", ne: [4] }] }));
  throwsCheckpoint(() => openGguf(shardPath(p, 1, 2)), "SPLIT_MISMATCH", shardPath(p, 2, 2), "lacks");

  p = fresh();
  shard(p, 1, 2, [{ name: "a", ne: [4] }], 2);
  shard(p, 2, 2, [{ name: "a", ne: [4] }], 2);
  throwsCheckpoint(() => openGguf(shardPath(p, 1, 2)), "DUPLICATE_TENSOR", shardPath(p, 2, 2), `"a"`);

  // A shard renamed away from the pattern cannot find its siblings.
  const renamed = join(sub, "renamed.gguf");
  writeFileSync(renamed, readFileSync(first));
  throwsCheckpoint(() => openGguf(renamed), "SPLIT_MISMATCH", renamed, "split.count 2");
});

// ---- the real files ----

const ggufFixtures = () =>
  readdirSync(fixturePath("gguf"))
    .filter((f) => f.endsWith(".gguf"))
    .sort();

test("every fixture's metadata and tensor infos equal its expected.json", { skip: skipWithoutFixtures }, () => {
  const files = ggufFixtures();
  assert.equal(files.length, 10);
  for (const name of files) {
    const e = JSON.parse(readFileSync(fixturePath("gguf", name.replace(/\.gguf$/, ".expected.json")), "utf8")).gguf;
    const m = openGguf(fixturePath("gguf", name));
    const f = m.files[0];
    assert.deepEqual(
      [f.version, f.alignment, f.dataOffset, f.tensors.length, f.metadata.size],
      [e.version, e.alignment, e.dataOffset, e.tensorCount, e.kvCount],
      name,
    );
    const meta: Record<string, { type: string; value: unknown }> = {};
    for (const [k, kv] of f.metadata) meta[k] = { type: describeType(kv), value: plain(kv) };
    assert.deepEqual(meta, e.metadata, name);
    assert.deepEqual(Object.keys(meta), Object.keys(e.metadata), `${name}: key order`);
    const layout = (t: any) => ({
      name: t.name,
      type: t.type,
      typeId: t.typeId,
      ne: t.ne,
      offset: t.offset,
      nbytes: t.nbytes,
    });
    assert.deepEqual(
      f.tensors.map((t) => ({ ...t, type: t.type.name, typeId: t.type.id, nbytes: t.byteLength })).map(layout),
      e.tensors.map(layout),
      name,
    );
  }
});

/** A value as JSON would hold it. */
function plain(kv: GgufKv): unknown {
  const one = (v: unknown) => (typeof v === "bigint" ? Number(v) : v);
  return kv.type === "ARRAY" ? kv.value.map(one) : one(kv.value);
}

test("every truncation of a real header is refused, never misread", { skip: skipWithoutFixtures }, () => {
  const bytes = readFileSync(fixturePath("gguf", "qwen2-bf16.F32.gguf"));
  const dataOffset = 4512;
  const cuts = [0, 3, 4, 7, 8, 23, 24, 100, 1000, 2345, 4000, 4400, dataOffset - 1, dataOffset, bytes.length - 1];
  for (const cut of cuts) {
    const path = file(bytes.subarray(0, cut));
    assert.throws(
      () => readGgufFile(path),
      (e: unknown) => {
        assert.ok(e instanceof CheckpointError, String(e));
        assert.ok(
          [
            "TRUNCATED",
            "STRING_TOO_LONG",
            "ARRAY_TOO_LONG",
            "TENSOR_OUT_OF_BOUNDS",
            "KV_COUNT_TOO_LARGE",
            "TENSOR_COUNT_TOO_LARGE",
          ].includes(e.code),
          `${cut}: ${e.code} ${e.message}`,
        );
        return true;
      },
      `cut at ${cut}`,
    );
  }
});
