// Weight quantization in memory, for evaluation: a WeightOverride per tensor whose apply turns each block of rows
// the engine reads into exactly the float32 values the packed checkpoint stores (and its reader returns): codes
// by src/quant/rtn.ts's encode, dequantized by its decode, held-out weights put back exactly. Nothing but block
// parameters is kept between reads, so the model is never held in memory:
//   - blocks the engine's row blocks can be made to hold whole (a row, or N elements where whole groups of rows
//     hold a whole number of them) are measured inside apply, from the rows it is given (`alignment`);
//   - the rest (one block for the tensor, tensor-pct clipping, blocks no row grouping fits) are measured once
//     before the pass (`prepare`), and every override of a tensor in a MeasurePool shares that one read.
import { MAX_BLOCK_ELEMENTS } from "../checkpoint/block-buffer.js";
import type { Model } from "../engine/model.js";
import type { TensorRows, WeightOverride } from "../engine/variants.js";
import { BlockStatistics, decode, encode, type BlockParams } from "../quant/rtn.js";
import { dtypeLabel, formatBlock, formatClip, geometry, levelTable, type Scheme } from "../quant/scheme.js";

/** The rows × columns a weight's flat elements read as (a row = the product of the trailing dims). */
export function matrixShape(shape: readonly number[]): [number, number] {
  return [shape.length === 0 ? 1 : shape[0], shape.slice(1).reduce((a, b) => a * b, 1)];
}

/** A scheme as a key and a label: "rtn4 block 128 clip zscore:9". */
export function schemeText(s: Scheme): string {
  const range = s.kind === "nf4" && s.range === "minmax" ? " minmax" : "";
  return `${dtypeLabel(s)}${range} block ${formatBlock(s.block)} clip ${formatClip(s.clip)}`;
}

/**
 * Rows per engine block that make each hold whole quantization blocks of `blockLength`: a power of two (so that
 * the alignments of several overrides of the tensor combine, see blockRows in engine/linear.ts) at most the
 * engine's block; undefined where none does, or where the tensor is one block or needs tensor-wide statistics.
 */
export function alignedRows(scheme: Scheme, shape: readonly number[]): number | undefined {
  const { blockLength, elements } = geometry(scheme.block, shape);
  const cols = matrixShape(shape)[1];
  if (scheme.clip.method === "tensor-pct" || blockLength >= elements) return undefined;
  const step = blockLength / gcd(blockLength, cols);
  return (step & (step - 1)) === 0 && step * cols <= MAX_BLOCK_ELEMENTS ? step : undefined;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Block parameters measured before a pass, one read of each tensor for every override that asked for it. */
export class MeasurePool {
  private readonly requests = new Map<
    string,
    { scheme: Scheme; shape: readonly number[]; keep: readonly number[]; params?: BlockParams }[]
  >();

  /** Ask for the parameters of `tensor` under `scheme`; `get` gives them once `measure` has seen the tensor. */
  request(tensor: string, scheme: Scheme, shape: readonly number[], keep: readonly number[]) {
    const r = { scheme, shape, keep, params: undefined as BlockParams | undefined };
    this.requests.set(tensor, [...(this.requests.get(tensor) ?? []), r]);
    return {
      measure: (rows: TensorRows) => this.measure(rows),
      get: (): BlockParams => {
        if (!r.params) throw new Error(`${tensor}: block parameters used before the tensor was measured`);
        return r.params;
      },
    };
  }

  /** One streamed read of the tensor feeds every request of it not measured yet. */
  private measure(rows: TensorRows): void {
    const open = (this.requests.get(rows.tensor) ?? []).filter((r) => !r.params);
    if (!open.length) return;
    const stats = open.map((r) => new BlockStatistics(r.scheme, r.shape, r.keep));
    for (const [w] of rows.blocks()) for (const s of stats) s.add(w);
    open.forEach((r, i) => (r.params = stats[i].finish()));
  }
}

/** Codes of the block being transformed (reused across calls and overrides). */
let scratch = new Uint8Array(0);

/**
 * The override that quantizes `tensor` (canonical name, stored layout) under `scheme`, holding out the flat
 * indices `keep` (increasing): apply(w, first) leaves in w the values the packed checkpoint's reader returns.
 */
export function quantizeOverride(
  model: Model,
  tensor: string,
  scheme: Scheme,
  keep: readonly number[],
  pool: MeasurePool = new MeasurePool(),
): WeightOverride {
  const shape = model.shape(tensor);
  const g = geometry(scheme.block, shape);
  const cols = matrixShape(shape)[1];
  const levels = levelTable(scheme);
  const rows = alignedRows(scheme, shape);
  // Keyed by the blocks as they fall on this tensor: "tensor", "1M" and "channel" may be the same blocking here.
  const key = `quantize:${schemeText({ ...scheme, block: g.blockLength })}:${keep.join(",")}`;
  const kept = new Float32Array(keep.length);
  /** Save the held-out values of w (elements [first, first + w.length)) into `kept`; how many there are. */
  const save = (w: Float32Array, first: number) => {
    let n = 0;
    for (const i of keep) if (i >= first && i < first + w.length) kept[n++] = w[i - first];
    return n;
  };
  const restore = (w: Float32Array, first: number) => {
    let n = 0;
    for (const i of keep) if (i >= first && i < first + w.length) w[i - first] = kept[n++];
  };
  const transform = (w: Float32Array, at: number, p: BlockParams, firstBlock: number) => {
    if (scratch.length < w.length) scratch = new Uint8Array(Math.max(w.length, MAX_BLOCK_ELEMENTS));
    const codes = scratch.subarray(0, w.length);
    encode(codes, w, at, scheme, p);
    decode(w, codes, at, w.length, levels, p.blockLength, p.scale, p.offset, firstBlock);
  };

  const measuredInApply = scheme.clip.method !== "tensor-pct" && (rows !== undefined || g.blockLength === cols);
  if (!measuredInApply) {
    const measured = pool.request(tensor, scheme, shape, keep);
    return {
      tensor,
      key,
      prepare: measured.measure,
      apply(w, first) {
        save(w, first);
        transform(w, first, measured.get(), 0);
        restore(w, first);
      },
    };
  }
  // Blocks measured from the rows given: a scheme over just these elements, its blocks those of the tensor.
  const local: Scheme = { ...scheme, block: g.blockLength };
  return {
    tensor,
    key,
    ...(rows !== undefined && rows > 1 ? { alignment: rows * cols } : {}),
    apply(w, first) {
      const whole = first % g.blockLength === 0 && (w.length % g.blockLength === 0 || first + w.length === g.elements);
      if (!whole) throw new Error(`${tensor}: rows [${first}, ${first + w.length}) split a block of ${g.blockLength}`);
      const localKeep = keep.filter((i) => i >= first && i < first + w.length).map((i) => i - first);
      const stats = new BlockStatistics(local, [w.length], localKeep);
      stats.add(w);
      const p = stats.finish();
      save(w, first);
      transform(w, 0, p, 0);
      restore(w, first);
    },
  };
}

/** One override per tensor, each holding out the flat indices `keep` gives for it. */
export function quantizeWeights(
  model: Model,
  tensors: readonly string[],
  scheme: Scheme,
  keep: (tensor: string) => readonly number[],
  pool: MeasurePool = new MeasurePool(),
): WeightOverride[] {
  return tensors.map((t) => quantizeOverride(model, t, scheme, keep(t), pool));
}

/** What an override leaves at one flat index of its tensor (the rows it needs read and transformed). */
export function transformedValue(model: Model, o: WeightOverride, index: number): number {
  const [rows, cols] = matrixShape(model.shape(o.tensor));
  if (o.prepare && !model.prepared.has(o)) {
    o.prepare(modelRows(model, o.tensor));
    model.prepared.add(o);
  }
  const a = o.alignment ?? 1;
  const step = a / gcd(a, cols);
  const r0 = Math.floor(Math.floor(index / cols) / step) * step;
  const r1 = Math.min(rows, r0 + step);
  const w = model.readRows(o.tensor, r0, r1).slice();
  o.apply(w, r0 * cols);
  return w[index - r0 * cols];
}

/** A tensor's rows straight from the model, block by block (an override's `prepare` outside a pass). */
export function modelRows(model: Model, tensor: string): TensorRows {
  const [rows, cols] = matrixShape(model.shape(tensor));
  const read = (r0: number, r1: number) => model.readRows(tensor, r0, r1);
  return {
    tensor,
    rows,
    cols,
    read,
    *blocks() {
      const step = Math.max(1, Math.floor(MAX_BLOCK_ELEMENTS / cols));
      for (let r0 = 0; r0 < rows; r0 += step) yield [read(r0, Math.min(rows, r0 + step)), r0] as [Float32Array, number];
    },
  };
}
