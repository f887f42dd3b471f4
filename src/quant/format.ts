// The packed quantized checkpoint (docs/quantized-format.md): the names of a quantized weight's parts, and the
// `quantization` section of config.json that the writer builds and the reader validates.
import { CheckpointError, UserError } from "../errors.js";
import { packedBytes } from "./pack.js";
import { codeBits, formatClip, geometry, parseBits, parseBlock, parseClip, type Scheme } from "./scheme.js";

export const FORMAT = "superweight-packed";
export const FORMAT_VERSION = 1;

/** Suffixes of the stored parts of a quantized weight W: `W.qweight`, `W.qscale`, … */
export const PARTS = {
  qweight: ".qweight",
  qscale: ".qscale",
  qmin: ".qmin",
  keepIndex: ".keep_index",
  keepValue: ".keep_value",
} as const;

/** A held-out weight as config.json lists it. */
export interface KeptWeight {
  tensor: string;
  /** Position in the tensor's Hugging Face shape, e.g. [row, column]. */
  coordinates: number[];
  /** Row-major flat index. */
  index: number;
  /** The exact original value (float32). */
  value: number;
}

export interface QuantizedEntry {
  shape: number[];
  /** The source tensor's storage dtype ("BF16", …). */
  dtype: string;
  block_length: number;
  blocks: number;
  kept: number;
}

export interface QuantizationSection {
  format: typeof FORMAT;
  format_version: number;
  scheme: "rtn" | "nf4";
  bits: number;
  nf4_range?: "absmax" | "minmax";
  block: "tensor" | "channel" | number;
  clip: string;
  tensors: Record<string, QuantizedEntry>;
  kept: KeptWeight[];
}

export function sectionFor(
  scheme: Scheme,
  tensors: Record<string, QuantizedEntry>,
  kept: KeptWeight[],
): QuantizationSection {
  const section: QuantizationSection = {
    format: FORMAT,
    format_version: FORMAT_VERSION,
    scheme: scheme.kind,
    bits: codeBits(scheme),
    ...(scheme.kind === "nf4" ? { nf4_range: scheme.range } : {}),
    block: scheme.block,
    clip: formatClip(scheme.clip),
    tensors,
    kept,
  };
  return section;
}

/** Bytes of each stored part of a quantized weight of `elements` in `blocks` blocks with `kept` held out. */
export function packedParts(elements: number, blocks: number, bits: number, kept: number) {
  const wide = elements > 2 ** 31 - 1;
  return {
    qweight: packedBytes(elements, bits),
    qscale: 4 * blocks,
    qmin: 4 * blocks,
    keepIndex: kept * (wide ? 8 : 4),
    keepValue: kept * 4,
    /** Held-out indices are I64 past 2³¹ − 1 elements, else I32. */
    indexDtype: wide ? ("I64" as const) : ("I32" as const),
  };
}

/** Total bytes of a quantized weight's parts (what it costs on disk, headers aside). */
export function packedTensorBytes(elements: number, blocks: number, bits: number, kept: number): number {
  const p = packedParts(elements, blocks, bits, kept);
  return p.qweight + p.qscale + p.qmin + p.keepIndex + p.keepValue;
}

export function flatIndex(shape: readonly number[], coordinates: readonly number[]): number {
  let index = 0;
  for (let d = 0; d < shape.length; d++) index = index * shape[d] + coordinates[d];
  return index;
}

/** Whether coordinates name an element of a tensor of this shape. */
export function insideShape(shape: readonly number[], coordinates: readonly number[]): boolean {
  return (
    coordinates.length === shape.length &&
    coordinates.every((c, d) => Number.isSafeInteger(c) && c >= 0 && c < shape[d])
  );
}

export interface ParsedSection {
  scheme: Scheme;
  tensors: Map<string, QuantizedEntry>;
  kept: KeptWeight[];
}

/** Validate config.json's `quantization` section (at `path`, for messages). */
export function parseSection(path: string, raw: unknown): ParsedSection {
  const fail = (msg: string, code = "BAD_QUANTIZATION") => new CheckpointError(path, `quantization: ${msg}`, code);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw fail("is not an object");
  const q = raw as Record<string, unknown>;
  if (q.format !== FORMAT) throw fail(`format is ${JSON.stringify(q.format)}, not "${FORMAT}"`);
  if (q.format_version !== FORMAT_VERSION)
    throw fail(
      `format_version ${JSON.stringify(q.format_version)}: this reader knows version ${FORMAT_VERSION}`,
      "UNSUPPORTED_FORMAT_VERSION",
    );
  let scheme: Scheme;
  try {
    const block = parseBlock(String(q.block));
    const clip = parseClip(String(q.clip));
    if (q.scheme === "rtn") scheme = { kind: "rtn", bits: parseBits(String(q.bits)), block, clip };
    else if (q.scheme === "nf4" && q.bits === 4 && (q.nf4_range === "absmax" || q.nf4_range === "minmax"))
      scheme = { kind: "nf4", range: q.nf4_range, block, clip };
    else throw new UserError(`scheme ${JSON.stringify(q.scheme)} with bits ${q.bits}, nf4_range ${q.nf4_range}`);
  } catch (e) {
    if (e instanceof UserError) throw fail(e.message);
    throw e;
  }

  if (typeof q.tensors !== "object" || q.tensors === null || Array.isArray(q.tensors))
    throw fail("has no tensors object");
  const tensors = new Map<string, QuantizedEntry>();
  for (const [name, value] of Object.entries(q.tensors)) tensors.set(name, parseEntry(name, value, scheme, fail));

  if (!Array.isArray(q.kept)) throw fail("has no kept list");
  const kept = q.kept.map((k, i) => parseKept(k, i, tensors, fail));
  for (const [name, entry] of tensors) {
    const listed = kept.filter((k) => k.tensor === name).length;
    if (listed !== entry.kept) throw fail(`tensor "${name}" says kept ${entry.kept} but the kept list has ${listed}`);
  }
  return { scheme, tensors, kept };
}

function parseEntry(name: string, value: unknown, scheme: Scheme, fail: (m: string) => Error): QuantizedEntry {
  const e = (value ?? {}) as Record<string, unknown>;
  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw fail(`tensor "${name}": shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (!Number.isSafeInteger(shape.reduce((a: number, b: number) => a * b, 1)))
    throw fail(`tensor "${name}": shape ${JSON.stringify(shape)} overflows`);
  if (typeof e.dtype !== "string") throw fail(`tensor "${name}": dtype missing`);
  const g = geometry(scheme.block, shape);
  if (e.block_length !== g.blockLength || e.blocks !== g.blocks)
    throw fail(
      `tensor "${name}": block_length ${e.block_length} and blocks ${e.blocks} do not match block ` +
        `${scheme.block} of shape [${shape}] (${g.blockLength} and ${g.blocks})`,
    );
  if (!Number.isSafeInteger(e.kept) || (e.kept as number) < 0) throw fail(`tensor "${name}": kept is not a count`);
  return { shape, dtype: e.dtype, block_length: g.blockLength, blocks: g.blocks, kept: e.kept as number };
}

function parseKept(value: unknown, i: number, tensors: Map<string, QuantizedEntry>, fail: (m: string) => Error) {
  const k = (value ?? {}) as Record<string, unknown>;
  const entry = typeof k.tensor === "string" ? tensors.get(k.tensor) : undefined;
  if (!entry) throw fail(`kept[${i}] names tensor ${JSON.stringify(k.tensor)}, which is not quantized`);
  const coordinates = k.coordinates;
  if (!Array.isArray(coordinates) || !insideShape(entry.shape, coordinates))
    throw fail(`kept[${i}] coordinates ${JSON.stringify(coordinates)} are outside [${entry.shape}]`);
  if (k.index !== flatIndex(entry.shape, coordinates))
    throw fail(`kept[${i}] index ${k.index} is not that of coordinates [${coordinates}]`);
  if (typeof k.value !== "number" || !Number.isFinite(k.value)) throw fail(`kept[${i}] value is not a finite number`);
  return { tensor: k.tensor as string, coordinates, index: k.index as number, value: k.value } satisfies KeptWeight;
}
