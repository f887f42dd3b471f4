// Checkpoint.open on folders written here, word for word: the index's checks, shards the index leaves out, the
// same tensor in two files, and the reads (rows, one element, the whole tensor) with their range checks. The
// block buffer's settings too. The fault tests in checkpoint-errors go through Model.open; these pin the messages.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckpointError, UserError } from "../src/errors.js";
import { Checkpoint } from "../src/checkpoint/checkpoint.js";
import { writeSafetensors, type TensorToWrite } from "../src/checkpoint/writer.js";
import {
  blockBuffer,
  blockElements,
  MAX_BLOCK_ELEMENTS,
  simdAvailable,
  widenSimd,
} from "../src/checkpoint/block-buffer.js";
import { elementCount, rowSize } from "../src/checkpoint/source.js";

const root = mkdtempSync(join(tmpdir(), "sw-checkpoint-open-"));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

const CONFIG = '{"model_type":"llama"}';
const t = (name: string, shape: number[], from = 0): TensorToWrite => ({
  name,
  dtype: "F32",
  shape,
  data: new Float32Array(elementCount(shape)).map((_, i) => from + i),
});

/** A folder with config.json and these files of tensors (and an index when given). */
function folder(files: Record<string, TensorToWrite[]>, index?: unknown): string {
  const dir = join(root, `c${counter++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, "config.json"), CONFIG);
  for (const [name, tensors] of Object.entries(files)) writeSafetensors(join(dir, name), tensors);
  if (index !== undefined)
    writeFileSync(join(dir, "model.safetensors.index.json"), typeof index === "string" ? index : JSON.stringify(index));
  return dir;
}

function refuses(fn: () => unknown, path: string, code: string, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected a CheckpointError, got ${e}`);
    assert.equal(e.message, `${path}: ${message}`);
    assert.equal(e.code, code);
    return true;
  });
}

test("reads: rows, one element, the whole tensor, and what a checkpoint says of a tensor", () => {
  const dir = folder({ "model.safetensors": [t("w", [3, 2], 10), t("s", [], 7), t("v", [4], 1)] });
  const c = Checkpoint.open(dir);
  try {
    assert.deepEqual(c.names().sort(), ["s", "v", "w"]);
    assert.equal(c.has("w"), true);
    assert.equal(c.has("x"), false);
    assert.equal(c.folder, dir);
    assert.equal(c.configFile, join(dir, "config.json"));
    assert.deepEqual(c.config, { model_type: "llama" });
    assert.deepEqual(c.info("w"), { name: "w", shape: [3, 2], dtype: "F32", bytes: 24 });
    assert.equal(c.fileOf("w"), join(dir, "model.safetensors"));
    assert.equal(c.header("w").byteLength, 24);
    assert.deepEqual([...c.readRows("w", 1, 3)], [12, 13, 14, 15]);
    assert.deepEqual([...c.readRows("w", 2, 2)], []);
    const into = new Float32Array(3).fill(-1);
    c.readRows("w", 0, 1, into);
    assert.deepEqual([...into], [10, 11, -1]);
    assert.deepEqual([...c.readRows("s", 0, 1)], [7], "a scalar is one row of one");
    assert.deepEqual([...c.readRows("v", 1, 3)], [2, 3]);
    assert.deepEqual([...c.read("w")], [10, 11, 12, 13, 14, 15]);
    assert.equal(c.readElement("w", 5), 15);
    for (const [r0, r1] of [
      [-1, 1],
      [0, 4],
      [2, 1],
    ])
      assert.throws(() => c.readRows("w", r0, r1), {
        name: "RangeError",
        message: `rows [${r0}, ${r1}) outside "w" with 3 rows`,
      });
    refuses(() => c.info("x"), dir, "MISSING_TENSOR", 'tensor "x" is missing from the checkpoint');
    refuses(() => c.read("x"), dir, "MISSING_TENSOR", 'tensor "x" is missing from the checkpoint');
    assert.equal(c.missingReason("x"), undefined, "no index: nothing to explain");
  } finally {
    c.close();
  }
});

test("a folder that is not a checkpoint, or holds no safetensors, is named with what was found", () => {
  const missing = join(root, "nope");
  assert.throws(
    () => Checkpoint.open(missing),
    (e: unknown) => e instanceof UserError && e.message === `${missing}: no such checkpoint folder`,
  );
  const noConfig = join(root, `c${counter++}`);
  mkdirSync(noConfig);
  refuses(
    () => Checkpoint.open(noConfig),
    join(noConfig, "config.json"),
    "MISSING_CONFIG",
    "config.json is missing: not a Hugging Face checkpoint folder",
  );
  const bin = folder({});
  writeFileSync(join(bin, "pytorch_model.bin"), "x");
  writeFileSync(join(bin, "model.gguf"), "x");
  writeFileSync(join(bin, "notes.txt"), "x");
  refuses(
    () => Checkpoint.open(bin),
    bin,
    "NO_WEIGHTS",
    "no .safetensors weights found (found model.gguf, pytorch_model.bin: only safetensors is read; convert with " +
      "transformers' save_pretrained(safe_serialization=True))",
  );
  const empty = folder({});
  refuses(() => Checkpoint.open(empty), empty, "NO_WEIGHTS", "no .safetensors weights found");
});

test("without an index, model.safetensors alone is read; else every *.safetensors, each tensor once", () => {
  const both = folder({ "model.safetensors": [t("a", [2])], "extra.safetensors": [t("b", [2])] });
  assert.deepEqual(Checkpoint.open(both).names(), ["a"]);
  const split = folder({ "b.safetensors": [t("b", [2])], "a.safetensors": [t("a", [2])] });
  assert.deepEqual(Checkpoint.open(split).names().sort(), ["a", "b"]);
  const twice = folder({ "a.safetensors": [t("w", [2])], "b.safetensors": [t("w", [2])] });
  refuses(
    () => Checkpoint.open(twice),
    join(twice, "b.safetensors"),
    "DUPLICATE_TENSOR",
    `tensor "w" is also stored in ${join(twice, "a.safetensors")}`,
  );
});

test("the index: its weight_map checked entry by entry, word for word", () => {
  const shards = { "s1.safetensors": [t("a", [2])], "s2.safetensors": [t("b", [2])] };
  const ok = folder(shards, { weight_map: { a: "s1.safetensors", b: "s2.safetensors" } });
  assert.deepEqual(Checkpoint.open(ok).names().sort(), ["a", "b"]);
  const index = (dir: string) => join(dir, "model.safetensors.index.json");
  const bad = (map: unknown, message: string, code = "BAD_INDEX") => {
    const dir = folder(shards, map);
    refuses(() => Checkpoint.open(dir), index(dir), code, message);
  };
  bad({ metadata: {} }, 'has no "weight_map"');
  bad(
    { weight_map: ["s1.safetensors"] },
    '"weight_map" must be an object of tensor name → file, got ["s1.safetensors"]',
  );
  bad({ weight_map: null }, '"weight_map" must be an object of tensor name → file, got null');
  bad({ weight_map: "x".repeat(60) }, `"weight_map" must be an object of tensor name → file, got "${"x".repeat(39)}`);
  bad({ weight_map: { "": "s1.safetensors" } }, '"weight_map" has an empty tensor name');
  bad({ weight_map: { a: 5 } }, '"weight_map" gives "a" the file 5, not a file name');
  bad({ weight_map: { a: "" } }, '"weight_map" gives "a" the file "", not a file name');
  bad(
    { weight_map: { a: "s1.safetensors", b: "gone.safetensors" } },
    `names shard "gone.safetensors", which is missing from ${root}/c${counter}`,
    "MISSING_SHARD",
  );
  const moved = folder(
    { "s1.safetensors": [t("a", [2]), t("c", [2])], "s2.safetensors": [t("b", [2])] },
    { weight_map: { a: "s2.safetensors", b: "s2.safetensors", c: "s1.safetensors" } },
  );
  refuses(
    () => Checkpoint.open(moved),
    index(moved),
    "BAD_INDEX",
    `says "a" is in s2.safetensors but it is stored in ${join(moved, "s1.safetensors")}`,
  );
  bad(
    { weight_map: { a: "../s1.safetensors" } },
    'names file "../s1.safetensors", which is outside the checkpoint folder',
    "OUTSIDE_FOLDER",
  );
  bad("[1]", "is not a JSON object");
  // A tensor the index lists that its shard does not hold is named with the shard.
  const absent = folder(shards, { weight_map: { a: "s1.safetensors", b: "s2.safetensors", c: "s1.safetensors" } });
  refuses(
    () => Checkpoint.open(absent),
    join(absent, "s1.safetensors"),
    "MISSING_TENSOR",
    'tensor "c" (listed in model.safetensors.index.json) is not in this shard',
  );
  // A tensor a listed shard holds but the index does not list.
  const unlisted = folder({ "s1.safetensors": [t("a", [2]), t("z", [1])] }, { weight_map: { a: "s1.safetensors" } });
  refuses(
    () => Checkpoint.open(unlisted),
    index(unlisted),
    "BAD_INDEX",
    `does not list tensor "z", which is stored in ${join(unlisted, "s1.safetensors")} (the index is wrong)`,
  );
});

test("a shard the index leaves out explains why a tensor is missing", () => {
  const dir = folder(
    { "s1.safetensors": [t("a", [2])], "s2.safetensors": [t("b", [2])], "junk.safetensors": [] },
    { weight_map: { a: "s1.safetensors" } },
  );
  writeFileSync(join(dir, "broken.safetensors"), "not safetensors");
  const c = Checkpoint.open(dir);
  assert.deepEqual(c.names(), ["a"]);
  const why = c.missingReason("b");
  assert.ok(why instanceof CheckpointError);
  assert.equal(why.code, "BAD_INDEX");
  assert.equal(
    why.message,
    `${join(dir, "model.safetensors.index.json")}: does not list tensor "b", which is stored in ` +
      `${join(dir, "s2.safetensors")} (the index is wrong)`,
  );
  assert.equal(c.missingReason("nowhere"), undefined);
  c.close();
  unlinkSync(join(dir, "broken.safetensors"));
});

test("the block buffer: its size setting, its bound, and widening only inside its memory", () => {
  assert.equal(blockElements(undefined), 4 * 1024 * 1024);
  assert.equal(blockElements("1"), 1);
  assert.equal(blockElements("268435456"), 268435456);
  for (const bad of ["0", "-3", "1.5", "x", "", "268435457"])
    assert.throws(() => blockElements(bad), {
      message: `SUPERWEIGHT_BLOCK_ELEMENTS=${bad}: must be an integer from 1 to 268435456`,
    });
  assert.equal(simdAvailable(), true, "Node 20 has WebAssembly SIMD");
  assert.equal(blockBuffer(MAX_BLOCK_ELEMENTS).length, MAX_BLOCK_ELEMENTS);
  assert.throws(() => blockBuffer(MAX_BLOCK_ELEMENTS + 1), {
    message: `block of ${MAX_BLOCK_ELEMENTS + 1} elements exceeds ${MAX_BLOCK_ELEMENTS}`,
  });
  // bf16 1.0 is 0x3f80; packed at the start of a block buffer it widens in place; elsewhere widenSimd declines.
  const block = blockBuffer(2);
  new Uint16Array(block.buffer, block.byteOffset, 2).set([0x3f80, 0xc000]);
  assert.equal(widenSimd(block, 2, "BF16"), true);
  assert.deepEqual([...block], [1, -2]);
  const plain = new Float32Array(2);
  new Uint16Array(plain.buffer).set([0x3f80, 0x3c00]);
  assert.equal(widenSimd(plain, 2, "BF16"), false);
  assert.deepEqual([...new Uint16Array(plain.buffer)], [0x3f80, 0x3c00, 0, 0], "untouched");
  const half = blockBuffer(1);
  new Uint16Array(half.buffer, half.byteOffset, 1).set([0x3c00]); // f16 1.0
  assert.equal(widenSimd(half, 1, "F16"), true);
  assert.equal(half[0], 1);
  assert.equal(rowSize([3, 4, 5]), 20);
  assert.equal(rowSize([7]), 1);
  assert.equal(elementCount([]), 1);
});

test("shards open in name order whatever the index's order, and close gives their descriptors back", async () => {
  const { readdirSync } = await import("node:fs");
  const dir = folder(
    { "s1.safetensors": [t("a", [2])], "s2.safetensors": [t("a", [2]), t("b", [2])] },
    { weight_map: { b: "s2.safetensors", a: "s1.safetensors" } },
  );
  refuses(
    () => Checkpoint.open(dir),
    join(dir, "s2.safetensors"),
    "DUPLICATE_TENSOR",
    `tensor "a" is also stored in ${join(dir, "s1.safetensors")}`,
  );
  const ok = folder(
    { "s1.safetensors": [t("a", [2])], "s2.safetensors": [t("b", [2])] },
    { weight_map: { b: "s2.safetensors", a: "s1.safetensors" } },
  );
  const before = readdirSync("/proc/self/fd").length;
  const c = Checkpoint.open(ok);
  assert.deepEqual(c.names(), ["a", "b"]);
  c.read("a");
  c.read("b");
  assert.equal(readdirSync("/proc/self/fd").length, before + 2);
  c.close();
  assert.equal(readdirSync("/proc/self/fd").length, before);
  // A file given where a folder is expected is no checkpoint folder.
  const file = join(ok, "config.json");
  assert.throws(() => Checkpoint.open(file), { message: `${file}: no such checkpoint folder` });
});

test("a NaN whose payload is only in its low bits stays a quiet NaN in bf16 and f16 (on the bits, not via a number)", async () => {
  const { bf16FromF32Bits, f16FromF32Bits } = await import("../src/checkpoint/dtype.js");
  assert.equal(bf16FromF32Bits(0x7f800001), 0x7fc0);
  assert.equal(bf16FromF32Bits(0xff800001), 0xffc0);
  assert.equal(f16FromF32Bits(0x7f800001), 0x7e00);
  assert.equal(f16FromF32Bits(0x7f800000), 0x7c00, "infinity stays infinity");
});
