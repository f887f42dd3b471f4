// Writing a packed quantized checkpoint (docs/quantized-format.md) from a safetensors checkpoint folder, tensor by
// tensor and chunk by chunk: memory stays bounded by about one chunk of rows (4 M elements), never the model. The
// folder appears whole or not at all (folder.ts).
import { join } from "node:path";
import { Checkpoint } from "../checkpoint/checkpoint.js";
import { DTYPE_BYTES } from "../checkpoint/dtype.js";
import { readTensorBytes, type TensorInfo } from "../checkpoint/safetensors.js";
import { writeCheckpoint, type RawTensorToWrite, type WriteBytes } from "../checkpoint/writer.js";
import { UserError } from "../errors.js";
import { checkTarget, writeFolder } from "./folder.js";
import {
  flatIndex,
  insideShape,
  packedParts,
  PARTS,
  sectionFor,
  type KeptWeight,
  type QuantizedEntry,
} from "./format.js";
import { TensorJob } from "./tensor-job.js";
import { checkScheme, dtypeLabel, type Scheme } from "./scheme.js";

/** Shards of at most 5 GB, as transformers' save_pretrained writes them. */
export const MAX_SHARD_BYTES = 5e9;

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

/**
 * The paper's choice (outliers/model.py): every weight matrix of the decoder — attention and MLP projections —
 * but not the embeddings, the LM head or the norms.
 */
export function defaultQuantizable(name: string, shape: readonly number[]): boolean {
  return shape.length >= 2 && name.endsWith(".weight") && !/(embed|wte|wpe|lm_head|norm)/.test(name);
}

export function writePackedCheckpoint(source: string, out: string, options: PackOptions): PackSummary {
  checkScheme(options.scheme);
  const ckpt = openUnquantized(source);
  try {
    const target = checkTarget(source, out, options.force ?? false);
    const plan = planTensors(ckpt, options);
    writeFolder(source, target, (partial) => {
      const config = { ...ckpt.config, quantization: sectionFor(options.scheme, plan.entries, plan.kept) };
      const sharding = { maxBytes: options.maxShardBytes ?? MAX_SHARD_BYTES };
      writeCheckpoint(partial, config, plan.parts, sharding, {}, options.write);
    });
    return { folder: target, tensors: plan.summary, kept: plan.kept };
  } finally {
    ckpt.close();
  }
}

/** A safetensors checkpoint that is not itself a quantized one. */
export function openUnquantized(source: string): Checkpoint {
  const ckpt = Checkpoint.open(source);
  if ("quantization" in ckpt.config) {
    ckpt.close();
    throw new UserError("is already a quantized checkpoint", join(source, "config.json"));
  }
  return ckpt;
}

/** What a writer does with each tensor of the source, in the source's order. */
export type TensorPlan =
  | { name: string; info: TensorInfo; copy: true }
  | { name: string; info: TensorInfo; copy: false; job: TensorJob; kept: KeptWeight[] };

/** Each tensor copied, or quantized with its held-out weights (each request checked). */
export function planQuantization(ckpt: Checkpoint, options: Omit<PackOptions, "force" | "write">): TensorPlan[] {
  const include = options.include ?? defaultQuantizable;
  const keepBy = keptByTensor(ckpt, options.keep ?? [], include);
  return ckpt.names().map((name): TensorPlan => {
    const info = ckpt.header(name);
    if (!include(name, info.shape)) return { name, info, copy: true };
    const kept = keepBy.get(name) ?? [];
    const values = Float32Array.from(kept, (k) => k.value);
    const job = new TensorJob(
      ckpt,
      info,
      options.scheme,
      kept.map((k) => k.index),
      values,
      options.chunkElements,
    );
    return { name, info, copy: false, job, kept };
  });
}

interface Plan {
  parts: RawTensorToWrite[];
  entries: Record<string, QuantizedEntry>;
  kept: KeptWeight[];
  summary: PackedTensorSummary[];
}

function planTensors(ckpt: Checkpoint, options: PackOptions): Plan {
  const plan: Plan = { parts: [], entries: {}, kept: [], summary: [] };
  for (const t of planQuantization(ckpt, options)) {
    const { name, info } = t;
    if (t.copy) {
      plan.parts.push({ name, dtype: info.dtype, shape: info.shape, bytes: () => copyBytes(ckpt, info) });
      plan.summary.push({ name, dtype: info.dtype, bytes: info.byteLength, sourceBytes: info.byteLength });
      continue;
    }
    const { job, kept } = t;
    const { elements, blocks, blockLength } = job.stats.geometry;
    const sizes = packedParts(elements, blocks, job.bits, kept.length);
    const parts: RawTensorToWrite[] = [
      { name: name + PARTS.qweight, dtype: "U8", shape: [sizes.qweight], bytes: () => job.packed() },
      { name: name + PARTS.qscale, dtype: "F32", shape: [blocks], bytes: () => [f32Bytes(job.params().scale)] },
      { name: name + PARTS.qmin, dtype: "F32", shape: [blocks], bytes: () => [f32Bytes(job.params().offset)] },
    ];
    if (kept.length > 0) {
      const wide = sizes.indexDtype === "I64";
      const index = wide ? BigInt64Array.from(kept, (k) => BigInt(k.index)) : Int32Array.from(kept, (k) => k.index);
      const keepIndex = new Uint8Array(index.buffer);
      const keepValue = f32Bytes(Float32Array.from(kept, (k) => k.value));
      parts.push({ name: name + PARTS.keepIndex, dtype: sizes.indexDtype, shape: [kept.length], bytes: keepIndex });
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

function f32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** A tensor kept as it is: its stored bytes, copied in pieces of at most 16 MB. */
export function* copyBytes(ckpt: Checkpoint, info: TensorInfo): Iterable<Uint8Array> {
  const file = { path: ckpt.fileOf(info.name) };
  const piece = 1 << 24;
  for (let at = 0; at < info.byteLength; at += piece)
    yield readTensorBytes(file, info, at, Math.min(piece, info.byteLength - at));
}
