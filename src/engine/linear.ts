// Weight products, streamed: a stored matrix is read in row blocks (each at most MAX_BLOCK_ELEMENTS) into the
// source's buffer and multiplied, then overwritten by the next. Variants whose overrides transform the weight
// get their own product on a transformed copy of the block (a second slot), shared by every variant whose
// overrides carry the same keys — so each weight is read once per pass, whatever the number of variants.
// A safetensors F32/F16/BF16 weight in [out, in] layout that no override transforms is multiplied by the lanes
// (lanes.ts: every core reads, widens and multiplies blocks of its own) when the backend is onnxruntime.
import { MAX_BLOCK_ELEMENTS } from "../checkpoint/block-buffer.js";
import { Checkpoint } from "../checkpoint/checkpoint.js";
import { isSupportedDtype } from "../checkpoint/dtype.js";
import { fdFor } from "../checkpoint/safetensors.js";
import { lanesFor, type Lanes } from "./lanes.js";
import type { RowsJob } from "./lane.js";
import type { Pass } from "./pass.js";
import type { TensorRows, WeightOverride } from "./variants.js";

/** Variants that see the same transform of a weight, and the rows of x that are theirs. */
export interface Group {
  variants: number[];
  overrides: WeightOverride[];
  /** Row of x for each row of this group's input (undefined: all rows, in order). */
  rowMap?: Int32Array;
  x: Float32Array;
}

let slot: Float32Array | undefined;
/** The second block slot: a transformed copy of the block just read. */
function copySlot(size: number): Float32Array {
  slot ??= new Float32Array(MAX_BLOCK_ELEMENTS);
  return slot.subarray(0, size);
}

/** Overrides of `weight` per variant, grouped by their keys. */
function groups(pass: Pass, x: Float32Array, counts: readonly number[], k: number, weight: string): Group[] {
  const byKey = new Map<string, { variants: number[]; overrides: WeightOverride[] }>();
  pass.variants.forEach((v, i) => {
    // Stryker disable next-line ConditionalExpression: equivalent, a variant with no rows adds none to its group
    if (counts[i] === 0) return;
    // Stryker disable next-line ArrayDeclaration: equivalent, a stray entry is no override of this tensor.
    const overrides = (v.overrides ?? []).filter((o) => o.tensor === weight);
    const key = overrides.map((o) => o.key).join("\u0000");
    const g = byKey.get(key) ?? { variants: [], overrides };
    g.variants.push(i);
    byKey.set(key, g);
  });
  const offsets = [0];
  for (const c of counts) offsets.push(offsets[offsets.length - 1] + c);
  // Stryker disable next-line all: equivalent, this only picks the path that skips copying rows all variants share
  const active = counts.filter((c) => c > 0).length;
  return [...byKey.values()].map((g) => {
    // Stryker disable next-line ConditionalExpression: equivalent, the copied rows are the same rows
    if (g.variants.length === active) return { ...g, x };
    const rows = g.variants.reduce((s, v) => s + counts[v], 0);
    const rowMap = new Int32Array(rows);
    let r = 0;
    for (const v of g.variants) for (let t = 0; t < counts[v]; t++) rowMap[r++] = offsets[v] + t;
    const gx = new Float32Array(rows * k);
    rowMap.forEach((src, i) => gx.set(x.subarray(src * k, (src + 1) * k), i * k));
    return { ...g, rowMap, x: gx };
  });
}

/** Rows per block of a [rows, cols] tensor: within the block budget and a whole number of every override's
 * alignment when that fits. */
function blockRows(rows: number, cols: number, overrides: readonly WeightOverride[], maxRows = Infinity): number {
  // Stryker disable next-line MethodExpression,ArithmeticOperator: equivalent, smaller or larger blocks give the same products
  let r = Math.max(1, Math.min(maxRows, Math.floor(MAX_BLOCK_ELEMENTS / cols)));
  for (const o of overrides) {
    const a = o.alignment ?? 1;
    if (a <= 1) continue;
    const step = a / gcd(a, cols); // rows whose elements are a multiple of a
    if (step * cols > MAX_BLOCK_ELEMENTS)
      throw new RangeError(`override ${o.key} of ${o.tensor}: blocks of ${a} elements exceed the engine's block size`);
    r = Math.max(step, Math.floor(r / step) * step);
  }
  return Math.min(r, rows);
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * For each row block [r0, r1) of the stored `weight` and each group of variants, the product of that group's
 * rows of x with the block (transformed by the group's overrides):
 *   "nk" ([out, in]): part[m, r1 − r0] = x · W[r0:r1]ᵀ — output columns r0..r1;
 *   "kn" ([in, out]): part[m, n] = x[:, r0:r1] · W[r0:r1] — a partial sum over inputs r0..r1.
 */
export async function products(
  pass: Pass,
  x: Float32Array,
  counts: readonly number[],
  weight: string,
  onPart: (g: Group, part: Float32Array, r0: number, r1: number) => void,
  layout = pass.model.layout(weight),
  /** Bound on the rows of a block (the head keeps each part's [m, rows] small for long windows). */
  maxRows?: number,
): Promise<void> {
  const { model, backend } = pass;
  const info = model.info(weight);
  const [rows, cols] = info.shape;
  const [n, k] = layout === "nk" ? [rows, cols] : [cols, rows];
  const m = counts.reduce((a, b) => a + b, 0);
  if (x.length !== m * k) throw new Error(`linear ${weight}: input has ${x.length / m} columns, weight expects ${k}`);
  const gs = groups(pass, x, counts, k, weight);
  const plain = layout === "nk" && gs.length === 1 && !gs[0].overrides.length;
  const lanes = plain ? await lanedWeight(pass, weight) : undefined;
  // Stryker disable next-line BlockStatement: equivalent, an empty block leaves the product to this thread: the same values.
  if (lanes) {
    // Parts of at most maxRows rows, and of at most a block's elements ([m, rows] in shared memory, copied out by
    // the caller), each made by every lane.
    // Stryker disable next-line all: equivalent, the parts' size changes how the product is cut, not its values
    const chunk = Math.max(1, Math.min(rows, maxRows ?? rows, Math.floor(MAX_BLOCK_ELEMENTS / m)));
    for (let r0 = 0; r0 < rows; r0 += chunk) {
      const r1 = Math.min(rows, r0 + chunk);
      const part = await lanes.lanes.product({ ...lanes.job, r0, r1 }, x, m);
      pass.countRead(weight, r1 - r0, info);
      onPart(gs[0], part, r0, r1);
    }
    return;
  }
  const step = blockRows(
    rows,
    cols,
    gs.flatMap((g) => g.overrides),
    maxRows,
  );
  for (let r0 = 0; r0 < rows; r0 += step) {
    const r1 = Math.min(rows, r0 + step);
    const w = model.readRows(weight, r0, r1);
    pass.countRead(weight, r1 - r0, info);
    for (const g of gs) {
      let wg = w;
      // Stryker disable next-line ConditionalExpression: equivalent, a copy with no override applied is the same block
      if (g.overrides.length) {
        wg = copySlot(w.length);
        wg.set(w);
        for (const o of g.overrides) o.apply(wg, r0 * cols);
      }
      const mg = g.x.length / k;
      const part =
        layout === "nk"
          ? await backend.linear(g.x, mg, k, wg, r1 - r0, "nk")
          : await backend.linear(columns(g.x, mg, k, r0, r1), mg, r1 - r0, wg, n, "kn");
      onPart(g, part, r0, r1);
    }
  }
}

type StoredRows = Omit<RowsJob, "step" | "m" | "r0" | "r1">;

/** The lanes and where a weight is stored, when the lanes can multiply it (see the header). */
async function lanedWeight(pass: Pass, weight: string): Promise<{ lanes: Lanes; job: StoredRows } | undefined> {
  const { model, backend } = pass;
  if (backend.name !== "onnxruntime" || !(model.source instanceof Checkpoint)) return undefined;
  const stored = model.info(weight).name;
  const { start, dtype, shape } = model.source.header(stored);
  if (!isSupportedDtype(dtype) || shape.length !== 2) return undefined;
  const path = model.source.fileOf(stored);
  return { lanes: await lanesFor(backend.threads ?? 1), job: { fd: fdFor(path), path, start, dtype, cols: shape[1] } };
}

/** out[Σ counts, n] = x · W for a stored weight (each variant's overrides applied). */
export async function linear(
  pass: Pass,
  x: Float32Array,
  counts: readonly number[],
  weight: string,
): Promise<Float32Array> {
  const m = counts.reduce((a, b) => a + b, 0);
  const layout = pass.model.layout(weight);
  const [rows, cols] = pass.model.shape(weight);
  const n = layout === "nk" ? rows : cols;
  const out = new Float32Array(m * n);
  await products(
    pass,
    x,
    counts,
    weight,
    (g, part, r0, r1) => {
      const width = layout === "nk" ? r1 - r0 : n;
      const at = (i: number) => (g.rowMap ? g.rowMap[i] : i);
      for (let i = 0; i < part.length / width; i++) {
        if (layout === "nk") out.set(part.subarray(i * width, (i + 1) * width), at(i) * n + r0);
        else {
          const o = at(i) * n,
            p = i * n;
          for (let j = 0; j < n; j++) out[o + j] += part[p + j];
        }
      }
    },
    layout,
  );
  return out;
}

/** x[m, c0:c1] as its own [m, c1 − c0] array (the whole x when that is all of it). */
function columns(x: Float32Array, m: number, k: number, c0: number, c1: number): Float32Array {
  // Stryker disable next-line ConditionalExpression: equivalent, the copy of all columns is x
  if (c0 === 0 && c1 === k) return x;
  const out = new Float32Array(m * (c1 - c0));
  // Stryker disable next-line EqualityOperator: equivalent, a typed array ignores a write past its end
  for (let r = 0; r < m; r++) out.set(x.subarray(r * k + c0, r * k + c1), r * (c1 - c0));
  return out;
}

/** A stored tensor's rows for an override's `prepare`, read block by block. */
export function tensorRows(pass: Pass, tensor: string): TensorRows {
  const { model } = pass;
  const info = model.info(tensor);
  // A matrix's rows, or a vector's elements as rows of one column.
  const [rows, cols] = [info.shape[0] ?? 1, info.shape.slice(1).reduce((a, b) => a * b, 1)];
  const read = (r0: number, r1: number) => {
    pass.countRead(tensor, r1 - r0, { bytes: info.bytes, shape: [rows] });
    return model.readRows(tensor, r0, r1);
  };
  return {
    tensor,
    rows,
    cols,
    read,
    *blocks() {
      // Stryker disable next-line MethodExpression,ArithmeticOperator: equivalent, the block size changes how the rows are cut, not which.
      const step = Math.max(1, Math.floor(MAX_BLOCK_ELEMENTS / cols));
      for (let r0 = 0; r0 < rows; r0 += step) yield [read(r0, Math.min(rows, r0 + step)), r0] as [Float32Array, number];
    },
  };
}
