// The packed quantized checkpoint: writing it (src/quant/packed-writer.ts) through the raw-part writer, and reading
// it back (src/quant/packed-source.ts). What a reader returns must be exactly what the in-memory quantizer gives, for
// every tensor, row range, width and block kind; the folder appears whole or not at all; every fault of a packed
// folder is a CheckpointError with its own code naming the file.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Checkpoint } from "../src/checkpoint/checkpoint.js";
import { closeFile, openSafetensors, readTensorBytes } from "../src/checkpoint/safetensors.js";
import {
  writeCheckpoint,
  writeSafetensors,
  type RawTensorToWrite,
  type TensorToWrite,
} from "../src/checkpoint/writer.js";
import { CheckpointError, UserError } from "../src/errors.js";
import { PackedCheckpoint } from "../src/quant/packed-source.js";
import { defaultQuantizable, writePackedCheckpoint, type KeepRequest } from "../src/quant/packed-writer.js";
import { packedBytes } from "../src/quant/pack.js";
import { quantizeTensor } from "../src/quant/rtn.js";
import { geometry, type Bits, type Block, type Scheme } from "../src/quant/scheme.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";

const root = mkdtempSync(join(tmpdir(), "sw-quant-packed-"));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const fresh = (label: string) => join(root, `${counter++}-${label}`);

const none = { method: "none" } as const;
const rtn = (bits: Bits, block: Block, clip: Scheme["clip"] = none): Scheme => ({ kind: "rtn", bits, block, clip });

/** A small Llama-shaped checkpoint in all three float dtypes, with tokenizer files beside it. */
const SHAPES: [string, number[]][] = [
  ["model.embed_tokens.weight", [10, 8]],
  ["model.layers.0.input_layernorm.weight", [8]],
  ["model.layers.0.self_attn.q_proj.weight", [8, 8]],
  ["model.layers.0.mlp.up_proj.weight", [13, 8]],
  ["model.layers.0.mlp.down_proj.weight", [8, 13]],
  ["model.norm.weight", [8]],
  ["lm_head.weight", [10, 8]],
];

function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed + 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 0.25;
  }
  return out;
}

function tiny(label: string, edit: (t: TensorToWrite[]) => void = () => {}): string {
  const folder = fresh(label);
  const tensors: TensorToWrite[] = SHAPES.map(([name, shape], i) => ({
    name,
    shape,
    dtype: (["F32", "BF16", "F16"] as const)[i % 3],
    data: values(
      shape.reduce((a, b) => a * b, 1),
      i,
    ),
  }));
  edit(tensors);
  writeCheckpoint(folder, { model_type: "llama", hidden_size: 8 }, tensors, 1, {
    "tokenizer.json": '{"model": {}}',
    "generation_config.json": '{"bos_token_id": 1}',
    "README.md": "not copied",
  });
  return folder;
}

const DOWN = "model.layers.0.mlp.down_proj.weight";

/** Every tensor of a packed folder equals the in-memory quantizer's result (or the source, for plain ones). */
function assertReadsAsQuantizer(packedFolder: string, sourceFolder: string, scheme: Scheme, keep: KeepRequest[]) {
  const packed = PackedCheckpoint.open(packedFolder);
  const source = Checkpoint.open(sourceFolder);
  try {
    assert.deepEqual(packed.names().sort(), source.names().sort());
    for (const name of source.names()) {
      const { shape } = source.info(name);
      const original = source.read(name);
      const kept = keep.filter((k) => k.tensor === name).map((k) => k.coordinates[0] * shape[1] + k.coordinates[1]);
      const expected = defaultQuantizable(name, shape)
        ? quantizeTensor(
            original,
            shape,
            scheme,
            kept.sort((a, b) => a - b),
          ).dequantized
        : original;
      assert.deepEqual(packed.read(name), expected, name);
      // every row range, including ones that start and end inside a block
      const rowSize = shape.length > 1 ? shape[1] : 1;
      for (let r0 = 0; r0 < shape[0]; r0 += 3)
        for (const r1 of [r0, r0 + 1, Math.min(shape[0], r0 + 4)]) {
          const want = expected.subarray(r0 * rowSize, r1 * rowSize);
          assert.deepEqual(packed.readRows(name, r0, r1), want, `${name} [${r0}, ${r1})`);
        }
    }
  } finally {
    packed.close();
    source.close();
  }
}

// ---- the planted fixture ----

interface Planted {
  expectedSuperWeights: { tensor: string; row: number; column: number; value: number; class: string }[];
}

test(
  "a PackedCheckpoint written from planted-llama-bf16 returns, for every tensor, what the in-memory quantizer gives",
  { skip: skipWithoutFixtures },
  () => {
    const source = fixturePath("planted-llama-bf16");
    const ref = readReference<Planted>("planted-llama-bf16");
    const supers = ref.expectedSuperWeights.filter((s) => s.class === "super");
    assert.equal(supers.length, 2);
    const keep = supers.map((s) => ({ tensor: s.tensor, coordinates: [s.row, s.column] }));
    const schemes: [Scheme, number?][] = [
      [rtn(4, 100, { method: "zscore", k: 9 }), 1000], // blocks straddle rows; two passes over row chunks
      [rtn(3, "channel", { method: "block-pct", fraction: 0.01 })],
      [rtn(2, "tensor", { method: "tensor-pct", fraction: 1e-3 }), 5000],
      [rtn(8, 64)],
      [{ kind: "nf4", range: "absmax", block: 64, clip: none }, 3000],
    ];
    for (const [scheme, chunkElements] of schemes) {
      const out = fresh("planted");
      const summary = writePackedCheckpoint(source, out, { scheme, keep, chunkElements });
      assertReadsAsQuantizer(out, source, scheme, keep);
      // the super weights come back as reference.json has them, and config.json lists them
      const packed = PackedCheckpoint.open(out);
      try {
        for (const s of supers) {
          assert.equal(packed.readRows(s.tensor, s.row, s.row + 1)[s.column], s.value);
          assert.deepEqual(packed.kept.find((k) => k.tensor === s.tensor)?.value, s.value);
        }
        const info = packed.info(supers[0].tensor);
        const g = geometry(scheme.block, [96, 248]);
        const bits = scheme.kind === "rtn" ? scheme.bits : 4;
        assert.equal(info.dtype, scheme.kind === "rtn" ? `rtn${bits}` : "nf4");
        assert.equal(info.bytes, packedBytes(96 * 248, bits) + 8 * g.blocks + 8);
        assert.deepEqual(summary.tensors.find((t) => t.name === supers[0].tensor)?.bytes, info.bytes);
        assert.equal(packed.info("model.norm.weight").dtype, "BF16");
      } finally {
        packed.close();
      }
    }
  },
);

test(
  "a packed checkpoint larger than the shard limit is written as shards with an index, and reads the same",
  { skip: skipWithoutFixtures },
  () => {
    const source = fixturePath("planted-llama-bf16");
    const scheme = rtn(4, 64);
    const out = fresh("sharded");
    writePackedCheckpoint(source, out, { scheme, maxShardBytes: 20_000 });
    const shards = readdirSync(out).filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
    assert.ok(shards.length > 3, `${shards.length} shards`);
    assert.ok(existsSync(join(out, "model.safetensors.index.json")));
    assert.ok(!existsSync(join(out, "model.safetensors")));
    assertReadsAsQuantizer(out, source, scheme, []);
  },
);

// ---- every width and block kind, streamed in small chunks ----

for (const bits of [8, 4, 3, 2] as Bits[])
  for (const block of ["tensor", "channel", 5, 1000] as Block[])
    test(`rtn${bits} block ${block}: written in chunks of 24 elements, read back exactly`, () => {
      const source = tiny(`rtn${bits}-${block}`);
      const out = fresh("out");
      const scheme = rtn(bits, block, { method: "zscore", k: 2 });
      const keep = [
        { tensor: DOWN, coordinates: [2, 12] },
        { tensor: DOWN, coordinates: [0, 1] },
      ];
      writePackedCheckpoint(source, out, { scheme, keep, chunkElements: 24 });
      assertReadsAsQuantizer(out, source, scheme, keep);
    });

test("nf4 minmax with tensor-pct clipping, chunks of one row", () => {
  const source = tiny("nf4");
  const out = fresh("out");
  const scheme: Scheme = { kind: "nf4", range: "minmax", block: 7, clip: { method: "tensor-pct", fraction: 0.05 } };
  writePackedCheckpoint(source, out, { scheme, chunkElements: 1 });
  assertReadsAsQuantizer(out, source, scheme, []);
});

// ---- the folder ----

test("the output folder: packed parts, plain tensors byte for byte, tokenizer files, the quantization section", () => {
  const source = tiny("layout");
  const out = fresh("out");
  const scheme = rtn(4, 16, { method: "block-pct", fraction: 1e-5 });
  writePackedCheckpoint(source, out, { scheme, keep: [{ tensor: DOWN, coordinates: [3, 4] }] });
  const files = ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"];
  assert.deepEqual(readdirSync(out).sort(), files);
  assert.equal(readFileSync(join(out, "tokenizer.json"), "utf8"), '{"model": {}}');
  const file = openSafetensors(join(out, "model.safetensors"));
  const src = openSafetensors(join(source, "model.safetensors"));
  try {
    const t = (name: string) => file.tensors.get(name)!;
    assert.deepEqual([t(`${DOWN}.qweight`).dtype, t(`${DOWN}.qweight`).shape], ["U8", [52]]);
    assert.deepEqual([t(`${DOWN}.qscale`).dtype, t(`${DOWN}.qscale`).shape], ["F32", [7]]);
    assert.deepEqual([t(`${DOWN}.qmin`).dtype, t(`${DOWN}.qmin`).shape], ["F32", [7]]);
    assert.deepEqual(
      [
        t(`${DOWN}.keep_index`).dtype,
        [...new Int32Array(readTensorBytes(file, t(`${DOWN}.keep_index`), 0, 4).slice().buffer)],
      ],
      ["I32", [3 * 13 + 4]],
    );
    assert.equal(t("model.layers.0.self_attn.q_proj.weight.keep_index"), undefined);
    for (const plain of ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]) {
      const a = t(plain),
        b = src.tensors.get(plain)!;
      assert.equal(a.dtype, b.dtype);
      assert.deepEqual(readTensorBytes(file, a, 0, a.byteLength), readTensorBytes(src, b, 0, b.byteLength), plain);
    }
  } finally {
    closeFile(file.path);
    closeFile(src.path);
  }
  const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
  assert.equal(config.model_type, "llama");
  const value = Checkpoint.open(source).readElement(DOWN, 3 * 13 + 4);
  assert.deepEqual(config.quantization, {
    format: "superweight-packed",
    format_version: 1,
    scheme: "rtn",
    bits: 4,
    block: 16,
    clip: "block-pct:0.00001",
    tensors: {
      "model.layers.0.self_attn.q_proj.weight": { shape: [8, 8], dtype: "F16", block_length: 16, blocks: 4, kept: 0 },
      "model.layers.0.mlp.up_proj.weight": { shape: [13, 8], dtype: "F32", block_length: 16, blocks: 7, kept: 0 },
      [DOWN]: { shape: [8, 13], dtype: "BF16", block_length: 16, blocks: 7, kept: 1 },
    },
    kept: [{ tensor: DOWN, coordinates: [3, 4], index: 43, value }],
  });
});

test("refused: --out equal to the source, around it or inside it; a non-empty folder without force; a file", () => {
  const source = tiny("refuse");
  const before = readdirSync(source).sort();
  const scheme = rtn(4, 8);
  const refuse = (out: string, mention: string, force = false) =>
    assert.throws(
      () => writePackedCheckpoint(source, out, { scheme, force }),
      (e: unknown) => e instanceof UserError && !(e instanceof CheckpointError) && e.message.includes(mention),
      out,
    );
  refuse(source, "is the source checkpoint", true);
  refuse(join(source, "."), "is the source checkpoint", true);
  refuse(dirname(source), "contains the source checkpoint", true);
  refuse(join(source, "q4"), "is inside the source checkpoint");
  const link = fresh("link");
  symlinkSync(source, link);
  refuse(join(link, "deeper", "q4"), "is inside the source checkpoint");
  refuse(link, "is the source checkpoint", true);
  const busy = fresh("busy");
  mkdirSync(busy);
  writeFileSync(join(busy, "keep.txt"), "mine");
  refuse(busy, "not empty");
  assert.equal(readFileSync(join(busy, "keep.txt"), "utf8"), "mine");
  const file = fresh("file");
  writeFileSync(file, "x");
  refuse(file, "not a folder", true);
  assert.deepEqual(readdirSync(source).sort(), before, "the source folder is untouched");
  // an empty folder is fine, and force replaces a non-empty one
  const empty = fresh("empty");
  mkdirSync(empty);
  writePackedCheckpoint(source, empty, { scheme });
  writePackedCheckpoint(source, busy, { scheme, force: true });
  assert.ok(!existsSync(join(busy, "keep.txt")) && existsSync(join(busy, "config.json")));
  // a packed checkpoint is not quantized again
  assert.throws(() => writePackedCheckpoint(empty, fresh("again"), { scheme }), /already a quantized checkpoint/);
});

test("a write that fails part-way leaves no folder, no partial sibling, and an existing folder as it was", () => {
  const source = tiny("fail");
  const parent = fresh("parent");
  mkdirSync(parent);
  const out = join(parent, "q");
  const scheme = rtn(4, 8);
  const failingAfter = (n: number) => {
    let calls = 0;
    return (fd: number, bytes: Uint8Array) => {
      if (++calls > n) throw new Error(`disk full (write ${calls})`);
      return writeSync(fd, bytes);
    };
  };
  for (const n of [0, 1, 5, 12]) {
    assert.throws(() => writePackedCheckpoint(source, out, { scheme, write: failingAfter(n) }), /disk full/);
    assert.deepEqual(readdirSync(parent), [], `after ${n} writes`);
  }
  writePackedCheckpoint(source, out, { scheme: rtn(8, 8) });
  const before = readFileSync(join(out, "model.safetensors"));
  assert.throws(() => writePackedCheckpoint(source, out, { scheme, force: true, write: failingAfter(3) }), /disk full/);
  assert.deepEqual(readdirSync(parent), ["q"]);
  assert.deepEqual(readFileSync(join(out, "model.safetensors")), before);
});

test("a weight that is not finite is NON_FINITE_WEIGHT naming the source file and tensor; nothing is written", () => {
  const source = tiny("nan", (t) => ((t[4].data as Float32Array)[17] = NaN));
  const out = fresh("out");
  throwsCheckpoint(
    () => writePackedCheckpoint(source, out, { scheme: rtn(4, 8) }),
    "NON_FINITE_WEIGHT",
    join(source, "model.safetensors"),
    DOWN,
    "element 17",
  );
  assert.ok(!existsSync(out));
  assert.deepEqual(
    readdirSync(dirname(out)).filter((f) => f.includes("partial")),
    [],
  );
});

test("held-out weights must name a quantized tensor, lie inside it and be listed once", () => {
  const source = tiny("keep");
  const bad = (keep: KeepRequest[], mention: string) =>
    assert.throws(
      () => writePackedCheckpoint(source, fresh("out"), { scheme: rtn(4, 8), keep }),
      (e: unknown) => e instanceof UserError && e.message.includes(mention),
      mention,
    );
  bad([{ tensor: "model.layers.9.mlp.down_proj.weight", coordinates: [0, 0] }], "no such tensor");
  bad([{ tensor: "model.norm.weight", coordinates: [0] }], "not quantized");
  bad([{ tensor: DOWN, coordinates: [8, 0] }], "outside");
  bad([{ tensor: DOWN, coordinates: [1] }], "outside");
  bad(
    [
      { tensor: DOWN, coordinates: [1, 2] },
      { tensor: DOWN, coordinates: [1, 2] },
    ],
    "listed twice",
  );
});

// ---- the raw-part writer and reader underneath ----

test("writeSafetensors takes raw parts of any dtype, whole or streamed; readTensorBytes reads any byte range", () => {
  const path = join(fresh("raw"), "raw.safetensors");
  mkdirSync(dirname(path));
  const u8 = Uint8Array.of(1, 2, 3, 4, 5);
  const i64 = new Uint8Array(BigInt64Array.of(-1n, 2n ** 40n).buffer);
  const parts: RawTensorToWrite[] = [
    { name: "a", dtype: "U8", shape: [5], bytes: u8 },
    { name: "b", dtype: "I64", shape: [2], bytes: () => [i64.subarray(0, 3), i64.subarray(3)] },
    { name: "c", dtype: "I32", shape: [0], bytes: new Uint8Array(0) },
  ];
  writeSafetensors(path, [...parts, { name: "d", dtype: "F32", shape: [1], data: Float32Array.of(1.5) }]);
  const file = openSafetensors(path);
  try {
    assert.deepEqual(readTensorBytes(file, file.tensors.get("a")!, 1, 3), Uint8Array.of(2, 3, 4));
    const b = readTensorBytes(file, file.tensors.get("b")!, 0, 16).slice();
    assert.deepEqual(new BigInt64Array(b.buffer), BigInt64Array.of(-1n, 2n ** 40n));
    assert.equal(file.tensors.get("d")!.dtype, "F32");
    const into = new Uint8Array(8);
    assert.deepEqual(readTensorBytes(file, file.tensors.get("a")!, 0, 5, into), u8);
    assert.throws(() => readTensorBytes(file, file.tensors.get("a")!, 3, 3), RangeError);
    assert.throws(() => readTensorBytes(file, file.tensors.get("a")!, -1, 1), RangeError);
    assert.throws(() => readTensorBytes(file, file.tensors.get("a")!, 0, 5, new Uint8Array(4)), RangeError);
  } finally {
    closeFile(path);
  }
  assert.throws(
    () => writeSafetensors(path, [{ name: "a", dtype: "I32", shape: [2], bytes: new Uint8Array(7) }]),
    /wrote 7 bytes, I32 \[2\] needs 8/,
  );
  assert.deepEqual(readdirSync(dirname(path)), ["raw.safetensors"], "no temporary file left behind");
});

// ---- faults of a packed folder ----

function throwsCheckpoint(fn: () => unknown, code: string, path: string, ...mentions: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected a CheckpointError, got ${e}`);
    assert.equal(e.code, code, `code (message: ${e.message})`);
    assert.equal(e.file, path, `file (message: ${e.message})`);
    for (const m of mentions) assert.ok(e.message.includes(m), `message should mention "${m}": ${e.message}`);
    return true;
  });
}

let good: string | undefined;
let goodSource = "";
/** A fresh copy of one valid packed folder (rtn3, blocks of 5, two held-out weights in down_proj). */
function packedCopy(): string {
  if (!good) {
    good = fresh("good");
    goodSource = tiny("good-src");
    writePackedCheckpoint(goodSource, good, {
      scheme: rtn(3, 5),
      keep: [
        { tensor: DOWN, coordinates: [0, 3] },
        { tensor: DOWN, coordinates: [5, 5] },
      ],
    });
  }
  const copy = fresh("copy");
  cpSync(good, copy, { recursive: true });
  return copy;
}

function storedParts(folder: string): (RawTensorToWrite & { bytes: Uint8Array })[] {
  const file = openSafetensors(join(folder, "model.safetensors"));
  try {
    return [...file.tensors.values()]
      .sort((a, b) => a.start - b.start)
      .map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: readTensorBytes(file, t, 0, t.byteLength) }));
  } finally {
    closeFile(file.path);
  }
}

/** Rewrite the folder's model.safetensors with edited parts. */
function editParts(folder: string, edit: (parts: (RawTensorToWrite & { bytes: Uint8Array })[]) => void): string {
  const parts = storedParts(folder);
  edit(parts);
  writeSafetensors(join(folder, "model.safetensors"), parts);
  return join(folder, "model.safetensors");
}

function editQuantization(folder: string, edit: (q: any) => void): string {
  const path = join(folder, "config.json");
  const config = JSON.parse(readFileSync(path, "utf8"));
  edit(config.quantization);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

const part = (parts: RawTensorToWrite[], suffix: string) =>
  parts.find((p) => p.name === DOWN + suffix)! as RawTensorToWrite & { bytes: Uint8Array };

test("the valid packed folder opens, and a plain checkpoint is NOT_QUANTIZED", () => {
  const folder = packedCopy();
  const p = PackedCheckpoint.open(folder);
  assert.equal(p.info(DOWN).dtype, "rtn3");
  assert.throws(() => p.readRows(DOWN, 0, 9), RangeError);
  assert.throws(() => p.readRows(DOWN, 2, 1), RangeError);
  throwsCheckpoint(() => p.info("missing.weight"), "MISSING_TENSOR", folder, "missing.weight");
  p.close();
  const plain = tiny("plain");
  throwsCheckpoint(() => PackedCheckpoint.open(plain), "NOT_QUANTIZED", join(plain, "config.json"));
});

const CONFIG_FAULTS: [string, string, (q: any) => void, string][] = [
  ["format", "BAD_QUANTIZATION", (q) => (q.format = "gptq"), "gptq"],
  ["version", "UNSUPPORTED_FORMAT_VERSION", (q) => (q.format_version = 2), "format_version 2"],
  ["scheme", "BAD_QUANTIZATION", (q) => (q.scheme = "awq"), "awq"],
  ["bits", "BAD_QUANTIZATION", (q) => (q.bits = 5), "bits"],
  ["nf4 bits", "BAD_QUANTIZATION", (q) => ((q.scheme = "nf4"), (q.nf4_range = "absmax")), "nf4"],
  ["block", "BAD_QUANTIZATION", (q) => (q.block = 0), "block"],
  ["clip", "BAD_QUANTIZATION", (q) => (q.clip = "zscore:-1"), "zscore"],
  ["blocks", "BAD_QUANTIZATION", (q) => (q.tensors[DOWN].blocks = 20), "blocks 20"],
  ["shape", "BAD_QUANTIZATION", (q) => (q.tensors[DOWN].shape = [8, -13]), "shape"],
  ["kept count", "BAD_QUANTIZATION", (q) => (q.tensors[DOWN].kept = 1), "kept 1"],
  ["kept coordinates", "BAD_QUANTIZATION", (q) => (q.kept[0].coordinates = [0, 13]), "outside"],
  ["kept index", "BAD_QUANTIZATION", (q) => (q.kept[0].index = 4), "index 4"],
  ["kept tensor", "BAD_QUANTIZATION", (q) => (q.kept[0].tensor = "model.norm.weight"), "not quantized"],
  ["kept value", "KEEP_MISMATCH", (q) => (q.kept[1].value += 1), "in config.json"],
  ["no tensors", "BAD_QUANTIZATION", (q) => delete q.tensors, "tensors"],
];
for (const [label, code, edit, mention] of CONFIG_FAULTS)
  test(`config.json quantization fault (${label}) is ${code}`, () => {
    const folder = packedCopy();
    const path = editQuantization(folder, edit);
    throwsCheckpoint(
      () => PackedCheckpoint.open(folder),
      code,
      code === "KEEP_MISMATCH" ? join(folder, "model.safetensors") : path,
      mention,
    );
  });

type Parts = (RawTensorToWrite & { bytes: Uint8Array })[];
const FILE_FAULTS: [string, string, (p: Parts) => void, string, string?][] = [
  ["qmin missing", "MISSING_TENSOR", (p) => p.splice(p.indexOf(part(p, ".qmin")), 1), ".qmin", "folder"],
  ["qweight dtype", "PACKED_DTYPE", (p) => (part(p, ".qweight").dtype = "I8"), "I8"],
  [
    "qscale dtype",
    "PACKED_DTYPE",
    (p) => {
      const q = part(p, ".qscale");
      q.dtype = "F16";
      q.shape = [q.shape[0] * 2];
    },
    "F16",
  ],
  [
    "qweight short",
    "PACKED_SIZE",
    (p) => {
      const q = part(p, ".qweight");
      q.bytes = q.bytes.subarray(1);
      q.shape = [q.bytes.length];
    },
    "[38]",
  ],
  [
    "qmin long",
    "PACKED_SIZE",
    (p) => {
      const q = part(p, ".qmin");
      q.bytes = new Uint8Array(q.bytes.length + 4);
      q.shape = [q.shape[0] + 1];
    },
    ".qmin",
  ],
  [
    "keep_value missing",
    "MISSING_TENSOR",
    (p) => p.splice(p.indexOf(part(p, ".keep_value")), 1),
    ".keep_value",
    "folder",
  ],
  [
    "keep_index out of order",
    "BAD_KEEP_INDEX",
    (p) => (part(p, ".keep_index").bytes = new Uint8Array(Int32Array.of(70, 3).buffer)),
    "strictly increasing",
  ],
  [
    "keep_index outside",
    "BAD_KEEP_INDEX",
    (p) => (part(p, ".keep_index").bytes = new Uint8Array(Int32Array.of(3, 104).buffer)),
    "104",
  ],
  [
    "keep_index I64 beyond",
    "BAD_KEEP_INDEX",
    (p) => {
      const k = part(p, ".keep_index");
      k.dtype = "I64";
      k.bytes = new Uint8Array(BigInt64Array.of(3n, 2n ** 60n).buffer);
    },
    "strictly increasing",
  ],
  [
    "keep_value NaN",
    "BAD_KEEP_VALUE",
    (p) => (part(p, ".keep_value").bytes = new Uint8Array(Float32Array.of(0.5, NaN).buffer)),
    "NaN",
  ],
  [
    "keep_value changed",
    "KEEP_MISMATCH",
    (p) => (new Float32Array(part(p, ".keep_value").bytes.buffer)[0] += 1),
    "in config.json",
  ],
  [
    "unlisted part",
    "UNEXPECTED_TENSOR",
    (p) => p.push({ name: "model.norm.weight.qscale", dtype: "F32", shape: [1], bytes: new Uint8Array(4) }),
    "model.norm.weight.qscale",
  ],
  [
    "keep parts without kept",
    "UNEXPECTED_TENSOR",
    (p) =>
      p.push({
        name: "model.layers.0.mlp.up_proj.weight.keep_index",
        dtype: "I32",
        shape: [0],
        bytes: new Uint8Array(0),
      }),
    "up_proj.weight.keep_index",
  ],
  [
    "plain and packed",
    "DUPLICATE_TENSOR",
    (p) => p.push({ name: DOWN, dtype: "F32", shape: [8, 13], bytes: new Uint8Array(8 * 13 * 4) }),
    "both plain and quantized",
  ],
];
for (const [label, code, edit, mention, where] of FILE_FAULTS)
  test(`packed part fault (${label}) is ${code}`, () => {
    const folder = packedCopy();
    const path = editParts(folder, edit);
    throwsCheckpoint(() => PackedCheckpoint.open(folder), code, where === "folder" ? folder : path, mention);
  });

test("held-out indices stored as I64 read the same", () => {
  const folder = packedCopy();
  const reference = PackedCheckpoint.open(folder);
  const expected = reference.read(DOWN);
  reference.close();
  editParts(folder, (p) => {
    const k = part(p, ".keep_index");
    k.dtype = "I64";
    k.bytes = new Uint8Array(BigInt64Array.from(new Int32Array(k.bytes.slice().buffer), (v) => BigInt(v)).buffer);
  });
  const p = PackedCheckpoint.open(folder);
  const source = Checkpoint.open(goodSource);
  assert.equal(p.readRows(DOWN, 5, 6)[5], source.readElement(DOWN, 70));
  assert.deepEqual(p.read(DOWN), expected);
  source.close();
  p.close();
});

test("a block scale that is NaN or negative, or a minimum not finite, is BAD_SCALE when its rows are read", () => {
  for (const [suffix, value, mention] of [
    [".qscale", NaN, "scale NaN"],
    [".qscale", -1, "scale -1"],
    [".qmin", Infinity, "minimum Infinity"],
  ] as const) {
    const folder = packedCopy();
    const path = editParts(folder, (p) => (new Float32Array(part(p, suffix).bytes.buffer)[3] = value));
    const p = PackedCheckpoint.open(folder);
    try {
      assert.equal(p.readRows(DOWN, 0, 1).length, 13, "rows before block 3 still read");
      throwsCheckpoint(() => p.readRows(DOWN, 1, 2), "BAD_SCALE", path, "block 3", mention);
    } finally {
      p.close();
    }
  }
});
