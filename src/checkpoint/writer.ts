// Writing safetensors checkpoints (the demo model, benchmarks, test fixtures of broken files).
// Files are written to a temporary name in the same folder and renamed into place, so a reader never
// sees half a file and an existing checkpoint is never partly overwritten.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DTYPE_BYTES, toBf16Bits, toF16Bits, type Dtype, type FloatDtype } from "./dtype.js";

export interface TensorToWrite {
  name: string;
  dtype: FloatDtype;
  shape: number[];
  /** float32 values (converted to dtype on write), or a function yielding rows in order to stream. */
  data: Float32Array | (() => Iterable<Float32Array>);
}

/** A tensor given as its stored bytes, in any dtype (packed codes, indices, tensors copied unchanged). */
export interface RawTensorToWrite {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** The little-endian bytes, or a function yielding them in order to stream. */
  bytes: Uint8Array | (() => Iterable<Uint8Array>);
}

/** How bytes reach the file descriptor; a test passes one that fails part-way. */
export type WriteBytes = (fd: number, bytes: Uint8Array) => unknown;

/** Encode float32 values as `dtype` bytes. */
export function encode(values: Float32Array, dtype: FloatDtype): Uint8Array {
  if (dtype === "F32")
    return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  const out = new Uint16Array(values.length);
  const conv = dtype === "BF16" ? toBf16Bits : toF16Bits;
  // Stryker disable next-line EqualityOperator: equivalent, one step past the end writes nowhere
  for (let i = 0; i < values.length; i++) out[i] = conv(values[i]);
  return new Uint8Array(out.buffer);
}

/** The header bytes (length prefix + JSON, space-padded to 8 bytes) for tensors in this order. */
export function headerFor(
  tensors: { name: string; dtype: Dtype; shape: number[] }[],
  metadata: Record<string, string> = { format: "pt" },
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const body = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true);
  out.set(body, 8);
  return out;
}

/** Write one safetensors file atomically. */
export function writeSafetensors(
  path: string,
  tensors: (TensorToWrite | RawTensorToWrite)[],
  metadata?: Record<string, string>,
  write: WriteBytes = writeSync,
): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    write(fd, headerFor(tensors, metadata));
    for (const t of tensors) {
      if ("bytes" in t) {
        writeRaw(fd, t, write);
        continue;
      }
      const parts = typeof t.data === "function" ? t.data() : [t.data];
      let written = 0;
      for (const part of parts) {
        write(fd, encode(part, t.dtype));
        written += part.length;
      }
      const expected = t.shape.reduce((a, b) => a * b, 1);
      if (written !== expected)
        throw new Error(`tensor ${t.name}: wrote ${written} values, shape [${t.shape}] needs ${expected}`);
    }
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true });
    throw e;
  }
}

function writeRaw(fd: number, t: RawTensorToWrite, write: WriteBytes): void {
  let written = 0;
  for (const part of typeof t.bytes === "function" ? t.bytes() : [t.bytes]) {
    write(fd, part);
    written += part.length;
  }
  const expected = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
  if (written !== expected)
    throw new Error(`tensor ${t.name}: wrote ${written} bytes, ${t.dtype} [${t.shape}] needs ${expected}`);
}

/** How to split a checkpoint's tensors into files: a count, or at most this many bytes per file. */
export type Sharding = number | { maxBytes: number };

const byteSize = (t: TensorToWrite | RawTensorToWrite) => t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];

/** Tensors in order, cut into consecutive files: `n` files of about as many tensors each, or files of at most
 * `maxBytes` (as save_pretrained's max_shard_size does: a tensor larger than the limit gets a file of its own). */
export function shardTensors<T extends TensorToWrite | RawTensorToWrite>(tensors: T[], sharding: Sharding): T[][] {
  if (typeof sharding === "number") {
    if (sharding <= 1 || tensors.length <= 1) return [tensors];
    const per = Math.ceil(tensors.length / sharding);
    return Array.from({ length: Math.max(1, Math.min(sharding, Math.ceil(tensors.length / per))) }, (_, s) =>
      tensors.slice(s * per, (s + 1) * per),
    );
  }
  const limit = sharding.maxBytes;
  const shards: T[][] = [];
  let current: T[] = [],
    bytes = 0;
  for (const t of tensors) {
    if (current.length && bytes + byteSize(t) > limit) (shards.push(current), (current = []), (bytes = 0));
    current.push(t);
    bytes += byteSize(t);
  }
  if (current.length || !shards.length) shards.push(current);
  return shards;
}

/** Write a checkpoint folder: config.json plus one model.safetensors, or shards with an index. */
export function writeCheckpoint(
  folder: string,
  config: Record<string, unknown>,
  tensors: (TensorToWrite | RawTensorToWrite)[],
  sharding: Sharding = 1,
  extraFiles: Record<string, string> = {},
  write: WriteBytes = writeSync,
): void {
  mkdirSync(folder, { recursive: true });
  const atomicText = (name: string, text: string) => {
    const tmp = join(folder, `${name}.${process.pid}.tmp`);
    writeFileSync(tmp, text);
    renameSync(tmp, join(folder, name));
  };
  const shards = shardTensors(tensors, sharding);
  if (shards.length === 1) writeSafetensors(join(folder, "model.safetensors"), shards[0], undefined, write);
  else {
    const weightMap: Record<string, string> = {};
    let total = 0;
    shards.forEach((part, s) => {
      const file = `model-${String(s + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`;
      writeSafetensors(join(folder, file), part, undefined, write);
      for (const t of part) {
        weightMap[t.name] = file;
        total += byteSize(t);
      }
    });
    atomicText(
      "model.safetensors.index.json",
      JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2),
    );
  }
  for (const [name, text] of Object.entries(extraFiles)) atomicText(name, text);
  // config.json last: its presence marks a complete checkpoint.
  atomicText("config.json", JSON.stringify(config, null, 2));
}
