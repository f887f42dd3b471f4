// Reading GGUF files (gguf.h, versions 2 and 3, little-endian): the header is parsed with bounded positional
// reads and validated the way src/checkpoint/safetensors.ts validates its format, one error code per fault;
// tensor data is read later, by offset. A split set (llama.cpp's gguf-split, `name-0000k-of-0000n.gguf`) is
// opened from any of its shards and presented as one tensor directory.
//
// Layout: "GGUF", u32 version, u64 tensor count, u64 kv count; each kv: string key (u64 length + UTF-8),
// u32 value type, value (arrays: u32 item type, u64 count, items); each tensor info: string name, u32 n_dims,
// u64 ne[n_dims] (ne0 contiguous), u32 ggml type, u64 offset relative to the data section. The data section
// starts at the end of the tensor infos rounded up to `general.alignment` (u32, default 32); every tensor's
// offset is a multiple of it too.
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { CheckpointError } from "../errors.js";
import { ggmlBytes, ggmlTypeById, REMOVED_GGML_TYPES, type GgmlType } from "./types.js";

export const DEFAULT_ALIGNMENT = 32;
/** Longest string value accepted (chat templates are kilobytes; a longer "string" is a lying length). */
export const MAX_STRING_BYTES = 16 * 1024 * 1024;
/** Most items in one array (vocabularies and merges are hundreds of thousands). */
export const MAX_ARRAY_ITEMS = 16 * 1024 * 1024;
/** Keys are short dotted names; gguf.h caps them at 65535 bytes. */
export const MAX_KEY_BYTES = 65535;
export const MAX_DIMS = 4;

/** GGUF value types by id (gguf.h `enum gguf_type`), spelled as gguf-py spells them. */
export const VALUE_TYPES = [
  "UINT8",
  "INT8",
  "UINT16",
  "INT16",
  "UINT32",
  "INT32",
  "FLOAT32",
  "BOOL",
  "STRING",
  "ARRAY",
  "UINT64",
  "INT64",
  "FLOAT64",
] as const;
export type GgufValueType = (typeof VALUE_TYPES)[number];
export type GgufItemType = Exclude<GgufValueType, "ARRAY">;
/** Fixed byte size of each scalar type (strings: 0, their size is in their length prefix). */
export const VALUE_BYTES: Record<GgufItemType, number> = {
  UINT8: 1,
  INT8: 1,
  UINT16: 2,
  INT16: 2,
  UINT32: 4,
  INT32: 4,
  FLOAT32: 4,
  BOOL: 1,
  STRING: 0,
  UINT64: 8,
  INT64: 8,
  FLOAT64: 8,
};

/** One value: 64-bit integers are bigint (exact), other numbers number, BOOL boolean, STRING string. */
export type GgufScalar = number | bigint | boolean | string;
export type GgufKv =
  { type: GgufItemType; value: GgufScalar } | { type: "ARRAY"; itemType: GgufItemType; value: GgufScalar[] };

export interface GgufTensor {
  name: string;
  type: GgmlType;
  /** Dimensions as stored, ne0 (contiguous) first. */
  ne: number[];
  elements: number;
  byteLength: number;
  /** Offset relative to its file's data section, as stored. */
  offset: number;
  /** Absolute byte offset of its data in `file`. */
  start: number;
  /** The file (shard) holding it. */
  file: string;
}

export interface GgufFile {
  path: string;
  size: number;
  version: number;
  alignment: number;
  /** Absolute start of the tensor data section. */
  dataOffset: number;
  /** Every key-value pair, in file order. */
  metadata: Map<string, GgufKv>;
  /** Tensor infos in file order. */
  tensors: GgufTensor[];
}

/** A model as one directory: a single file, or every shard of a split set (metadata from the first). */
export interface GgufModel {
  /** The path the user gave. */
  path: string;
  files: GgufFile[];
  metadata: Map<string, GgufKv>;
  tensors: Map<string, GgufTensor>;
}

const CHUNK = 1 << 20;
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** What is being read, for messages: built only when one is needed (arrays hold 10⁵ strings). */
type What = string | (() => string);
const say = (what: What): string => (typeof what === "string" ? what : what());

/** Bounded positional reads over an open file: never past its end, never more than asked for plus a chunk. */
class HeaderReader {
  private buf = Buffer.allocUnsafe(CHUNK);
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  private bufStart = 0;
  private bufEnd = 0;
  pos = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
    readonly path: string,
  ) {}

  left(): number {
    return this.size - this.pos;
  }

  fail(code: string, msg: string): CheckpointError {
    return new CheckpointError(this.path, msg, code);
  }

  /** Make bytes [pos, pos + n) available in the buffer; returns their offset in it. */
  private need(n: number, what: What): number {
    if (n > this.left())
      throw this.fail("TRUNCATED", `${say(what)} at byte ${this.pos} runs past the end of the ${this.size}-byte file`);
    if (this.pos < this.bufStart || this.pos + n > this.bufEnd) {
      const len = Math.min(Math.max(n, CHUNK), this.left());
      if (len > this.buf.length) {
        this.buf = Buffer.allocUnsafe(len);
        this.view = new DataView(this.buf.buffer, this.buf.byteOffset, len);
      }
      readFully(this.fd, this.buf.subarray(0, len), this.pos, this.path);
      this.bufStart = this.pos;
      this.bufEnd = this.pos + len;
    }
    const at = this.pos - this.bufStart;
    this.pos += n;
    return at;
  }

  u8(what: What): number {
    return this.buf[this.need(1, what)];
  }
  u32(what: What): number {
    const at = this.need(4, what);
    return this.view.getUint32(at, true);
  }
  u64(what: What): bigint {
    const at = this.need(8, what);
    return this.view.getBigUint64(at, true);
  }

  /** A fixed-size scalar of this type. */
  scalar(type: Exclude<GgufItemType, "STRING">, what: What): GgufScalar {
    const at = this.need(VALUE_BYTES[type], what);
    const v = this.view;
    switch (type) {
      case "UINT8":
        return v.getUint8(at);
      case "INT8":
        return v.getInt8(at);
      case "UINT16":
        return v.getUint16(at, true);
      case "INT16":
        return v.getInt16(at, true);
      case "UINT32":
        return v.getUint32(at, true);
      case "INT32":
        return v.getInt32(at, true);
      case "FLOAT32":
        return v.getFloat32(at, true);
      case "UINT64":
        return v.getBigUint64(at, true);
      case "INT64":
        return v.getBigInt64(at, true);
      case "FLOAT64":
        return v.getFloat64(at, true);
      case "BOOL": {
        const b = v.getUint8(at);
        if (b > 1) throw this.fail("BAD_BOOL", `${say(what)} is a BOOL stored as ${b} (must be 0 or 1)`);
        return b === 1;
      }
    }
  }

  /** u64 length + UTF-8 bytes; the length is checked against the bytes left before anything is read. */
  string(what: What, limit = MAX_STRING_BYTES): string {
    const at = this.pos;
    const lenAt = this.need(8, () => `${say(what)} length`);
    const lo = this.view.getUint32(lenAt, true);
    const hi = this.view.getUint32(lenAt + 4, true);
    if (hi !== 0 || lo > Math.min(limit, this.left())) {
      const n = (BigInt(hi) << 32n) | BigInt(lo);
      const why = n > BigInt(limit) ? `the limit is ${limit}` : `only ${this.left()} are left in the file (truncated?)`;
      throw this.fail("STRING_TOO_LONG", `${say(what)} at byte ${at} claims ${n} bytes but ${why}`);
    }
    const off = this.need(lo, what);
    const end = off + lo;
    let ascii = true;
    for (let i = off; ascii && i < end; i++) ascii = this.buf[i] < 0x80;
    if (ascii) return this.buf.toString("latin1", off, end);
    try {
      return UTF8.decode(this.buf.subarray(off, end));
    } catch {
      throw this.fail("BAD_UTF8", `${say(what)} at byte ${at} is not valid UTF-8`);
    }
  }
}

function readFully(fd: number, into: Uint8Array, position: number, path: string): void {
  let done = 0;
  while (done < into.length) {
    let n: number;
    try {
      n = readSync(fd, into, done, into.length - done, position + done);
    } catch (e) {
      throw new CheckpointError(path, `cannot read: ${(e as Error).message}`, "IO");
    }
    if (n === 0) throw new CheckpointError(path, `unexpected end of file at byte ${position + done}`, "TRUNCATED");
    done += n;
  }
}

/**
 * Open a path only if it is a regular file (following symlinks): a FIFO, a device or a folder gets a clear
 * error instead of a hang. O_NONBLOCK keeps even a FIFO swapped in after the check from blocking the open.
 */
export function openRegularFile(path: string): { fd: number; size: number } {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    let dangling = false;
    try {
      dangling = err.code === "ENOENT" && lstatSync(path).isSymbolicLink();
    } catch {
      /* not there at all */
    }
    if (dangling) throw new CheckpointError(path, "is a symbolic link to a missing file", "DANGLING_SYMLINK");
    if (err.code === "ENOENT") throw new CheckpointError(path, "no such file", "NOT_FOUND");
    throw new CheckpointError(path, `cannot open: ${err.message}`, "IO");
  }
  if (!st.isFile()) throw new CheckpointError(path, `is ${kindOf(st)}, not a GGUF file`, "NOT_A_FILE");
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new CheckpointError(path, `cannot open: ${(e as Error).message}`, "IO");
  }
  const now = fstatSync(fd);
  if (!now.isFile()) {
    closeSync(fd);
    throw new CheckpointError(path, `is ${kindOf(now)}, not a GGUF file`, "NOT_A_FILE");
  }
  return { fd, size: now.size };
}

function kindOf(st: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean }): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isSocket()) return "a socket";
  return "a device or special file";
}

/** Open, parse and validate one GGUF file's header. The file is closed again; data is read by offset later. */
export function readGgufFile(path: string): GgufFile {
  const { fd, size } = openRegularFile(path);
  try {
    return parseGguf(new HeaderReader(fd, size, path));
  } finally {
    closeSync(fd);
  }
}

const LEGACY_MAGIC: Record<string, string> = { lmgg: "GGML", fmgg: "GGMF", tjgg: "GGJT", algg: "GGLA" };

function parseGguf(r: HeaderReader): GgufFile {
  if (r.size < 4) throw r.fail("TRUNCATED", `file is ${r.size} bytes, too short to be GGUF`);
  const magic = String.fromCharCode(r.u8("magic"), r.u8("magic"), r.u8("magic"), r.u8("magic"));
  if (magic !== "GGUF") {
    const legacy = LEGACY_MAGIC[magic];
    throw r.fail(
      "BAD_MAGIC",
      legacy
        ? `is a legacy ${legacy} file (pre-GGUF llama.cpp format): convert it to GGUF first`
        : `does not start with "GGUF" (found ${JSON.stringify(magic)}): not a GGUF file`,
    );
  }
  const version = r.u32("version");
  if (version !== 2 && version !== 3) {
    const hint =
      version === 1
        ? " (GGUF v1 used 32-bit lengths; re-convert with a current llama.cpp)"
        : version === 0x02000000 || version === 0x03000000
          ? " (a big-endian GGUF: only little-endian files are read)"
          : "";
    throw r.fail("UNSUPPORTED_VERSION", `GGUF version ${version} is not supported (2 and 3 are)${hint}`);
  }
  const tensorCount = r.u64("tensor count");
  const kvCount = r.u64("kv count");
  // The smallest kv is 13 bytes (key length, type, one byte); the smallest tensor info 32.
  if (kvCount * 13n > BigInt(r.left()))
    throw r.fail("KV_COUNT_TOO_LARGE", `kv count ${kvCount} cannot fit in the ${r.left()} bytes left`);
  if (tensorCount * 32n + kvCount * 13n > BigInt(r.left()))
    throw r.fail("TENSOR_COUNT_TOO_LARGE", `tensor count ${tensorCount} cannot fit in the ${r.left()} bytes left`);

  const metadata = new Map<string, GgufKv>();
  for (let i = 0; i < Number(kvCount); i++) {
    const at = r.pos;
    const key = r.string(`key of kv ${i}`, MAX_KEY_BYTES);
    if (key.length === 0) throw r.fail("BAD_KEY", `kv ${i} at byte ${at} has an empty key`);
    if (metadata.has(key)) throw r.fail("DUPLICATE_KEY", `key "${key}" appears twice (second at byte ${at})`);
    metadata.set(key, readValue(r, key));
  }

  const alignment = alignmentOf(r, metadata.get("general.alignment"));
  const tensors: GgufTensor[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < Number(tensorCount); i++) {
    const t = readTensorInfo(r, i, Number(tensorCount));
    if (seen.has(t.name)) throw r.fail("DUPLICATE_TENSOR", `tensor "${t.name}" appears twice`);
    seen.add(t.name);
    tensors.push(t);
  }
  const dataOffset = alignUp(r.pos, alignment);
  checkPadding(r, Number(tensorCount), dataOffset);
  checkPlacement(r, tensors, dataOffset, alignment);
  return { path: r.path, size: r.size, version, alignment, dataOffset, metadata, tensors };
}

function readValue(r: HeaderReader, key: string): GgufKv {
  const type = valueType(r, r.u32(`type of "${key}"`), `key "${key}"`);
  if (type !== "ARRAY") return { type, value: readScalar(r, type, `key "${key}"`) };
  const itemType = valueType(r, r.u32(`item type of "${key}"`), `array "${key}"`);
  if (itemType === "ARRAY")
    throw r.fail("BAD_VALUE_TYPE", `key "${key}" is an array of arrays (which llama.cpp refuses too)`);
  const at = r.pos;
  const count = r.u64(`item count of "${key}"`);
  // Every item takes at least its fixed size (a string at least its 8-byte length).
  const min = BigInt(VALUE_BYTES[itemType] || 8);
  if (count > BigInt(MAX_ARRAY_ITEMS) || count * min > BigInt(r.left())) {
    const why = count > BigInt(MAX_ARRAY_ITEMS) ? `the limit is ${MAX_ARRAY_ITEMS}` : `only ${r.left()} bytes are left`;
    throw r.fail("ARRAY_TOO_LONG", `key "${key}" at byte ${at} claims ${count} ${itemType} items but ${why}`);
  }
  const value: GgufScalar[] = new Array(Number(count));
  for (let i = 0; i < value.length; i++) value[i] = readScalar(r, itemType, () => `"${key}"[${i}]`);
  return { type: "ARRAY", itemType, value };
}

function readScalar(r: HeaderReader, type: GgufItemType, what: What): GgufScalar {
  return type === "STRING" ? r.string(what) : r.scalar(type, what);
}

function valueType(r: HeaderReader, id: number, what: string): GgufValueType {
  const type = VALUE_TYPES[id];
  if (type === undefined)
    throw r.fail("BAD_VALUE_TYPE", `${what} has value type ${id} (known: 0..${VALUE_TYPES.length - 1})`);
  return type;
}

function alignmentOf(r: HeaderReader, kv: GgufKv | undefined): number {
  if (kv === undefined) return DEFAULT_ALIGNMENT;
  if (kv.type !== "UINT32") throw r.fail("BAD_ALIGNMENT", `general.alignment must be a UINT32, not ${kv.type}`);
  const a = kv.value as number;
  if (a === 0 || (a & (a - 1)) !== 0) throw r.fail("BAD_ALIGNMENT", `general.alignment ${a} is not a power of two`);
  return a;
}

function readTensorInfo(r: HeaderReader, i: number, count: number): GgufTensor {
  // The index says how far into the header's count a bad info lies: the last one failing hints at a wrong count.
  const name = r.string(`name of tensor ${i} (of ${count})`);
  if (name.length === 0) throw r.fail("BAD_TENSOR_NAME", `tensor ${i} (of ${count}) has an empty name`);
  const what = `tensor "${name}"`;
  const nDims = r.u32(`${what} n_dims`);
  if (nDims < 1 || nDims > MAX_DIMS)
    throw r.fail("BAD_DIMS", `${what} has ${nDims} dimensions (1..${MAX_DIMS} allowed)`);
  const raw: bigint[] = [];
  for (let d = 0; d < nDims; d++) raw.push(r.u64(`${what} ne[${d}]`));
  const typeId = r.u32(`${what} type`);
  const offset = r.u64(`${what} offset`);

  let elements = 1n;
  for (const n of raw) elements *= n;
  if (elements > BigInt(Number.MAX_SAFE_INTEGER) || raw.some((n) => n > BigInt(Number.MAX_SAFE_INTEGER)))
    throw r.fail("SIZE_OVERFLOW", `${what} ne [${raw.join(", ")}] has more elements than can be addressed`);
  const ne = raw.map(Number);
  const type = ggmlTypeById(typeId);
  if (!type) {
    const removed = REMOVED_GGML_TYPES.get(typeId);
    throw r.fail(
      "UNKNOWN_GGML_TYPE",
      removed
        ? `${what} has ggml type ${typeId} (${removed}), which ggml removed: re-quantize with a current llama.cpp`
        : `${what} has unknown ggml type ${typeId} (a newer ggml than this reader knows?)`,
    );
  }
  if (ne[0] % type.blockSize !== 0)
    throw r.fail(
      "PARTIAL_BLOCK",
      `${what} ne0 ${ne[0]} is not a multiple of the ${type.name} block size ${type.blockSize}`,
    );
  const byteLength = ggmlBytes(type, Number(elements));
  if (!Number.isSafeInteger(byteLength))
    throw r.fail("SIZE_OVERFLOW", `${what} (${type.name}, ne [${ne.join(", ")}]) has more bytes than can be addressed`);
  if (offset > BigInt(r.size))
    throw r.fail(
      "TENSOR_OUT_OF_BOUNDS",
      `${what} data offset ${offset} lies past the end of the ${r.size}-byte file (truncated, or a wrong offset?)`,
    );
  return { name, type, ne, elements: Number(elements), byteLength, offset: Number(offset), start: 0, file: r.path };
}

/**
 * The bytes between the last tensor info and the data section are the writers' zero padding (ggml and gguf-py
 * write zeros). Anything else there is more header: a tensor count smaller than the infos the file holds.
 */
function checkPadding(r: HeaderReader, count: number, dataOffset: number): void {
  if (count === 0) return; // no data section (a vocabulary-only file): whatever follows is not read
  const end = Math.min(dataOffset, r.size);
  while (r.pos < end) {
    const at = r.pos;
    const b = r.u8("padding");
    if (b !== 0)
      throw r.fail(
        "BAD_PADDING",
        `byte ${at}, after the ${count} tensor infos the header counts, is ${b}, not the zero padding before the ` +
          "data section: the file holds more tensor infos than its tensor count says?",
      );
  }
}

function checkPlacement(r: HeaderReader, tensors: GgufTensor[], dataOffset: number, alignment: number): void {
  for (const t of tensors) {
    if (t.offset % alignment !== 0)
      throw r.fail("MISALIGNED_TENSOR", `tensor "${t.name}" offset ${t.offset} is not a multiple of ${alignment}`);
    t.start = dataOffset + t.offset;
    if (t.start + t.byteLength > r.size)
      throw r.fail(
        "TENSOR_OUT_OF_BOUNDS",
        `tensor "${t.name}" (${t.byteLength} bytes at data offset ${t.offset}) ends at byte ` +
          `${t.start + t.byteLength}, past the end of the ${r.size}-byte file (truncated?)`,
      );
  }
  const sorted = tensors.filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (sorted[i].offset < prev.offset + prev.byteLength)
      throw r.fail("OVERLAP", `tensor "${sorted[i].name}" at data offset ${sorted[i].offset} overlaps "${prev.name}"`);
  }
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

// ---- split sets ----

const SHARD_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

/** `name-0000k-of-0000n.gguf` → its prefix path, k (1-based) and n; undefined for other names. */
export function parseShardName(path: string): { prefix: string; index: number; count: number } | undefined {
  const m = SHARD_NAME.exec(basename(path));
  if (!m) return undefined;
  return { prefix: join(dirname(path), m[1]), index: Number(m[2]), count: Number(m[3]) };
}

/** llama.cpp's `llama_split_path`: shard k (1-based) of n. */
export function shardPath(prefix: string, index: number, count: number): string {
  return `${prefix}-${String(index).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.gguf`;
}

export const SPLIT_KEYS = ["split.no", "split.count", "split.tensors.count"] as const;

/** Open a .gguf file, or the whole split set any shard of which is named, as one tensor directory. */
export function openGguf(path: string): GgufModel {
  const first = readGgufFile(path);
  const shard = parseShardName(path);
  const declared = splitInt(first, "split.count");
  if (!shard || shard.count === 1) {
    if (declared !== undefined && declared > 1)
      throw new CheckpointError(
        path,
        `has split.count ${declared} but its name is not NAME-0000k-of-0000n.gguf, so its other shards cannot be found`,
        "SPLIT_MISMATCH",
      );
    return { path, files: [first], metadata: first.metadata, tensors: directory([first]) };
  }
  const files: GgufFile[] = [];
  for (let k = 1; k <= shard.count; k++) {
    const p = shardPath(shard.prefix, k, shard.count);
    if (k === shard.index) files.push(first);
    else {
      try {
        files.push(readGgufFile(p));
      } catch (e) {
        if (e instanceof CheckpointError && e.code === "NOT_FOUND")
          throw new CheckpointError(p, `shard ${k} of ${shard.count} of ${path} is missing`, "MISSING_SHARD");
        throw e;
      }
    }
  }
  checkSplit(files, shard.count);
  return { path, files, metadata: files[0].metadata, tensors: directory(files) };
}

function splitInt(f: GgufFile, key: string): number | undefined {
  const kv = f.metadata.get(key);
  if (kv === undefined) return undefined;
  const v = kv.value;
  if (kv.type === "ARRAY" || typeof v === "boolean" || typeof v === "string" || !Number.isInteger(Number(v)))
    throw new CheckpointError(f.path, `${key} must be an integer, not ${kv.type}`, "SPLIT_MISMATCH");
  return Number(kv.value);
}

function checkSplit(files: GgufFile[], count: number): void {
  const total = splitInt(files[0], "split.tensors.count");
  let sum = 0;
  files.forEach((f, i) => {
    const fail = (msg: string) => new CheckpointError(f.path, msg, "SPLIT_MISMATCH");
    const no = splitInt(f, "split.no");
    const n = splitInt(f, "split.count");
    const tc = splitInt(f, "split.tensors.count");
    if (no === undefined || n === undefined || tc === undefined)
      throw fail(`is named as shard ${i + 1} of ${count} but lacks split.no, split.count or split.tensors.count`);
    if (no !== i) throw fail(`has split.no ${no} but its name makes it shard ${i + 1} of ${count} (split.no ${i})`);
    if (n !== count) throw fail(`has split.count ${n} but its name says ${count} shards`);
    if (tc !== total) throw fail(`has split.tensors.count ${tc} but the first shard says ${total}`);
    for (const [key, kv] of f.metadata) {
      const mine = files[0].metadata.get(key);
      if (i > 0 && mine && !(SPLIT_KEYS as readonly string[]).includes(key) && !sameKv(mine, kv))
        throw fail(`disagrees with the first shard on "${key}"`);
    }
    sum += f.tensors.length;
  });
  if (sum !== total)
    throw new CheckpointError(
      files[0].path,
      `split.tensors.count is ${total} but the ${count} shards hold ${sum} tensors`,
      "SPLIT_MISMATCH",
    );
}

function sameKv(a: GgufKv, b: GgufKv): boolean {
  if (a.type !== b.type) return false;
  if (a.type === "ARRAY") {
    const bv = b.value as GgufScalar[];
    if (b.type !== "ARRAY" || a.itemType !== b.itemType || a.value.length !== bv.length) return false;
    return a.value.every((v, i) => v === bv[i]);
  }
  return a.value === b.value;
}

function directory(files: GgufFile[]): Map<string, GgufTensor> {
  const tensors = new Map<string, GgufTensor>();
  for (const f of files)
    for (const t of f.tensors) {
      const seen = tensors.get(t.name);
      if (seen)
        throw new CheckpointError(f.path, `tensor "${t.name}" is also stored in ${seen.file}`, "DUPLICATE_TENSOR");
      tensors.set(t.name, t);
    }
  return tensors;
}

// ---- metadata access ----

/** A numeric value (any integer or float type) as a JS number; undefined when the key is absent. */
export function metaNumber(meta: Map<string, GgufKv>, key: string, file: string): number | undefined {
  const kv = meta.get(key);
  if (kv === undefined) return undefined;
  if (kv.type === "ARRAY" || kv.type === "STRING" || kv.type === "BOOL")
    throw new CheckpointError(file, `metadata "${key}" must be a number, not ${describeType(kv)}`, "BAD_METADATA");
  return Number(kv.value);
}

export function metaString(meta: Map<string, GgufKv>, key: string, file: string): string | undefined {
  const kv = meta.get(key);
  if (kv === undefined) return undefined;
  if (kv.type !== "STRING")
    throw new CheckpointError(file, `metadata "${key}" must be a STRING, not ${describeType(kv)}`, "BAD_METADATA");
  return kv.value as string;
}

/** "UINT32", "ARRAY[STRING]" (the spelling of the fixtures' expected.json). */
export function describeType(kv: GgufKv): string {
  return kv.type === "ARRAY" ? `ARRAY[${kv.itemType}]` : kv.type;
}

// ---- tensor data ----

/** Read `into.length` bytes of a tensor's data starting `byteOffset` bytes into it, from an open descriptor. */
export function readTensorBytes(fd: number, t: GgufTensor, byteOffset: number, into: Uint8Array): void {
  if (byteOffset < 0 || byteOffset + into.length > t.byteLength)
    throw new RangeError(
      `bytes [${byteOffset}, ${byteOffset + into.length}) outside tensor "${t.name}" of ${t.byteLength} bytes`,
    );
  readFully(fd, into, t.start + byteOffset, t.file);
}
