// Writing GGUF v3 files the way llama.cpp's writers lay them out: header, key-value pairs in the order given,
// tensor infos, zero padding to `general.alignment` (default 32), then each tensor's data in the order given,
// each followed by zero padding to the alignment (the last one too). Offsets are assigned in that order.
//
// The file is written to a temporary name in the same folder and renamed into place once complete; on any
// error the temporary file is removed and nothing appears at `path`.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { UserError } from "../errors.js";
import {
  alignUp,
  DEFAULT_ALIGNMENT,
  MAX_DIMS,
  VALUE_BYTES,
  VALUE_TYPES,
  type GgufItemType,
  type GgufKv,
  type GgufScalar,
} from "./container.js";
import { ggmlBytes, ggmlTypeByName, type GgmlType } from "./types.js";

export interface GgufTensorToWrite {
  name: string;
  /** A ggml type or its name ("Q4_K"). */
  type: GgmlType | string;
  /** Dimensions, ne0 (contiguous) first. */
  ne: number[];
  /** The tensor's bytes, or a function yielding them in parts, in order (to stream large tensors). */
  data: Uint8Array | (() => Iterable<Uint8Array>);
}

/** A tensor placed in the file: its type resolved, its byte size and offset in the data section. */
export interface PlacedTensor {
  name: string;
  type: GgmlType;
  ne: number[];
  byteLength: number;
  offset: number;
}

/** Grows a byte buffer; everything little-endian. */
class ByteSink {
  private buf = Buffer.alloc(1 << 16);
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  length = 0;

  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer, next.byteOffset, next.length);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  // room() may grow the buffer: take the offset first, then the (new) view.
  u32(v: number): void {
    const at = this.room(4);
    this.view.setUint32(at, v, true);
  }
  u64(v: bigint | number): void {
    const at = this.room(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }
  bytes(b: Uint8Array): void {
    const at = this.room(b.length);
    this.buf.set(b, at);
  }
  string(s: string): void {
    const n = Buffer.byteLength(s, "utf8");
    this.u64(n);
    const at = this.room(n);
    this.buf.write(s, at, "utf8");
  }
  scalar(type: GgufItemType, v: GgufScalar, what: string): void {
    if (type === "STRING") {
      if (typeof v !== "string") throw new TypeError(`${what}: STRING value must be a string, got ${typeof v}`);
      return this.string(v);
    }
    const at = this.room(VALUE_BYTES[type]);
    const d = this.view;
    if (type === "BOOL") {
      if (typeof v !== "boolean") throw new TypeError(`${what}: BOOL value must be a boolean, got ${typeof v}`);
      return d.setUint8(at, v ? 1 : 0);
    }
    if (type === "FLOAT32" || type === "FLOAT64") {
      if (typeof v !== "number") throw new TypeError(`${what}: ${type} value must be a number, got ${typeof v}`);
      return type === "FLOAT32" ? d.setFloat32(at, v, true) : d.setFloat64(at, v, true);
    }
    const n = integerIn(type, v, what);
    switch (type) {
      case "UINT8":
        return d.setUint8(at, Number(n));
      case "INT8":
        return d.setInt8(at, Number(n));
      case "UINT16":
        return d.setUint16(at, Number(n), true);
      case "INT16":
        return d.setInt16(at, Number(n), true);
      case "UINT32":
        return d.setUint32(at, Number(n), true);
      case "INT32":
        return d.setInt32(at, Number(n), true);
      case "UINT64":
        return d.setBigUint64(at, n, true);
      case "INT64":
        return d.setBigInt64(at, n, true);
    }
  }
  padTo(alignment: number): void {
    this.room(alignUp(this.length, alignment) - this.length); // new bytes are zero
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

const INT_RANGE: Record<string, [bigint, bigint]> = {
  UINT8: [0n, 255n],
  INT8: [-128n, 127n],
  UINT16: [0n, 65535n],
  INT16: [-32768n, 32767n],
  UINT32: [0n, 0xffffffffn],
  INT32: [-(2n ** 31n), 2n ** 31n - 1n],
  UINT64: [0n, 2n ** 64n - 1n],
  INT64: [-(2n ** 63n), 2n ** 63n - 1n],
};

function integerIn(type: GgufItemType, v: GgufScalar, what: string): bigint {
  if (!(typeof v === "bigint" || (typeof v === "number" && Number.isSafeInteger(v))))
    throw new TypeError(`${what}: ${type} value must be an integer, got ${String(v)}`);
  const n = BigInt(v);
  const [lo, hi] = INT_RANGE[type];
  if (n < lo || n > hi) throw new RangeError(`${what}: ${n} is outside the ${type} range [${lo}, ${hi}]`);
  return n;
}

function alignmentOf(metadata: Map<string, GgufKv>): number {
  const kv = metadata.get("general.alignment");
  if (kv === undefined) return DEFAULT_ALIGNMENT;
  const a = kv.value as number;
  if (kv.type !== "UINT32" || !Number.isInteger(a) || a <= 0 || (a & (a - 1)) !== 0)
    throw new RangeError(`general.alignment must be a UINT32 power of two, got ${kv.type} ${String(kv.value)}`);
  return a;
}

function resolveType(t: Pick<GgufTensorToWrite, "name" | "type">): GgmlType {
  const type = typeof t.type === "string" ? ggmlTypeByName(t.type) : t.type;
  if (!type) throw new RangeError(`tensor "${t.name}": unknown ggml type ${JSON.stringify(t.type)}`);
  return type;
}

/**
 * The header (magic through the padding before the data section) and where each tensor goes. Throws
 * TypeError / RangeError for values that do not fit their types, duplicate names, bad shapes.
 */
export function encodeHeader(
  metadata: Iterable<[string, GgufKv]>,
  tensors: Pick<GgufTensorToWrite, "name" | "type" | "ne">[],
): { header: Uint8Array; alignment: number; placed: PlacedTensor[] } {
  const kvs = new Map<string, GgufKv>();
  for (const [key, kv] of metadata) {
    if (key.length === 0) throw new RangeError("metadata key must not be empty");
    if (kvs.has(key)) throw new RangeError(`metadata key "${key}" given twice`);
    kvs.set(key, kv);
  }
  const alignment = alignmentOf(kvs);
  const out = new ByteSink();
  out.bytes(new TextEncoder().encode("GGUF"));
  out.u32(3);
  out.u64(tensors.length);
  out.u64(kvs.size);
  for (const [key, kv] of kvs) {
    out.string(key);
    out.u32(VALUE_TYPES.indexOf(kv.type));
    if (kv.type === "ARRAY") {
      if (kv.itemType === ("ARRAY" as string) || !VALUE_TYPES.includes(kv.itemType))
        throw new RangeError(`"${key}": unsupported array item type ${String(kv.itemType)}`);
      if (!Array.isArray(kv.value)) throw new TypeError(`"${key}": ARRAY value must be an array`);
      out.u32(VALUE_TYPES.indexOf(kv.itemType));
      out.u64(kv.value.length);
      kv.value.forEach((v, i) => out.scalar(kv.itemType, v, `"${key}"[${i}]`));
    } else if (VALUE_TYPES.includes(kv.type)) out.scalar(kv.type, kv.value, `"${key}"`);
    else throw new RangeError(`"${key}": unknown value type ${String((kv as GgufKv).type)}`);
  }
  const names = new Set<string>();
  const placed: PlacedTensor[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (t.name.length === 0) throw new RangeError("tensor name must not be empty");
    if (names.has(t.name)) throw new RangeError(`tensor "${t.name}" given twice`);
    names.add(t.name);
    const type = resolveType(t);
    if (t.ne.length < 1 || t.ne.length > MAX_DIMS || !t.ne.every((n) => Number.isSafeInteger(n) && n >= 0))
      throw new RangeError(`tensor "${t.name}": ne [${t.ne}] must be 1..${MAX_DIMS} non-negative integers`);
    if (t.ne[0] % type.blockSize !== 0)
      throw new RangeError(`tensor "${t.name}": ne0 ${t.ne[0]} is not a multiple of the ${type.name} block size`);
    const byteLength = ggmlBytes(
      type,
      t.ne.reduce((a, b) => a * b, 1),
    );
    out.string(t.name);
    out.u32(t.ne.length);
    for (const n of t.ne) out.u64(n);
    out.u32(type.id);
    out.u64(offset);
    placed.push({ name: t.name, type, ne: [...t.ne], byteLength, offset });
    offset = alignUp(offset + byteLength, alignment);
  }
  out.padTo(alignment);
  return { header: out.result(), alignment, placed };
}

/** Write a GGUF v3 file atomically. Metadata keeps the order given (a Map's insertion order). */
export function writeGguf(path: string, metadata: Iterable<[string, GgufKv]>, tensors: GgufTensorToWrite[]): void {
  const { header, alignment, placed } = encodeHeader(metadata, tensors);
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, "wx");
    writeAll(fd, header);
    const zeros = new Uint8Array(alignment);
    tensors.forEach((t, i) => {
      const parts = typeof t.data === "function" ? t.data() : [t.data];
      const { byteLength, type } = placed[i];
      const what = `tensor "${t.name}" (${type.name}, ne [${t.ne}])`;
      const wrong = (gave: string) => new RangeError(`${what} needs ${byteLength} bytes; its data gave ${gave}`);
      let written = 0;
      for (const part of parts) {
        if (written + part.length > byteLength) throw wrong("more");
        writeAll(fd!, part);
        written += part.length;
      }
      if (written !== byteLength) throw wrong(String(written));
      writeAll(fd!, zeros.subarray(0, alignUp(written, alignment) - written));
    });
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    if (e instanceof RangeError || e instanceof TypeError) throw e;
    throw new UserError(`cannot write: ${(e as Error).message}`, path);
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
}
