// Reading safetensors files: validate the header the way the format requires, then read tensors
// lazily by offset (never the whole file), widening F16/BF16 to float32 as they are read.
//
// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then the data. The header maps
// each tensor name to {dtype, shape, data_offsets: [begin, end]} relative to the end of the header;
// "__metadata__" holds string pairs. Offsets must be contiguous, in order, and end exactly at EOF.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { CheckpointError } from "../errors.js";
import { regularFile } from "./files.js";
import { widenInPlace, type Dtype, DTYPE_BYTES, isSupportedDtype } from "./dtype.js";

export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Absolute byte offset of the first element in the file. */
  start: number;
  byteLength: number;
}

export interface SafetensorsFile {
  path: string;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

/** Validate a header from its bytes: `fileSize` is the size of the whole file. Throws CheckpointError. */
export function parseHeader(
  path: string,
  prefix: Uint8Array,
  fileSize: number,
): { headerLength: number; parse: (json: Uint8Array) => SafetensorsFile } {
  const fail = (code: string, msg: string) => new CheckpointError(path, msg, code);
  if (fileSize < 8)
    throw fail("TRUNCATED", `file is ${fileSize} bytes, too short to be safetensors (8-byte header length missing)`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES))
    throw fail(
      "HEADER_TOO_LARGE",
      `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file, or corrupt)`,
    );
  const headerLength = Number(n);
  if (8 + headerLength > fileSize)
    throw fail(
      "TRUNCATED",
      `header length ${headerLength} runs past the end of the ${fileSize}-byte file (truncated?)`,
    );
  return { headerLength, parse: (json) => parseHeaderJson(path, json, fileSize - 8 - headerLength, 8 + headerLength) };
}

function parseHeaderJson(path: string, json: Uint8Array, dataSize: number, dataStart: number): SafetensorsFile {
  const fail = (code: string, msg: string) => new CheckpointError(path, msg, code);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(json);
  } catch {
    throw fail("HEADER_NOT_UTF8", "header is not valid UTF-8");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw fail("HEADER_NOT_JSON", `header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw fail("HEADER_NOT_JSON", "header JSON is not an object");
  // JSON.parse keeps the last of two equal keys; the format (and the reference parser) refuses them.
  const twice = repeatedKey(text);
  if (twice !== undefined) throw fail("DUPLICATE_TENSOR", `header names tensor ${JSON.stringify(twice)} twice`);

  const tensors: TensorInfo[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(raw as Record<string, unknown>)) {
    if (name === "__metadata__") {
      const ok =
        entry === null ||
        (typeof entry === "object" &&
          !Array.isArray(entry) &&
          Object.values(entry).every((v) => typeof v === "string"));
      if (!ok) throw fail("INVALID_METADATA", `"__metadata__" must map strings to strings`);
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    if (name === "") throw fail("INVALID_ENTRY", "header has a tensor with an empty name");
    tensors.push(parseEntry(path, name, entry, dataStart));
  }

  // Offsets sorted, contiguous from 0, ending exactly at the end of the file.
  const sorted = [...tensors].sort((a, b) => a.start - b.start || a.byteLength - b.byteLength);
  let cursor = dataStart;
  for (const t of sorted) {
    const begin = t.start - dataStart;
    if (t.start < cursor)
      throw fail(
        "OVERLAP",
        `tensor "${t.name}" data_offsets [${begin}, ${begin + t.byteLength}] overlap the previous tensor`,
      );
    if (t.start > cursor)
      throw fail(
        "GAP",
        `tensor "${t.name}" starts at ${begin}, leaving a gap after byte ${cursor - dataStart} (offsets must be contiguous)`,
      );
    cursor = t.start + t.byteLength;
  }
  const end = cursor - dataStart;
  if (end > dataSize)
    throw fail(
      "TRUNCATED",
      `tensor data needs ${end} bytes after the header but the file holds ${dataSize} (truncated?)`,
    );
  if (end < dataSize)
    throw fail(
      "TRAILING_BYTES",
      `${dataSize - end} bytes after the last tensor (offsets do not end at the end of the file)`,
    );
  return { path, tensors: new Map(tensors.map((t) => [t.name, t])), metadata };
}

function parseEntry(path: string, name: string, entry: unknown, dataStart: number): TensorInfo {
  const fail = (code: string, msg: string) => new CheckpointError(path, `tensor "${name}": ${msg}`, code);
  if (typeof entry !== "object" || entry === null) throw fail("INVALID_ENTRY", "header entry is not an object");
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, dtype))
    throw fail("UNKNOWN_DTYPE", `unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw fail("INVALID_SHAPE", `shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[1] < offsets[0]
  )
    throw fail(
      "INVALID_OFFSETS",
      `data_offsets ${JSON.stringify(offsets)} are not [begin, end] with 0 <= begin <= end`,
    );
  let bytes = DTYPE_BYTES[dtype as Dtype];
  for (const d of shape) {
    bytes *= d;
    if (!Number.isSafeInteger(bytes)) throw fail("SIZE_OVERFLOW", `shape ${JSON.stringify(shape)} overflows`);
  }
  const span = offsets[1] - offsets[0];
  if (span !== bytes)
    throw fail(
      "SIZE_MISMATCH",
      `${dtype} × ${JSON.stringify(shape)} is ${bytes} bytes but data_offsets [${offsets[0]}, ${offsets[1]}] span ${span}`,
    );
  return { name, dtype: dtype as Dtype, shape: shape as number[], start: dataStart + offsets[0], byteLength: bytes };
}

/** A key that occurs twice at the top level of a JSON object's text (which is known to parse). */
function repeatedKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
    else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1) {
        let k = j + 1;
        while (/\s/.test(text[k])) k++;
        if (text[k] === ":") {
          const key = JSON.parse(text.slice(i, j + 1)) as string;
          if (seen.has(key)) return key;
          seen.add(key);
        }
      }
      i = j;
    }
  }
  return undefined;
}

/** Open and validate a safetensors file; tensors are read later with `readTensorRange`. */
export function openSafetensors(path: string): SafetensorsFile {
  regularFile(path);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new CheckpointError(path, `cannot be opened: ${(e as Error).message}`, "IO");
  }
  try {
    const size = fstatSync(fd).size;
    const prefix = new Uint8Array(8);
    if (size >= 8) readExactly(fd, prefix, 0, path);
    if (Buffer.from(prefix).toString("latin1") === "version ") {
      const head = new Uint8Array(Math.min(size, 200));
      readExactly(fd, head, 0, path);
      if (Buffer.from(head).toString("latin1").startsWith("version https://git-lfs"))
        throw new CheckpointError(
          path,
          "is a Git LFS pointer, not the weights: fetch them with `git lfs pull` (or download the model again)",
          "LFS_POINTER",
        );
    }
    const { headerLength, parse } = parseHeader(path, prefix, size);
    const json = new Uint8Array(headerLength);
    readExactly(fd, json, 8, path);
    return parse(json);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(path, `cannot read: ${(e as Error).message}`, "IO");
  } finally {
    closeSync(fd);
  }
}

/** Fill `into` from byte `position` of the open file `fd` (CheckpointError IO / TRUNCATED naming `path`). */
export function readExactly(fd: number, into: Uint8Array, position: number, path: string): void {
  let done = 0;
  while (done < into.length) {
    let n: number;
    try {
      n = readSync(fd, into, done, into.length - done, position + done);
    } catch (e) {
      throw new CheckpointError(path, `read failed at byte ${position + done}: ${(e as Error).message}`, "IO");
    }
    if (n === 0)
      throw new CheckpointError(path, `unexpected end of file at byte ${position + done} (truncated?)`, "TRUNCATED");
    done += n;
  }
}

// One shared descriptor per file while the process runs; the checkpoint closes them. The engine's worker
// lanes read through the same descriptors (a descriptor belongs to the process, not to a thread).
const descriptors = new Map<string, number>();
export function fdFor(path: string): number {
  let fd = descriptors.get(path);
  if (fd === undefined) {
    try {
      fd = openSync(path, "r");
    } catch (e) {
      throw new CheckpointError(path, `cannot be opened: ${(e as Error).message}`, "IO");
    }
    descriptors.set(path, fd);
  }
  return fd;
}
export function closeFile(path: string): void {
  const fd = descriptors.get(path);
  if (fd !== undefined) (closeSync(fd), descriptors.delete(path));
}

/**
 * Read `count` elements of a tensor starting at element `first`, as float32 into `out` (or a new array).
 * The raw bytes are read straight into the output buffer and widened in place.
 */
export function readTensorRange(
  file: SafetensorsFile,
  t: TensorInfo,
  first: number,
  count: number,
  out?: Float32Array,
): Float32Array {
  if (!isSupportedDtype(t.dtype))
    throw new CheckpointError(
      file.path,
      `tensor "${t.name}" has dtype ${t.dtype}; superweight reads F32, F16 and BF16`,
      "UNSUPPORTED_DTYPE",
    );
  const elements = t.shape.reduce((a, b) => a * b, 1);
  if (
    !Number.isSafeInteger(first) ||
    !Number.isSafeInteger(count) ||
    first < 0 ||
    count < 0 ||
    first + count > elements
  )
    throw new RangeError(`elements [${first}, ${first + count}) outside tensor "${t.name}" of ${elements} elements`);
  if (out && out.length < count)
    throw new RangeError(`output buffer holds ${out.length} elements, ${count} requested from "${t.name}"`);
  const result = out ?? new Float32Array(count);
  const width = DTYPE_BYTES[t.dtype];
  const bytes = new Uint8Array(result.buffer, result.byteOffset, count * width);
  readExactly(fdFor(file.path), bytes, t.start + first * width, file.path);
  widenInPlace(result, count, t.dtype);
  return result;
}

/**
 * Read `byteCount` stored bytes of a tensor of any dtype (packed codes, indices, a raw copy), starting `firstByte`
 * bytes into its data, into `out` (or a new array). No conversion: the bytes as the file has them.
 */
export function readTensorBytes(
  file: Pick<SafetensorsFile, "path">,
  t: TensorInfo,
  firstByte: number,
  byteCount: number,
  out?: Uint8Array,
): Uint8Array {
  const end = firstByte + byteCount;
  const valid = Number.isSafeInteger(firstByte) && Number.isSafeInteger(byteCount) && firstByte >= 0 && byteCount >= 0;
  if (!valid || end > t.byteLength)
    throw new RangeError(`bytes [${firstByte}, ${end}) outside tensor "${t.name}" of ${t.byteLength} bytes`);
  if (out && out.length < byteCount)
    throw new RangeError(`output buffer holds ${out.length} bytes, ${byteCount} requested from "${t.name}"`);
  const result = out ? out.subarray(0, byteCount) : new Uint8Array(byteCount);
  readExactly(fdFor(file.path), result, t.start + firstByte, file.path);
  return result;
}
