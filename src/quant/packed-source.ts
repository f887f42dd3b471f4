// Reading a packed quantized checkpoint (docs/quantized-format.md) as a tensor source: opening validates the
// `quantization` section and every packed part's dtype and size; readRows reads and dequantizes only the codes and
// block parameters of the rows asked for, then puts the held-out weights back. Plain tensors pass through.
import { join } from "node:path";
import { blockBuffer, MAX_BLOCK_ELEMENTS } from "../checkpoint/block-buffer.js";
import { Checkpoint } from "../checkpoint/checkpoint.js";
import type { RawConfig, SourceTensor, TensorSource } from "../checkpoint/source.js";
import { readTensorBytes, type TensorInfo } from "../checkpoint/safetensors.js";
import { CheckpointError } from "../errors.js";
import { parseSection, PARTS, type KeptWeight, type QuantizedEntry } from "./format.js";
import { packedBytes } from "./pack.js";
import { decodePacked, restoreKept } from "./rtn.js";
import { codeBits, dtypeLabel, geometry, levelTable, type Geometry, type Scheme } from "./scheme.js";

interface PackedTensor {
  entry: QuantizedEntry;
  geometry: Geometry;
  qweight: TensorInfo;
  qscale: TensorInfo;
  qmin: TensorInfo;
  keepIndex: Float64Array;
  keepValue: Float32Array;
  bytes: number;
}

export class PackedCheckpoint implements TensorSource {
  private readonly bits: number;
  private readonly levels: Float32Array;
  /** The packed code bytes of the rows being read (reused). */
  private codeBytes = new Uint8Array(0);

  private constructor(
    readonly path: string,
    readonly config: RawConfig,
    readonly scheme: Scheme,
    readonly kept: readonly KeptWeight[],
    private readonly files: Checkpoint,
    private readonly packed: Map<string, PackedTensor>,
    private readonly order: string[],
  ) {
    this.bits = codeBits(scheme);
    this.levels = levelTable(scheme);
  }

  /** Whether a checkpoint's config.json declares a packed quantized checkpoint. */
  static isPacked(config: RawConfig): boolean {
    return "quantization" in config;
  }

  static open(folder: string): PackedCheckpoint {
    const files = Checkpoint.open(folder);
    try {
      const configPath = join(folder, "config.json");
      if (!PackedCheckpoint.isPacked(files.config))
        throw new CheckpointError(configPath, "has no quantization section: not a packed checkpoint", "NOT_QUANTIZED");
      const { scheme, tensors, kept } = parseSection(configPath, files.config.quantization);
      const packed = new Map<string, PackedTensor>();
      for (const [name, entry] of tensors) packed.set(name, openPacked(files, name, entry, scheme, kept));
      const order: string[] = [];
      for (const stored of files.names()) {
        const part = Object.values(PARTS).find((suffix) => stored.endsWith(suffix));
        if (part === undefined) {
          if (packed.has(stored)) {
            const message = `tensor "${stored}" is stored both plain and quantized`;
            throw new CheckpointError(files.fileOf(stored), message, "DUPLICATE_TENSOR");
          }
          order.push(stored);
        } else if (!packed.has(stored.slice(0, -part.length))) {
          const message = `tensor "${stored}" is a packed part of a tensor config.json does not list as quantized`;
          throw new CheckpointError(files.fileOf(stored), message, "UNEXPECTED_TENSOR");
        } else if (part === PARTS.qweight) order.push(stored.slice(0, -part.length));
      }
      return new PackedCheckpoint(folder, files.config, scheme, kept, files, packed, order);
    } catch (e) {
      files.close();
      throw e;
    }
  }

  get configFile(): string {
    return join(this.path, "config.json");
  }

  fileOf(name: string): string {
    return this.files.fileOf(this.packed.has(name) ? name + PARTS.qweight : name);
  }

  names(): string[] {
    return [...this.order];
  }

  info(name: string): SourceTensor {
    const p = this.packed.get(name);
    if (p) return { name, shape: [...p.entry.shape], dtype: dtypeLabel(this.scheme), bytes: p.bytes };
    const t = this.files.header(name);
    return { name, shape: [...t.shape], dtype: t.dtype, bytes: t.byteLength };
  }

  /** Rows [r0, r1) as float32 (a row = product of the trailing dims); quantized tensors dequantized. Without `out`,
   * into the block buffer, valid until the next read (as the safetensors reader). */
  readRows(name: string, r0: number, r1: number, out?: Float32Array): Float32Array {
    const p = this.packed.get(name);
    if (!p) return this.files.readRows(name, r0, r1, out);
    const shape = p.entry.shape;
    const rows = shape.length === 0 ? 1 : shape[0];
    const rowSize = shape.slice(1).reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(r0) || !Number.isSafeInteger(r1) || r0 < 0 || r1 > rows || r0 > r1)
      throw new RangeError(`rows [${r0}, ${r1}) outside "${name}" with ${rows} rows`);
    const first = r0 * rowSize;
    const count = (r1 - r0) * rowSize;
    if (out && out.length < count)
      throw new RangeError(`output buffer holds ${out.length} elements, ${count} requested from "${name}"`);
    const result = out ?? (count <= MAX_BLOCK_ELEMENTS ? blockBuffer(count) : new Float32Array(count));
    if (count === 0) return result;

    const { blockLength } = p.geometry;
    const b0 = Math.floor(first / blockLength);
    const b1 = Math.floor((first + count - 1) / blockLength) + 1;
    const scale = this.readParams(name, p.qscale, b0, b1, true);
    const offset = this.readParams(name, p.qmin, b0, b1, false);
    const bit0 = first * this.bits;
    const byte0 = Math.floor(bit0 / 8);
    const byteCount = packedBytes(first + count, this.bits) - byte0;
    if (this.codeBytes.length < byteCount) this.codeBytes = new Uint8Array(byteCount);
    const bytes = readTensorBytes(this.stored(p.qweight), p.qweight, byte0, byteCount, this.codeBytes);
    decodePacked(result, bytes, bit0 - byte0 * 8, this.bits, first, count, this.levels, blockLength, scale, offset, b0);
    restoreKept(result, first, count, p.keepIndex, p.keepValue);
    return result;
  }

  /** The whole tensor as float32, in a new array. */
  read(name: string): Float32Array {
    const shape = this.info(name).shape;
    const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
    return this.readRows(name, 0, shape.length === 0 ? 1 : shape[0], out);
  }

  close(): void {
    this.files.close();
  }

  private stored(t: TensorInfo) {
    return { path: this.files.fileOf(t.name) };
  }

  /** Blocks [b0, b1) of qscale (finite, ≥ 0) or qmin (finite). */
  private readParams(name: string, t: TensorInfo, b0: number, b1: number, isScale: boolean): Float32Array {
    const values = new Float32Array(b1 - b0);
    readTensorBytes(this.stored(t), t, b0 * 4, (b1 - b0) * 4, new Uint8Array(values.buffer));
    for (let i = 0; i < values.length; i++)
      if (!Number.isFinite(values[i]) || (isScale && values[i] < 0))
        throw new CheckpointError(
          this.files.fileOf(t.name),
          `tensor "${name}": block ${b0 + i} has ${isScale ? "scale" : "minimum"} ${values[i]}`,
          "BAD_SCALE",
        );
    return values;
  }
}

/** Find and check the stored parts of one quantized tensor; read its held-out weights. */
function openPacked(
  files: Checkpoint,
  name: string,
  entry: QuantizedEntry,
  scheme: Scheme,
  kept: readonly KeptWeight[],
): PackedTensor {
  const g = geometry(scheme.block, entry.shape);
  const part = (suffix: string, dtypes: string[], length: number): TensorInfo => {
    const partName = name + suffix;
    if (!files.has(partName)) {
      const message = `tensor "${partName}" (a part of quantized "${name}") is missing`;
      throw new CheckpointError(files.folder, message, "MISSING_TENSOR");
    }
    const t = files.header(partName);
    const where = files.fileOf(partName);
    if (!dtypes.includes(t.dtype)) {
      const message = `tensor "${partName}" is ${t.dtype}, not ${dtypes.join(" or ")}`;
      throw new CheckpointError(where, message, "PACKED_DTYPE");
    }
    if (t.shape.length !== 1 || t.shape[0] !== length)
      throw new CheckpointError(
        where,
        `tensor "${partName}" has shape [${t.shape}], not [${length}] (quantized ` +
          `"${name}" [${entry.shape}]: ${g.blocks} blocks of ${g.blockLength}, ${entry.kept} held out)`,
        "PACKED_SIZE",
      );
    return t;
  };
  const qweight = part(PARTS.qweight, ["U8"], packedBytes(g.elements, codeBits(scheme)));
  const qscale = part(PARTS.qscale, ["F32"], g.blocks);
  const qmin = part(PARTS.qmin, ["F32"], g.blocks);
  let keepIndex: Float64Array = new Float64Array(0);
  let keepValue = new Float32Array(0);
  let bytes = qweight.byteLength + qscale.byteLength + qmin.byteLength;
  if (entry.kept === 0) {
    for (const suffix of [PARTS.keepIndex, PARTS.keepValue])
      if (files.has(name + suffix))
        throw new CheckpointError(
          files.fileOf(name + suffix),
          `tensor "${name + suffix}" is stored but config.json ` + `lists no held-out weights for "${name}"`,
          "UNEXPECTED_TENSOR",
        );
  } else {
    const indexInfo = part(PARTS.keepIndex, ["I32", "I64"], entry.kept);
    const valueInfo = part(PARTS.keepValue, ["F32"], entry.kept);
    keepIndex = readIndices(files, indexInfo);
    keepValue = new Float32Array(entry.kept);
    readTensorBytes(
      { path: files.fileOf(valueInfo.name) },
      valueInfo,
      0,
      valueInfo.byteLength,
      new Uint8Array(keepValue.buffer),
    );
    checkKept(files, name, g.elements, keepIndex, keepValue, indexInfo, valueInfo, kept);
    bytes += indexInfo.byteLength + valueInfo.byteLength;
  }
  return { entry, geometry: g, qweight, qscale, qmin, keepIndex, keepValue, bytes };
}

function readIndices(files: Checkpoint, t: TensorInfo): Float64Array {
  const raw = readTensorBytes({ path: files.fileOf(t.name) }, t, 0, t.byteLength);
  const buffer = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  if (t.dtype === "I32") return Float64Array.from(new Int32Array(buffer));
  return Float64Array.from(new BigInt64Array(buffer), (v) => (v > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(v)));
}

/** Held-out indices increase strictly inside the tensor, values are finite, and both match config.json's list. */
function checkKept(
  files: Checkpoint,
  name: string,
  elements: number,
  index: Float64Array,
  value: Float32Array,
  indexInfo: TensorInfo,
  valueInfo: TensorInfo,
  listed: readonly KeptWeight[],
): void {
  for (let i = 0; i < index.length; i++) {
    const inside = Number.isSafeInteger(index[i]) && index[i] >= 0 && index[i] < elements;
    if (!inside || (i > 0 && index[i] <= index[i - 1])) {
      const message =
        `tensor "${indexInfo.name}": entry ${i} (${index[i]}) is not a strictly increasing index ` +
        `inside the ${elements} elements of "${name}"`;
      throw new CheckpointError(files.fileOf(indexInfo.name), message, "BAD_KEEP_INDEX");
    }
  }
  for (let i = 0; i < value.length; i++)
    if (!Number.isFinite(value[i]))
      throw new CheckpointError(
        files.fileOf(valueInfo.name),
        `tensor "${valueInfo.name}": entry ${i} is ${value[i]}`,
        "BAD_KEEP_VALUE",
      );
  const mine = listed.filter((k) => k.tensor === name).sort((a, b) => a.index - b.index);
  mine.forEach((k, i) => {
    if (k.index !== index[i] || Math.fround(k.value) !== value[i]) {
      const message =
        `held-out weight ${i} of "${name}" is element ${index[i]} = ${value[i]} here but ` +
        `${k.index} = ${k.value} in config.json`;
      throw new CheckpointError(files.fileOf(indexInfo.name), message, "KEEP_MISMATCH");
    }
  });
}
