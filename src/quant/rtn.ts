// Block-wise round-to-nearest weight quantization with held-out weights, in float32 arithmetic, in two steps a
// streaming caller can take one range at a time:
//   1. BlockStatistics: the tensor's values in order, in ranges of any length → per-block parameters, final for
//      each block as it completes (under tensor-pct clipping only after a whole first pass). Held-out elements
//      (the super weights) take no part in any statistic.
//   2. encode / decode: any element range, given those parameters; restoreKept puts the held-out values back.
// Per block (rtn):  lo, hi = min, max of the clipped weights; scale = (hi − lo)/(2^bits − 1);
//                   q = round((clamp(w, lo, hi) − lo)/scale) (half to even, as torch.round); ŵ = q·scale + lo.
// nf4: x = (clamp(w) − offset)/scale, q = the nearest NF4 level; ŵ = NF4[q]·scale + offset.
// A block whose scale is 0 (all its weights equal, or all held out) decodes to its offset: never NaN.
import { AbsMoments, KthLargest, blockPctRank, tensorPctRank } from "./clip.js";
import { nearestNf4 } from "./nf4.js";
import { codeBits, geometry, levelTable, type Geometry, type Scheme } from "./scheme.js";

export interface BlockParams {
  blockLength: number;
  /** Per block: the step (rtn) or level multiplier (nf4); 0 for a degenerate block. */
  scale: Float32Array;
  /** Per block: what level 0 stands for (rtn: the clipped minimum; nf4 absmax: 0; nf4 minmax: the midpoint). */
  offset: Float32Array;
  /** Per block: the clipped range [lo, hi] weights are clamped to before coding. */
  lo: Float32Array;
  hi: Float32Array;
}

/** Weights that cannot be quantized: not finite, or a range wider than float32 holds. */
export class QuantizeError extends Error {
  constructor(
    message: string,
    readonly code: "NON_FINITE" | "RANGE_OVERFLOW",
  ) {
    super(message);
    this.name = "QuantizeError";
  }
}

/** Held-out indices must be strictly increasing flat indices inside the tensor. */
export function checkKeep(keep: readonly number[], elements: number): void {
  for (let i = 0; i < keep.length; i++)
    if (!Number.isSafeInteger(keep[i]) || keep[i] < 0 || keep[i] >= elements || (i > 0 && keep[i] <= keep[i - 1]))
      throw new RangeError(`held-out indices must increase strictly within [0, ${elements}): [${keep.join(", ")}]`);
}

/**
 * Statistics of a tensor fed in order with `add`; `finish` gives every block's parameters. Those of a block are
 * final as soon as its last value arrives (`ready`), except under tensor-pct clipping, which needs the whole tensor
 * first: then `finish` after a first pass, and a second pass to encode.
 */
export class BlockStatistics {
  readonly geometry: Geometry;
  /** Parameters of blocks [0, ready()) are final; the rest fill in as blocks complete (all of them at finish). */
  readonly params: BlockParams;
  private readonly min: Float32Array;
  private readonly max: Float32Array;
  private closed = 0;
  private readonly moments = new AbsMoments();
  private readonly blockTop = new KthLargest(1);
  private readonly tensorTop?: KthLargest;
  private position = 0;
  private keepCursor = 0;

  constructor(
    readonly scheme: Scheme,
    shape: readonly number[],
    private readonly keep: readonly number[] = [],
  ) {
    this.geometry = geometry(scheme.block, shape);
    checkKeep(keep, this.geometry.elements);
    const { blocks, elements } = this.geometry;
    this.min = new Float32Array(blocks).fill(Infinity);
    this.max = new Float32Array(blocks).fill(-Infinity);
    this.params = {
      blockLength: this.geometry.blockLength,
      scale: new Float32Array(blocks),
      offset: new Float32Array(blocks),
      lo: new Float32Array(blocks),
      hi: new Float32Array(blocks),
    };
    const clip = scheme.clip;
    if (clip.method === "tensor-pct")
      this.tensorTop = new KthLargest(tensorPctRank(elements - keep.length, clip.fraction));
  }

  /** The next values.length elements of the tensor. */
  add(values: Float32Array): void {
    const { elements, blockLength } = this.geometry;
    const base = this.position;
    if (base + values.length > elements)
      throw new RangeError(`${base + values.length} values fed to a tensor of ${elements}`);
    let j = 0;
    while (j < values.length) {
      const b = Math.floor((base + j) / blockLength);
      const blockStart = b * blockLength;
      const blockEnd = Math.min(blockStart + blockLength, elements);
      if (base + j === blockStart) this.openBlock(blockStart, blockEnd);
      const segmentEnd = Math.min(values.length, blockEnd - base);
      while (j < segmentEnd) {
        const kept = this.keepCursor < this.keep.length ? this.keep[this.keepCursor] - base : Infinity;
        const stop = Math.min(segmentEnd, kept);
        this.scan(values, j, stop, b, base);
        j = stop;
        if (stop === kept && stop < segmentEnd) {
          checkFinite(values, stop, stop + 1, base);
          this.keepCursor++;
          j++;
        }
      }
      if (base + j === blockEnd) this.closeBlock(b);
    }
    this.position = base + values.length;
  }

  /** How many leading blocks have their final parameters. */
  ready(): number {
    return this.tensorTop ? 0 : this.closed;
  }

  finish(): BlockParams {
    const { elements, blocks } = this.geometry;
    if (this.position !== elements)
      throw new RangeError(`${this.position} of the tensor's ${elements} values were fed`);
    if (this.tensorTop) {
      const t = Math.fround(this.tensorTop.value());
      for (let b = 0; b < blocks; b++) this.setBlock(b, t);
    }
    return this.params;
  }

  /** Block b's parameters from its min, max and clipping threshold t (NaN: none). */
  private setBlock(b: number, t: number): void {
    let lo = this.min[b];
    let hi = this.max[b];
    if (lo > hi)
      lo = hi = 0; // every weight of the block is held out
    else if (t === t) {
      lo = Math.max(lo, -t);
      hi = Math.min(hi, t);
    }
    setParams(this.params, b, lo, hi, this.scheme);
  }

  private openBlock(start: number, end: number): void {
    const clip = this.scheme.clip;
    if (clip.method === "zscore") this.moments.reset();
    if (clip.method === "block-pct")
      this.blockTop.reset(blockPctRank(end - start - this.keptBefore(end), clip.fraction));
  }

  /** Held-out indices in [position of the cursor, end): the cursor sits at the block's first one. */
  private keptBefore(end: number): number {
    let i = this.keepCursor;
    while (i < this.keep.length && this.keep[i] < end) i++;
    return i - this.keepCursor;
  }

  private closeBlock(b: number): void {
    const clip = this.scheme.clip;
    this.closed = b + 1;
    if (clip.method === "zscore") this.setBlock(b, this.moments.threshold(clip.k));
    else if (clip.method === "block-pct") this.setBlock(b, this.blockTop.value());
    else if (clip.method === "none") this.setBlock(b, NaN);
  }

  /** values[from, to) are weights (none held out) of block b. */
  private scan(values: Float32Array, from: number, to: number, b: number, base: number): void {
    if (to <= from) return;
    let lo = this.min[b];
    let hi = this.max[b];
    let poison = 0; // v·0 is NaN exactly when v is ±Infinity or NaN
    for (let i = from; i < to; i++) {
      const v = values[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      poison += v * 0;
    }
    if (poison !== 0) checkFinite(values, from, to, base);
    this.min[b] = lo;
    this.max[b] = hi;
    const clip = this.scheme.clip.method;
    if (clip === "zscore") this.moments.addAbs(values, from, to);
    else if (clip === "block-pct") this.blockTop.addAbs(values, from, to);
    else if (clip === "tensor-pct") this.tensorTop!.addAbs(values, from, to);
  }
}

function checkFinite(values: Float32Array, from: number, to: number, base: number): void {
  for (let i = from; i < to; i++)
    if (!Number.isFinite(values[i]))
      throw new QuantizeError(
        `element ${base + i} is ${values[i]}; only finite weights can be quantized`,
        "NON_FINITE",
      );
}

function setParams(p: BlockParams, b: number, lo: number, hi: number, scheme: Scheme): void {
  p.lo[b] = lo;
  p.hi[b] = hi;
  const range = Math.fround(hi - lo);
  if (range === Infinity)
    throw new QuantizeError(`block ${b} spans [${lo}, ${hi}], wider than float32 holds`, "RANGE_OVERFLOW");
  if (scheme.kind === "rtn") {
    p.scale[b] = range / (2 ** scheme.bits - 1);
    p.offset[b] = lo;
  } else if (scheme.range === "absmax") {
    p.scale[b] = Math.max(Math.abs(lo), Math.abs(hi));
    p.offset[b] = 0;
  } else {
    p.scale[b] = range / 2;
    p.offset[b] = lo + p.scale[b];
  }
}

/** Pass 1 from an iterator of consecutive ranges (row ranges, blocks) covering the whole tensor. */
export function measure(
  scheme: Scheme,
  shape: readonly number[],
  keep: readonly number[],
  ranges: Iterable<Float32Array>,
): BlockParams {
  const stats = new BlockStatistics(scheme, shape, keep);
  for (const values of ranges) stats.add(values);
  return stats.finish();
}

/** x (≥ 0, in steps above the block minimum) → its code: rounded half to even, as torch.round, at most `top`. */
export function rtnCode(x: number, top: number): number {
  if (x > top) return top;
  const q = Math.round(x);
  return q - x === 0.5 && (q & 1) === 1 ? q - 1 : q;
}

/** Codes of elements [first, first + values.length), one per element (held-out ones get the code of their clamp). */
export function encode(codes: Uint8Array, values: Float32Array, first: number, scheme: Scheme, p: BlockParams): void {
  const top = 2 ** codeBits(scheme) - 1;
  const n = values.length;
  let j = 0;
  while (j < n) {
    const b = Math.floor((first + j) / p.blockLength);
    const end = Math.min(n, (b + 1) * p.blockLength - first);
    const s = p.scale[b],
      o = p.offset[b],
      lo = p.lo[b],
      hi = p.hi[b];
    if (s === 0) codes.fill(0, j, end);
    else if (scheme.kind === "rtn") {
      for (; j < end; j++) {
        const v = values[j];
        const w = v < lo ? lo : v > hi ? hi : v;
        codes[j] = rtnCode(Math.fround(Math.fround(w - o) / s), top);
      }
    } else {
      for (; j < end; j++) {
        const v = values[j];
        const w = v < lo ? lo : v > hi ? hi : v;
        const x = Math.fround(Math.fround(w - o) / s);
        codes[j] = nearestNf4(x < -1 ? -1 : x > 1 ? 1 : x);
      }
    }
    j = end;
  }
}

/**
 * Dequantize elements [first, first + count): out[i] = levels[codes[i]]·scale + offset in float32, with `scale`
 * and `offset` holding the parameters of blocks firstBlock, firstBlock + 1, … (a reader passes only those it read).
 */
export function decode(
  out: Float32Array,
  codes: Uint8Array,
  first: number,
  count: number,
  levels: Float32Array,
  blockLength: number,
  scale: Float32Array,
  offset: Float32Array,
  firstBlock = 0,
): void {
  let j = 0;
  while (j < count) {
    const b = Math.floor((first + j) / blockLength);
    const end = Math.min(count, (b + 1) * blockLength - first);
    const s = scale[b - firstBlock],
      o = offset[b - firstBlock];
    for (; j < end; j++) out[j] = Math.fround(levels[codes[j]] * s) + o;
  }
}

/**
 * decode straight from the packed stream: elements [first, first + count) whose codes start at bit `bitOffset` of
 * `bytes` (see pack.ts). The same float32 values as unpack + decode, bit for bit: where a block covers at least as
 * many elements as there are levels, each level's value fl32(fl32(level·scale) + offset) is computed once per block
 * and looked up.
 */
export function decodePacked(
  out: Float32Array,
  bytes: Uint8Array,
  bitOffset: number,
  bits: number,
  first: number,
  count: number,
  levels: Float32Array,
  blockLength: number,
  scale: Float32Array,
  offset: Float32Array,
  firstBlock = 0,
): void {
  if (bitOffset + count * bits > bytes.length * 8)
    throw new RangeError(`${count} ${bits}-bit codes from bit ${bitOffset} overrun ${bytes.length} bytes`);
  const n = levels.length;
  const value = levelValues.length >= n ? levelValues : (levelValues = new Float32Array(n));
  const mask = (1 << bits) - 1;
  let j = 0;
  while (j < count) {
    const b = Math.floor((first + j) / blockLength);
    const end = Math.min(count, (b + 1) * blockLength - first);
    const s = scale[b - firstBlock],
      o = offset[b - firstBlock];
    if (end - j < n) {
      for (; j < end; j++) out[j] = Math.fround(levels[codeAt(bytes, bitOffset + j * bits, bits, mask)] * s) + o;
      continue;
    }
    for (let q = 0; q < n; q++) value[q] = Math.fround(levels[q] * s) + o;
    if (bits === 8) for (const at = bitOffset >> 3; j < end; j++) out[j] = value[bytes[at + j]];
    else if (bits === 4 && (bitOffset & 3) === 0) {
      // Two codes per byte, low nibble first: a leading high nibble, whole bytes, a trailing low nibble.
      let nibble = (bitOffset >> 2) + j;
      if (nibble & 1) {
        out[j++] = value[bytes[nibble >> 1] >> 4];
        nibble++;
      }
      let at = nibble >> 1;
      for (; j + 1 < end; j += 2, at++) {
        const pair = bytes[at];
        out[j] = value[pair & 15];
        out[j + 1] = value[pair >> 4];
      }
      if (j < end) out[j++] = value[bytes[at] & 15];
    } else for (; j < end; j++) out[j] = value[codeAt(bytes, bitOffset + j * bits, bits, mask)];
  }
}

/** Per-level values of the block being decoded (reused). */
let levelValues = new Float32Array(256);

/** The code of `bits` bits at stream bit `bit`. */
function codeAt(bytes: Uint8Array, bit: number, bits: number, mask: number): number {
  const byte = bit >> 3,
    shift = bit & 7;
  let v = bytes[byte] >> shift;
  if (shift + bits > 8) v |= bytes[byte + 1] << (8 - shift);
  return v & mask;
}

/** Put held-out values back into out, which holds elements [first, first + count). */
export function restoreKept(
  out: Float32Array,
  first: number,
  count: number,
  keep: ArrayLike<number>,
  values: Float32Array,
): void {
  let lo = 0,
    hi = keep.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (keep[mid] < first) lo = mid + 1;
    else hi = mid;
  }
  for (let k = lo; k < keep.length && keep[k] < first + count; k++) out[keep[k] - first] = values[k];
}

export interface QuantizedTensor {
  params: BlockParams;
  /** One code per element (unpacked). */
  codes: Uint8Array;
  /** What a reader of the packed form returns: the dequantized weights with the held-out ones restored. */
  dequantized: Float32Array;
  keepValues: Float32Array;
}

/** A whole tensor held in memory, quantized and dequantized. */
export function quantizeTensor(
  values: Float32Array,
  shape: readonly number[],
  scheme: Scheme,
  keep: readonly number[] = [],
): QuantizedTensor {
  const stats = new BlockStatistics(scheme, shape, keep);
  if (values.length !== stats.geometry.elements) throw new RangeError(`${values.length} values for shape [${shape}]`);
  stats.add(values);
  const params = stats.finish();
  const codes = new Uint8Array(values.length);
  encode(codes, values, 0, scheme, params);
  const dequantized = new Float32Array(values.length);
  decode(dequantized, codes, 0, values.length, levelTable(scheme), params.blockLength, params.scale, params.offset);
  const keepValues = Float32Array.from(keep, (i) => values[i]);
  restoreKept(dequantized, 0, values.length, keep, keepValues);
  return { params, codes, dequantized, keepValues };
}
