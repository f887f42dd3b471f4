// One tensor of a safetensors checkpoint quantized as a stream, for the writers: its codes (packed) or its
// dequantized values, range by range, memory bounded by about one chunk of rows. When each block's parameters are
// final as soon as the block is read (no tensor-pct clipping, blocks no larger than a chunk), one pass reads,
// measures and encodes; otherwise a first pass measures and a second encodes (a tensor that fits in one chunk is
// read once for both).
import { MAX_BLOCK_ELEMENTS } from "../checkpoint/block-buffer.js";
import type { Checkpoint } from "../checkpoint/checkpoint.js";
import type { TensorInfo } from "../checkpoint/safetensors.js";
import { CheckpointError } from "../errors.js";
import { CodeStream } from "./pack.js";
import { BlockStatistics, decode, encode, QuantizeError, restoreKept, type BlockParams } from "./rtn.js";
import { codeBits, levelTable, type Scheme } from "./scheme.js";

/** Elements read per step by default (4M: 16 MB of float32). */
export const DEFAULT_CHUNK = 1 << 22;

/** Elements [first, first + values.length) of the tensor and their codes (both valid until the next step). */
interface Coded {
  first: number;
  values: Float32Array;
  codes: Uint8Array;
}

/** Codes of the step being written (reused: page faults of fresh memory cost more than the encoding). */
let scratch = new Uint8Array(0);

export class TensorJob {
  readonly stats: BlockStatistics;
  readonly bits: number;
  private result?: BlockParams;
  /** The whole tensor, when it fits in one chunk and takes two passes. */
  private whole?: Float32Array;

  constructor(
    private readonly ckpt: Checkpoint,
    private readonly info: TensorInfo,
    private readonly scheme: Scheme,
    /** Held-out flat indices, increasing, and their exact values. */
    private readonly keep: readonly number[],
    private readonly keepValues: Float32Array,
    private readonly chunkElements = DEFAULT_CHUNK,
  ) {
    this.stats = new BlockStatistics(scheme, info.shape, keep);
    this.bits = codeBits(scheme);
  }

  /** Every block's parameters (after `packed` or `dequantized`, or from a first pass of their own). */
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

  /** The packed code stream (docs/quantized-format.md), in pieces. */
  *packed(): Iterable<Uint8Array> {
    const stream = new CodeStream(this.bits);
    for (const { codes } of this.coded()) yield stream.push(codes);
    yield stream.end();
  }

  /** What a reader of the packed form returns, in consecutive ranges: dequantized, held-out weights restored. */
  *dequantized(): Iterable<Float32Array> {
    const levels = levelTable(this.scheme);
    for (const { first, values, codes } of this.coded()) {
      const p = this.stats.params;
      const out = new Float32Array(values.length);
      decode(out, codes, first, out.length, levels, p.blockLength, p.scale, p.offset);
      restoreKept(out, first, out.length, this.keep, this.keepValues);
      yield out;
    }
  }

  /** The tensor's elements in order with their codes. */
  private *coded(): Iterable<Coded> {
    const { blockLength, elements } = this.stats.geometry;
    if (this.scheme.clip.method !== "tensor-pct" && blockLength <= this.chunkElements) {
      // values read but not yet encoded (less than a block): elements [done, done + pending.length)
      let pending = new Float32Array(0);
      let done = 0;
      for (const { values } of this.chunks()) {
        this.guard(() => this.stats.add(values));
        const joined = pending.length ? concat(pending, values) : values;
        const end = Math.min(elements, this.stats.ready() * blockLength);
        const ready = joined.subarray(0, end - done);
        yield { first: done, values: ready, codes: this.encode(ready, done) };
        pending = joined.slice(end - done);
        done = end;
      }
      this.result = this.guard(() => this.stats.finish());
    } else {
      this.params();
      const chunks = this.whole ? [{ first: 0, values: this.whole }] : this.chunks();
      for (const { first, values } of chunks) yield { first, values, codes: this.encode(values, first) };
      this.whole = undefined;
    }
  }

  private encode(values: Float32Array, first: number): Uint8Array {
    if (scratch.length < values.length) scratch = new Uint8Array(Math.max(values.length, this.chunkElements));
    const codes = scratch.subarray(0, values.length);
    encode(codes, values, first, this.scheme, this.stats.params);
    return codes;
  }

  /** The tensor in row ranges of about chunkElements (at least one row), read lazily (into the block buffer when
   * they fit: each read overwrites the last). */
  private *chunks(): Iterable<{ first: number; values: Float32Array }> {
    const shape = this.info.shape;
    const rows = shape.length === 0 ? 1 : shape[0];
    const rowSize = shape.slice(1).reduce((a, b) => a * b, 1);
    const step = Math.max(1, Math.floor(this.chunkElements / Math.max(1, rowSize)));
    for (let r = 0; r < rows; r += step) {
      const r1 = Math.min(rows, r + step);
      const count = (r1 - r) * rowSize;
      const out = count <= MAX_BLOCK_ELEMENTS ? undefined : new Float32Array(count);
      const values = this.ckpt.readRows(this.info.name, r, r1, out);
      yield { first: r * rowSize, values };
    }
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
