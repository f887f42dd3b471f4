// Writing a packed quantized checkpoint (docs/quantized-format.md) from a safetensors checkpoint folder, tensor by
// tensor and chunk by chunk: memory stays bounded by about one chunk of rows (4 M elements), never the model.
// Everything goes into a hidden sibling folder that is renamed into place at the end, so the output folder appears
// whole or not at all; a failure removes the partial folder.
import {
  copyFileSync, existsSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync,
} from "node:fs";
import { basename, dirname, join, resolve, sep } from "node:path";
import { Checkpoint } from "../checkpoint/checkpoint.js";
import { DTYPE_BYTES } from "../checkpoint/dtype.js";
import { readTensorBytes, type TensorInfo } from "../checkpoint/safetensors.js";
import { writeCheckpoint, type RawTensorToWrite, type WriteBytes } from "../checkpoint/writer.js";

/** Shards of at most 5 GB, as transformers' save_pretrained writes them. */
const MAX_SHARD_BYTES = 5e9;
import { CheckpointError, UserError } from "../errors.js";
import { flatIndex, insideShape, PARTS, sectionFor, type KeptWeight, type QuantizedEntry } from "./format.js";
import { CodeStream, packedBytes } from "./pack.js";
import { BlockStatistics, encode, QuantizeError, type BlockParams } from "./rtn.js";
import { checkScheme, codeBits, dtypeLabel, type Scheme } from "./scheme.js";

/** A weight to hold out at full precision, by its position in the tensor's Hugging Face shape. */
export interface KeepRequest {
  tensor: string;
  coordinates: number[];
}

export interface PackOptions {
  scheme: Scheme;
  keep?: KeepRequest[];
  /** Which tensors to quantize (default: `defaultQuantizable`). */
  include?: (name: string, shape: readonly number[]) => boolean;
  /** Replace an existing non-empty output folder. */
  force?: boolean;
  /** Elements read per step; a tensor larger than this is read twice (statistics, then codes). */
  chunkElements?: number;
  /** How bytes reach the file (tests inject one that fails). */
  write?: WriteBytes;
  /** Largest safetensors file (default 5 GB); more bytes are sharded with an index. */
  maxShardBytes?: number;
}

export interface PackedTensorSummary {
  name: string;
  /** "rtn4", "nf4", or the source dtype for a tensor copied unchanged. */
  dtype: string;
  bytes: number;
  sourceBytes: number;
}

export interface PackSummary {
  folder: string;
  tensors: PackedTensorSummary[];
  kept: KeptWeight[];
}

/** Files beside the weights that a quantized copy keeps: tokenizer and generation settings. */
const COPIED = new Set([
  "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
  "vocab.json", "vocab.txt", "merges.txt", "generation_config.json", "chat_template.json", "chat_template.jinja",
]);

const DEFAULT_CHUNK = 1 << 22;

/**
 * The paper's choice (outliers/model.py): every weight matrix of the decoder — attention and MLP projections —
 * but not the embeddings, the LM head or the norms.
 */
export function defaultQuantizable(name: string, shape: readonly number[]): boolean {
  return shape.length >= 2 && name.endsWith(".weight") && !/(embed|wte|wpe|lm_head|norm)/.test(name);
}

export function writePackedCheckpoint(source: string, out: string, options: PackOptions): PackSummary {
  checkScheme(options.scheme);
  const ckpt = Checkpoint.open(source);
  try {
    if ("quantization" in ckpt.config)
      throw new UserError("is already a quantized checkpoint", join(source, "config.json"));
    const target = checkTarget(source, out, options.force ?? false);
    const plan = planTensors(ckpt, options);
    const partial = join(dirname(target), `.${basename(target)}.partial-${process.pid}-${Date.now().toString(36)}`);
    mkdirSync(dirname(target), { recursive: true });
    mkdirSync(partial);
    try {
      for (const f of readdirSync(source)) if (COPIED.has(f)) copyFileSync(join(source, f), join(partial, f));
      const config = { ...ckpt.config, quantization: sectionFor(options.scheme, plan.entries, plan.kept) };
      writeCheckpoint(partial, config, plan.parts, { maxBytes: options.maxShardBytes ?? MAX_SHARD_BYTES }, {}, options.write);
      publish(partial, target);
    } catch (e) {
      rmSync(partial, { recursive: true, force: true });
      throw e;
    }
    return { folder: target, tensors: plan.summary, kept: plan.kept };
  } finally {
    ckpt.close();
  }
}

/** The absolute output folder, after refusing the source itself, a folder around or inside it, or a non-empty one. */
function checkTarget(source: string, out: string, force: boolean): string {
  const src = realpathSync(source);
  const target = realPath(out);
  if (target === src) throw new UserError("is the source checkpoint; write the quantized copy to another folder", out);
  if (src.startsWith(target + sep)) throw new UserError(`contains the source checkpoint ${source}`, out);
  if (target.startsWith(src + sep)) throw new UserError(`is inside the source checkpoint ${source}`, out);
  if (existsSync(target)) {
    if (!statSync(target).isDirectory()) throw new UserError("exists and is not a folder", out);
    if (readdirSync(target).length > 0 && !force)
      throw new UserError("exists and is not empty (use --force to replace it)", out);
  }
  return target;
}

/** The absolute path with every link resolved, for a path whose last parts may not exist yet. */
function realPath(path: string): string {
  const absolute = resolve(path);
  if (existsSync(absolute)) return realpathSync(absolute);
  const parent = dirname(absolute);
  return parent === absolute ? absolute : join(realPath(parent), basename(absolute));
}

/** Rename the finished folder into place; an existing one is moved aside first and removed after. */
function publish(partial: string, target: string): void {
  if (!existsSync(target)) return renameSync(partial, target);
  const old = `${partial}.replaced`;
  renameSync(target, old);
  try {
    renameSync(partial, target);
  } catch (e) {
    renameSync(old, target);
    throw e;
  }
  rmSync(old, { recursive: true, force: true });
}

interface Plan {
  parts: RawTensorToWrite[];
  entries: Record<string, QuantizedEntry>;
  kept: KeptWeight[];
  summary: PackedTensorSummary[];
}

function planTensors(ckpt: Checkpoint, options: PackOptions): Plan {
  const include = options.include ?? defaultQuantizable;
  const keepBy = keptByTensor(ckpt, options.keep ?? [], include);
  const plan: Plan = { parts: [], entries: {}, kept: [], summary: [] };
  for (const name of ckpt.names()) {
    const info = ckpt.header(name);
    if (!include(name, info.shape)) {
      plan.parts.push({ name, dtype: info.dtype, shape: info.shape, bytes: () => copyBytes(ckpt, info) });
      plan.summary.push({ name, dtype: info.dtype, bytes: info.byteLength, sourceBytes: info.byteLength });
      continue;
    }
    const kept = keepBy.get(name) ?? [];
    const chunk = options.chunkElements ?? DEFAULT_CHUNK;
    const job = new TensorJob(ckpt, info, options.scheme, kept.map((k) => k.index), chunk);
    const { elements, blocks, blockLength } = job.stats.geometry;
    const parts: RawTensorToWrite[] = [
      { name: name + PARTS.qweight, dtype: "U8", shape: [packedBytes(elements, job.bits)], bytes: () => job.packed() },
      { name: name + PARTS.qscale, dtype: "F32", shape: [blocks], bytes: () => [f32Bytes(job.params().scale)] },
      { name: name + PARTS.qmin, dtype: "F32", shape: [blocks], bytes: () => [f32Bytes(job.params().offset)] },
    ];
    if (kept.length > 0) {
      const wide = elements > 2 ** 31 - 1;
      const index = wide ? BigInt64Array.from(kept, (k) => BigInt(k.index)) : Int32Array.from(kept, (k) => k.index);
      const keepIndex = new Uint8Array(index.buffer);
      const keepValue = f32Bytes(Float32Array.from(kept, (k) => k.value));
      parts.push({ name: name + PARTS.keepIndex, dtype: wide ? "I64" : "I32", shape: [kept.length], bytes: keepIndex });
      parts.push({ name: name + PARTS.keepValue, dtype: "F32", shape: [kept.length], bytes: keepValue });
    }
    plan.parts.push(...parts);
    plan.entries[name] = { shape: info.shape, dtype: info.dtype, block_length: blockLength, blocks, kept: kept.length };
    plan.kept.push(...kept);
    const bytes = parts.reduce((sum, p) => sum + p.shape[0] * DTYPE_BYTES[p.dtype], 0);
    plan.summary.push({ name, dtype: dtypeLabel(options.scheme), bytes, sourceBytes: info.byteLength });
  }
  return plan;
}

/** The held-out weights per tensor, sorted, with their exact values; each request checked. */
function keptByTensor(ckpt: Checkpoint, requests: KeepRequest[], include: PackOptions["include"] & {}) {
  const byTensor = new Map<string, KeptWeight[]>();
  for (const { tensor, coordinates } of requests) {
    const what = `held-out weight ${tensor}[${coordinates}]`;
    if (!ckpt.has(tensor)) throw new UserError(`${what}: no such tensor in the checkpoint`, ckpt.folder);
    const { shape } = ckpt.info(tensor);
    if (!include(tensor, shape)) throw new UserError(`${what}: that tensor is not quantized (it is kept as it is)`);
    if (!insideShape(shape, coordinates)) throw new UserError(`${what}: outside the tensor's shape [${shape}]`);
    const index = flatIndex(shape, coordinates);
    const list = byTensor.get(tensor) ?? [];
    if (list.some((k) => k.index === index)) throw new UserError(`${what} is listed twice`);
    list.push({ tensor, coordinates: [...coordinates], index, value: ckpt.readElement(tensor, index) });
    byTensor.set(tensor, list);
  }
  for (const list of byTensor.values()) list.sort((a, b) => a.index - b.index);
  return byTensor;
}

/**
 * One quantized tensor, its codes written before its scales. When each block's parameters are final as soon as the
 * block is read (no tensor-pct clipping, blocks no larger than a chunk), one pass reads, measures and encodes;
 * otherwise a first pass measures and a second encodes (a tensor that fits in one chunk is read once for both).
 */
class TensorJob {
  readonly stats: BlockStatistics;
  readonly bits: number;
  private result?: BlockParams;
  /** The whole tensor, when it fits in one chunk and takes two passes. */
  private whole?: Float32Array;

  constructor(
    private readonly ckpt: Checkpoint,
    private readonly info: TensorInfo,
    private readonly scheme: Scheme,
    keep: number[],
    private readonly chunkElements: number,
  ) {
    this.stats = new BlockStatistics(scheme, info.shape, keep);
    this.bits = codeBits(scheme);
  }

  /** Every block's parameters (after `packed`, or from a first pass of their own). */
  params(): BlockParams {
    if (!this.result) {
      for (const { values } of this.chunks()) {
        this.guard(() => this.stats.add(values));
        if (values.length === this.stats.geometry.elements) this.whole = values;
      }
      this.result = this.guard(() => this.stats.finish());
    }
    return this.result;
  }

  *packed(): Iterable<Uint8Array> {
    const stream = new CodeStream(this.bits);
    const { blockLength, elements } = this.stats.geometry;
    if (this.scheme.clip.method !== "tensor-pct" && blockLength <= this.chunkElements) {
      // values read but not yet encoded (less than a block): elements [done, done + pending.length)
      let pending = new Float32Array(0);
      let done = 0;
      for (const { values } of this.chunks()) {
        this.guard(() => this.stats.add(values));
        const joined = pending.length ? concat(pending, values) : values;
        const end = Math.min(elements, this.stats.ready() * blockLength);
        yield stream.push(this.encode(joined.subarray(0, end - done), done));
        pending = joined.slice(end - done);
        done = end;
      }
      this.result = this.guard(() => this.stats.finish());
    } else {
      this.params();
      const chunks = this.whole ? [{ first: 0, values: this.whole }] : this.chunks();
      for (const { first, values } of chunks) yield stream.push(this.encode(values, first));
      this.whole = undefined;
    }
    yield stream.end();
  }

  private encode(values: Float32Array, first: number): Uint8Array {
    const codes = new Uint8Array(values.length);
    encode(codes, values, first, this.scheme, this.stats.params);
    return codes;
  }

  /** The tensor in row ranges of about chunkElements (at least one row), read lazily. */
  private *chunks(): Iterable<{ first: number; values: Float32Array }> {
    const shape = this.info.shape;
    const rows = shape.length === 0 ? 1 : shape[0];
    const rowSize = shape.slice(1).reduce((a, b) => a * b, 1);
    const step = Math.max(1, Math.floor(this.chunkElements / Math.max(1, rowSize)));
    for (let r = 0; r < rows; r += step)
      yield { first: r * rowSize, values: this.ckpt.readRows(this.info.name, r, Math.min(rows, r + step)) };
  }

  /** Weights that cannot be quantized become an error naming the file and tensor. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof QuantizeError)) throw e;
      const code = e.code === "NON_FINITE" ? "NON_FINITE_WEIGHT" : e.code;
      throw new CheckpointError(this.ckpt.fileOf(this.info.name), `tensor "${this.info.name}": ${e.message}`, code);
    }
  }
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function f32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** A tensor kept as it is: its stored bytes, copied in pieces of at most 16 MB. */
function* copyBytes(ckpt: Checkpoint, info: TensorInfo): Iterable<Uint8Array> {
  const file = { path: ckpt.fileOf(info.name) };
  const piece = 1 << 24;
  for (let at = 0; at < info.byteLength; at += piece)
    yield readTensorBytes(file, info, at, Math.min(piece, info.byteLength - at));
}
