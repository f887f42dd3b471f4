// Seeded randomness for the nulls: a small PRNG, distinct samples, a random set of weights zeroed (the null
// of --prune-outliers), and the weights of a tensor nearest in |w| rank to a given one (the null of a
// single-weight intervention).
import type { Model } from "../engine/model.js";
import type { TensorRows, WeightOverride } from "../engine/variants.js";
import { MAX_BLOCK_ELEMENTS } from "../checkpoint/block-buffer.js";

/** mulberry32: uniform numbers in [0, 1) from a 32-bit seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit seed from a seed and names (FNV-1a), so each tensor and each null draws its own stream. */
export function seedOf(seed: number, ...names: (string | number)[]): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (const ch of names.join("\u0000")) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h >>> 0;
}

/** k distinct integers of [0, n), uniformly (Floyd's algorithm), ascending. */
export function sampleDistinct(random: () => number, n: number, k: number): Int32Array {
  if (!(k >= 0 && k <= n)) throw new RangeError(`cannot draw ${k} distinct values from ${n}`);
  const chosen = new Set<number>();
  for (let j = n - k; j < n; j++) {
    const t = Math.floor(random() * (j + 1));
    chosen.add(chosen.has(t) ? j : t);
  }
  return Int32Array.from(chosen).sort();
}

/**
 * Zero a uniformly random set of round(fraction · candidates) elements of a tensor, never the stored
 * indices in `spare` — the same count that zeroLargest zeroes, drawn from the same candidates.
 */
export function zeroRandom(tensor: string, fraction: number, spare: readonly number[], seed: number): WeightOverride {
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`fraction ${fraction} is not in [0, 1]`);
  const spared = [...new Set(spare)].sort((a, b) => a - b);
  let zeroed = new Int32Array(0);
  return {
    tensor,
    key: `zero-random:${seed}:${fraction}:${spared.join(",")}`,
    prepare(rows: TensorRows) {
      const candidates = rows.rows * rows.cols - spared.length;
      const picks = sampleDistinct(rng(seedOf(seed, tensor)), candidates, Math.round(fraction * candidates));
      // Candidate j → stored index: skip the spared indices below it (both ascending).
      let s = 0;
      zeroed = picks.map((j) => {
        while (s < spared.length && spared[s] <= j + s) s++;
        return j + s;
      });
    },
    apply(w, first) {
      for (let i = lowerBound(zeroed, first); i < zeroed.length && zeroed[i] < first + w.length; i++)
        w[zeroed[i] - first] = 0;
    },
  };
}

function lowerBound(a: Int32Array, x: number): number {
  let lo = 0,
    hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** An element of a tensor by its stored flat index, with |w|. */
export interface RankedElement {
  index: number;
  abs: number;
  /** Its rank by |w| (0 = largest; ties by stored order). */
  rank: number;
}

/**
 * The `count` elements of a tensor nearest in |w| rank to element `target` (ranks by |w| descending, ties in
 * stored order), never those in `exclude`: nearer ranks first, the one above before the one below at equal
 * distance. Also the target's own rank. One pass over the tensor, keeping a bounded list on each side.
 */
export function rankNeighbours(
  model: Model,
  tensor: string,
  target: number,
  count: number,
  exclude: ReadonlySet<number>,
): { rank: number; neighbours: RankedElement[] } {
  const [rows, cols] = model.shape(tensor);
  const t = Math.abs(model.readRows(tensor, Math.floor(target / cols), Math.floor(target / cols) + 1)[target % cols]);
  type E = { index: number; abs: number };
  // Ranked before b: larger |w|, or equal and stored earlier.
  const ahead = (a: E, b: E) => a.abs > b.abs || (a.abs === b.abs && a.index < b.index);
  // Excluded elements are kept too (so that ranks count them), then dropped: each side keeps count + |exclude|.
  const keep = count + exclude.size;
  const above: E[] = [],
    below: E[] = []; // nearest first
  let rank = 0;
  // Stryker disable next-line MethodExpression,ArithmeticOperator: equivalent, the block size changes how the rows are read, not which.
  const step = Math.max(1, Math.floor(MAX_BLOCK_ELEMENTS / cols));
  for (let r0 = 0; r0 < rows; r0 += step) {
    const block = model.readRows(tensor, r0, Math.min(rows, r0 + step));
    for (let j = 0; j < block.length; j++) {
      const index = r0 * cols + j,
        abs = Math.abs(block[j]);
      if (index === target) continue;
      if (abs > t || (abs === t && index < target)) {
        rank++;
        // Nearer above = ranked after: smaller |w|, or equal and stored later.
        const last = above[keep - 1];
        if (!last || last.abs > abs || (last.abs === abs && last.index < index))
          keepNearest(above, { index, abs }, keep, (a, b) => ahead(b, a));
      } else {
        const last = below[keep - 1];
        if (!last || abs > last.abs || (abs === last.abs && index < last.index))
          keepNearest(below, { index, abs }, keep, ahead);
      }
    }
  }
  const ranked = [
    ...above.map((e, i) => ({ ...e, rank: rank - 1 - i })),
    ...below.map((e, i) => ({ ...e, rank: rank + 1 + i })),
  ].filter((e) => !exclude.has(e.index));
  ranked.sort((a, b) => Math.abs(a.rank - rank) - Math.abs(b.rank - rank) || a.rank - b.rank);
  return { rank, neighbours: ranked.slice(0, count) };
}

/** Keep the `count` nearest in `list` (nearest first; `nearer(a, b)`: a is nearer than b), adding `e` if it is. */
function keepNearest<T>(list: T[], e: T, count: number, nearer: (a: T, b: T) => boolean): void {
  if (count === 0 || (list.length === count && !nearer(e, list[count - 1]))) return;
  let at = list.length;
  while (at > 0 && nearer(e, list[at - 1])) at--;
  list.splice(at, 0, e);
  if (list.length > count) list.pop();
}
