// Variants: copies of the model run side by side in one pass, each with its own weight overrides (and hooks).
// An override transforms the blocks of one stored tensor as they are read; variants whose overrides of a tensor
// carry the same key share one product, so each weight is read once for every variant of the pass.
import { UserError } from "../errors.js";
import type { Hook } from "./hooks.js";

/** Rows of a stored tensor, read block by block (for an override's look at the whole tensor). */
export interface TensorRows {
  readonly tensor: string;
  readonly rows: number;
  readonly cols: number;
  /** Rows [r0, r1) as float32 (a reused buffer: copy what you keep). */
  read(r0: number, r1: number): Float32Array;
  /** Every block of at most the engine's block size, in order: block, its first row. */
  blocks(): Iterable<[Float32Array, number]>;
}

export interface WeightOverride {
  /** The stored tensor it transforms (canonical name). */
  readonly tensor: string;
  /** Overrides of a tensor with equal keys transform it identically: their variants share one product. */
  readonly key: string;
  /** A transform needing whole blocks of this many elements: the engine's row blocks of the tensor then hold a
   * whole number of them (row-major within the stored tensor). Default 1. */
  readonly alignment?: number;
  /** One look at the whole tensor before the pass (e.g. the largest-|w| threshold). Called once per override. */
  prepare?(rows: TensorRows): void;
  /** Transform `w` in place: stored elements [first, first + w.length) of the tensor, row-major. */
  apply(w: Float32Array, first: number): void;
}

/** A copy of the model in the same pass: the same tokens, some weights overridden, its own hooks. */
export interface Variant {
  readonly overrides?: readonly WeightOverride[];
  /** Hooks that see only this variant's events (the pass's `hooks` see every variant's). */
  readonly hooks?: readonly Hook[];
}

/** One weight of a stored tensor set to a value, by its stored index [row, column]. */
export interface WeightEdit {
  tensor: string;
  row: number;
  column: number;
  value: number;
}

/** What editWeights checks edits against (a Model). */
export interface TensorShapes {
  readonly path: string;
  has(name: string): boolean;
  shape(name: string): number[];
}

/** Set single weights (zero, scale or replace them): one override per tensor, keyed by its edits. */
export function editWeights(model: TensorShapes, edits: readonly WeightEdit[]): WeightOverride[] {
  const byTensor = new Map<string, WeightEdit[]>();
  for (const e of edits) {
    if (!model.has(e.tensor)) throw new UserError(`cannot edit "${e.tensor}": no such tensor in ${model.path}`);
    const [r, c] = model.shape(e.tensor);
    if (!(
      Number.isInteger(e.row) &&
      Number.isInteger(e.column) &&
      e.row >= 0 &&
      e.row < r &&
      e.column >= 0 &&
      e.column < c
    ))
      throw new UserError(`cannot edit ${e.tensor}[${e.row}, ${e.column}]: outside its shape [${r}, ${c}]`);
    byTensor.set(e.tensor, [...(byTensor.get(e.tensor) ?? []), e]);
  }
  return [...byTensor].map(([tensor, list]) => {
    const width = model.shape(tensor)[1];
    const at = new Map(list.map((e) => [e.row * width + e.column, Math.fround(e.value)]));
    const sorted = [...at].sort((a, b) => a[0] - b[0]);
    return {
      tensor,
      key: `edit:${sorted.map(([i, v]) => `${i}=${v}`).join(",")}`,
      apply(w: Float32Array, first: number) {
        for (const [i, v] of sorted) if (i >= first && i < first + w.length) w[i - first] = v;
      },
    };
  });
}

/** Every element multiplied by `factor` at the given flat indices (scale-by, e.g. a super weight ×F). */
export function scaleWeights(tensor: string, indices: readonly number[], factor: number): WeightOverride {
  const f = Math.fround(factor);
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  return {
    tensor,
    key: `scale:${f}:${sorted.join(",")}`,
    apply(w, first) {
      for (const i of sorted) if (i >= first && i < first + w.length) w[i - first] = Math.fround(w[i - first] * f);
    },
  };
}

/** The whole tensor replaced by `values` (row-major, the stored layout). */
export function replaceTensor(tensor: string, values: Float32Array, key: string): WeightOverride {
  return {
    tensor,
    key: `replace:${key}`,
    apply(w, first) {
      if (first + w.length > values.length)
        throw new RangeError(`replacement for ${tensor} has ${values.length} elements`);
      w.set(values.subarray(first, first + w.length));
    },
  };
}

/**
 * Zero the `fraction` of a tensor's elements with the largest |w| (the paper's "other outliers" control),
 * sparing the stored indices in `keep`. k = round(fraction · candidates); ties at the threshold are zeroed in
 * row-major order until k are gone, so exactly k elements become 0.
 */
export function zeroLargest(tensor: string, fraction: number, keep: readonly number[] = []): WeightOverride {
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`fraction ${fraction} is not in [0, 1]`);
  const spared = new Set(keep);
  let threshold = Infinity;
  /** Elements with |w| == threshold are zeroed up to and including this flat index. */
  let lastTie = -1;
  const prepare = (rows: TensorRows) => {
    const candidates = rows.rows * rows.cols - spared.size;
    const k = Math.round(fraction * candidates);
    if (k === 0) return;
    // The k-th largest |w| by selection over float32 bit patterns (|w| orders as its bits do): a
    // histogram of the top 16 bits, then of the low 16 inside the bucket that holds the k-th.
    const abs = (x: number) => Math.abs(x);
    const bits = new Uint32Array(1),
      f = new Float32Array(bits.buffer);
    const keyOf = (x: number) => ((f[0] = abs(x)), bits[0]);
    const count = (accept: (key: number) => number | undefined, size: number) => {
      const hist = new Float64Array(size);
      for (const [w, r0] of rows.blocks()) {
        const base = r0 * rows.cols;
        for (let i = 0; i < w.length; i++) {
          if (spared.size && spared.has(base + i)) continue;
          const b = accept(keyOf(w[i]));
          if (b !== undefined) hist[b]++;
        }
      }
      return hist;
    };
    const pick = (hist: Float64Array, need: number): [number, number] => {
      let above = 0;
      for (let b = hist.length - 1; b >= 0; b--) {
        if (above + hist[b] >= need) return [b, need - above];
        above += hist[b];
      }
      return [0, need - above];
    };
    const [hi, needHi] = pick(
      count((key) => key >>> 16, 65536),
      k,
    );
    const [lo, ties] = pick(
      count((key) => (key >>> 16 === hi ? key & 0xffff : undefined), 65536),
      needHi,
    );
    bits[0] = ((hi << 16) | lo) >>> 0;
    threshold = f[0];
    // The `ties`-th element equal to the threshold, in row-major order, is the last one zeroed.
    let seen = 0;
    for (const [w, r0] of rows.blocks()) {
      const base = r0 * rows.cols;
      for (let i = 0; i < w.length && seen < ties; i++)
        if (abs(w[i]) === threshold && !(spared.size && spared.has(base + i)) && ++seen === ties) lastTie = base + i;
      if (seen === ties) break;
    }
  };
  return {
    tensor,
    key: `zero-largest:${fraction}:${[...spared].sort((a, b) => a - b).join(",")}`,
    prepare,
    apply(w, first) {
      if (threshold === Infinity) return;
      for (let i = 0; i < w.length; i++) {
        const a = Math.abs(w[i]);
        if (a < threshold || (spared.size && spared.has(first + i))) continue;
        if (a > threshold || first + i <= lastTie) w[i] = 0;
      }
    },
  };
}
