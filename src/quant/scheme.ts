// What a weight quantization is (Yu et al. 2024, §4 and its code `outliers/functional/quantization.py`): the
// levels a code stands for (min–max round-to-nearest at 8/4/3/2 bits, or the 16 NF4 levels), the block one
// scale covers, and the clipping applied before scaling. Also the command-line spellings and a tensor's blocks.
import { UserError } from "../errors.js";
import { NF4_LEVELS } from "./nf4.js";

export type Bits = 2 | 3 | 4 | 8;
export const RTN_BITS: readonly Bits[] = [8, 4, 3, 2];

/**
 * "tensor": the whole tensor is one block; "channel": each run of the last dimension (a row of a 2-D weight,
 * the paper's `shape[-1]`); N: N consecutive elements in row-major order, straddling rows, the last one partial.
 */
export type Block = "tensor" | "channel" | number;

/**
 * Clipping to ±T before the block's min/max are taken, T from |w| of the block's (or tensor's) weights
 * that are not held out. `fraction` is a fraction of the weights (1e-5 = 0.001 %), as the paper's code takes it.
 */
export type Clip =
  | { method: "none" }
  | { method: "zscore"; k: number }
  | { method: "block-pct"; fraction: number }
  | { method: "tensor-pct"; fraction: number };

/**
 * "rtn": code q stands for q·scale + min. "nf4": code q stands for NF4[q]·scale + offset, where "absmax" is
 * QLoRA's definition (scale = max |w| of the block, offset 0) and "minmax" the paper's code's ([min, max] mapped
 * onto [−1, 1]: scale = (max − min)/2, offset = min + scale).
 */
export type Scheme =
  | { kind: "rtn"; bits: Bits; block: Block; clip: Clip }
  | { kind: "nf4"; range: "absmax" | "minmax"; block: Block; clip: Clip };

export function codeBits(s: Scheme): Bits {
  return s.kind === "rtn" ? s.bits : 4;
}

/** The storage type a reader reports for a tensor quantized this way: "rtn4", "nf4". */
export function dtypeLabel(s: Scheme): string {
  return s.kind === "rtn" ? `rtn${s.bits}` : "nf4";
}

/** What each code stands for before scale and offset: 0, 1, …, 2^bits − 1, or the NF4 levels. */
export function levelTable(s: Scheme): Float32Array {
  if (s.kind === "nf4") return NF4_LEVELS;
  const table = new Float32Array(2 ** s.bits);
  for (let q = 0; q < table.length; q++) table[q] = q;
  return table;
}

export function parseBits(text: string): Bits {
  const bits = Number(text);
  if (!(RTN_BITS as readonly number[]).includes(bits)) throw new UserError(`bits must be 8, 4, 3 or 2 (got "${text}")`);
  return bits as Bits;
}

/** "tensor", "channel", or a positive number of elements, optionally in units of K = 1024 or M = 1024² ("4K"). */
export function parseBlock(text: string): Block {
  if (text === "tensor" || text === "channel") return text;
  const m = /^(\d+)([KM]?)$/.exec(text);
  const n = m ? Number(m[1]) * (m[2] === "K" ? 1024 : m[2] === "M" ? 1024 * 1024 : 1) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new UserError(
      `block must be "tensor", "channel" or a positive number of elements, e.g. 128 or 64K (got "${text}")`,
    );
  return n;
}

/** A block as the command line spells it: 65536 → "64K", 1048576 → "1M". */
export function formatBlock(block: Block): string {
  if (typeof block !== "number") return block;
  if (block % (1024 * 1024) === 0) return `${block / (1024 * 1024)}M`;
  return block % 1024 === 0 ? `${block / 1024}K` : String(block);
}

/** "none", "zscore:K" (K > 0), "block-pct:F" or "tensor-pct:F" (0 ≤ F < 1, a fraction of the weights). */
export function parseClip(text: string): Clip {
  if (text === "none") return { method: "none" };
  const m = /^(zscore|block-pct|tensor-pct):(.+)$/.exec(text);
  const value = m ? Number(m[2]) : NaN;
  if (m?.[1] === "zscore" && Number.isFinite(value) && value > 0) return { method: "zscore", k: value };
  if (m && m[1] !== "zscore" && value >= 0 && value < 1)
    return { method: m[1] as "block-pct" | "tensor-pct", fraction: value };
  throw new UserError(
    `clip must be "none", "zscore:K" (K > 0), "block-pct:F" or "tensor-pct:F" (F a fraction in [0, 1), ` +
      `e.g. 1e-5) (got "${text}")`,
  );
}

/** Refuse a scheme built in code with values the parsers would refuse. */
export function checkScheme(s: Scheme): void {
  if (s.kind === "rtn") parseBits(String(s.bits));
  else if (s.kind !== "nf4" || (s.range !== "absmax" && s.range !== "minmax"))
    throw new UserError(`scheme must be rtn (bits 8/4/3/2) or nf4 (range absmax or minmax)`);
  parseBlock(String(s.block));
  parseClip(formatClip(s.clip));
}

export function formatClip(c: Clip): string {
  return c.method === "none" ? "none" : c.method === "zscore" ? `zscore:${c.k}` : `${c.method}:${c.fraction}`;
}

/** How a tensor of this shape splits into blocks. */
export interface Geometry {
  elements: number;
  /** Elements per block (the last block may hold fewer); at least 1. */
  blockLength: number;
  blocks: number;
}

export function geometry(block: Block, shape: readonly number[]): Geometry {
  if (typeof block === "number" && !(Number.isSafeInteger(block) && block > 0))
    throw new RangeError(`block ${block} is not a positive number of elements`);
  const elements = shape.reduce((a, b) => a * b, 1);
  const wanted = block === "tensor" ? elements : block === "channel" ? (shape.at(-1) ?? 1) : block;
  const blockLength = Math.max(1, Math.min(wanted, elements));
  return { elements, blockLength, blocks: Math.ceil(elements / blockLength) };
}
