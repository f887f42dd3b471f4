// Writing safetensors files and checkpoint folders: the default metadata, tensors given in parts, a tensor whose
// values do not fill its shape (refused, and nothing left behind), sharding by count and by bytes, and the index's
// total size. What is written is read back with the reader and checked value by value.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeFile, openSafetensors, readTensorRange } from "../src/checkpoint/safetensors.js";
import {
  headerFor,
  shardTensors,
  writeCheckpoint,
  writeSafetensors,
  type RawTensorToWrite,
  type TensorToWrite,
} from "../src/checkpoint/writer.js";

const root = mkdtempSync(join(tmpdir(), "sw-writer-"));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const fresh = (name: string) => join(root, `${counter++}-${name}`);

const f32 = (name: string, values: number[], shape = [values.length]): TensorToWrite => ({
  name,
  dtype: "F32",
  shape,
  data: new Float32Array(values),
});

test("the header: metadata format pt unless given, offsets in order, padded to 8 bytes", () => {
  const header = headerFor([
    { name: "a", dtype: "F32", shape: [3] },
    { name: "b", dtype: "BF16", shape: [2, 2] },
  ]);
  const n = Number(new DataView(header.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  assert.equal(header.length, 8 + n);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(header.subarray(8))), {
    __metadata__: { format: "pt" },
    a: { dtype: "F32", shape: [3], data_offsets: [0, 12] },
    b: { dtype: "BF16", shape: [2, 2], data_offsets: [12, 20] },
  });
  const own = headerFor([], { note: "x" });
  assert.deepEqual(JSON.parse(new TextDecoder().decode(own.subarray(8))), { __metadata__: { note: "x" } });
});

test("a tensor given in parts, or as raw bytes in parts, is written whole", () => {
  const path = fresh("parts.safetensors");
  const parts: TensorToWrite = {
    name: "w",
    dtype: "F32",
    shape: [2, 3],
    data: () => [new Float32Array([1, 2]), new Float32Array([3, 4, 5, 6])],
  };
  const raw: RawTensorToWrite = {
    name: "r",
    dtype: "U8",
    shape: [4],
    bytes: () => [new Uint8Array([9, 8]), new Uint8Array([7, 6])],
  };
  writeSafetensors(path, [parts, raw]);
  const f = openSafetensors(path);
  assert.deepEqual([...readTensorRange(f, f.tensors.get("w")!, 0, 6)], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(f.metadata, { format: "pt" });
  closeFile(path);
  assert.deepEqual([...readFileSync(path).subarray(-4)], [9, 8, 7, 6]);
});

test("values that do not fill the shape are refused, and neither the file nor its temporary is left", () => {
  const dir = fresh("short");
  const path = join(dir + ".safetensors");
  assert.throws(() => writeSafetensors(path, [f32("w", [1, 2, 3], [2, 2])]), {
    message: "tensor w: wrote 3 values, shape [2,2] needs 4",
  });
  assert.throws(() => writeSafetensors(path, [{ name: "r", dtype: "U8", shape: [3], bytes: new Uint8Array(2) }]), {
    message: "tensor r: wrote 2 bytes, U8 [3] needs 3",
  });
  assert.equal(existsSync(path), false);
  assert.deepEqual(
    readdirSync(root).filter((f) => f.includes("short")),
    [],
  );
});

test("sharding by count: about as many tensors per file, never more files than tensors", () => {
  const ts = [1, 2, 3, 4, 5].map((i) => f32(`t${i}`, [i]));
  const names = (shards: TensorToWrite[][]) => shards.map((s) => s.map((t) => t.name));
  assert.deepEqual(names(shardTensors(ts, 1)), [["t1", "t2", "t3", "t4", "t5"]]);
  assert.deepEqual(names(shardTensors(ts, 0)), [["t1", "t2", "t3", "t4", "t5"]]);
  assert.deepEqual(names(shardTensors(ts, 2)), [
    ["t1", "t2", "t3"],
    ["t4", "t5"],
  ]);
  assert.deepEqual(names(shardTensors(ts, 4)), [["t1", "t2"], ["t3", "t4"], ["t5"]]);
  assert.deepEqual(names(shardTensors(ts, 9)), [["t1"], ["t2"], ["t3"], ["t4"], ["t5"]]);
  assert.deepEqual(names(shardTensors([ts[0]], 3)), [["t1"]]);
  assert.deepEqual(names(shardTensors([], 3)), [[]]);
});

test("sharding by bytes: a file closes before the tensor that would pass the limit; a big tensor is alone", () => {
  // 4, 8, 12, 16, 20 bytes.
  const ts = [1, 2, 3, 4, 5].map((i) => f32(`t${i}`, new Array(i).fill(i)));
  const names = (shards: TensorToWrite[][]) => shards.map((s) => s.map((t) => t.name));
  assert.deepEqual(names(shardTensors(ts, { maxBytes: 12 })), [["t1", "t2"], ["t3"], ["t4"], ["t5"]]);
  assert.deepEqual(names(shardTensors(ts, { maxBytes: 24 })), [["t1", "t2", "t3"], ["t4"], ["t5"]]);
  assert.deepEqual(names(shardTensors(ts, { maxBytes: 1000 })), [["t1", "t2", "t3", "t4", "t5"]]);
  const bf16: TensorToWrite = { name: "h", dtype: "BF16", shape: [4], data: new Float32Array(4) }; // 8 bytes
  assert.deepEqual(names(shardTensors([bf16, bf16, bf16], { maxBytes: 16 })), [["h", "h"], ["h"]]);
  assert.deepEqual(names(shardTensors([], { maxBytes: 16 })), [[]]);
});

test("a sharded checkpoint: numbered files, an index mapping each tensor with the total size, config.json last", () => {
  const dir = fresh("sharded");
  const ts = [f32("a", [1, 2]), f32("b", [3]), f32("c", [4, 5, 6])];
  writeCheckpoint(dir, { model_type: "llama" }, ts, 2, { "tokenizer.json": "{}" });
  assert.deepEqual(readdirSync(dir).sort(), [
    "config.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
  ]);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8")), {
    metadata: { total_size: 24 },
    weight_map: {
      a: "model-00001-of-00002.safetensors",
      b: "model-00001-of-00002.safetensors",
      c: "model-00002-of-00002.safetensors",
    },
  });
  assert.deepEqual(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")), { model_type: "llama" });
  assert.equal(readFileSync(join(dir, "tokenizer.json"), "utf8"), "{}");
  const one = fresh("single");
  writeCheckpoint(one, {}, ts);
  assert.deepEqual(readdirSync(one).sort(), ["config.json", "model.safetensors"]);
});
