// Non-finite values are found, not propagated: a checked pass stops at the first hook point whose tensor holds
// a NaN or an infinity, and names the weights of that layer that hold them (or says that they are all finite,
// so the arithmetic overflowed). SUPERWEIGHT_ALLOW_NON_FINITE=1 (the CLI's --allow-non-finite) lets the pass go
// on, for users who want to see the damage.
import { MAX_BLOCK_ELEMENTS } from "../checkpoint/block-buffer.js";
import { UserError } from "../errors.js";
import type { Model } from "./model.js";

export class NonFiniteError extends UserError {
  constructor(message: string, file: string) {
    super(message, file);
    this.name = "NonFiniteError";
  }
}

/** Index of the first NaN or ±Infinity in x, or −1 (x − x is 0 exactly for finite x). */
export function firstNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) if (x[i] - x[i] !== 0) return i;
  return -1;
}

/** Whether checks are on: unless the caller says, SUPERWEIGHT_ALLOW_NON_FINITE=1 turns them off. */
export function checksNonFinite(allow?: boolean): boolean {
  return !(allow ?? process.env.SUPERWEIGHT_ALLOW_NON_FINITE === "1");
}

/** Where a stored tensor holds non-finite values: how many, and the first by stored index. */
export function nonFiniteIn(
  model: Model,
  name: string,
  rows?: readonly number[],
): { count: number; first: number[]; kind: string } | undefined {
  const shape = model.shape(name);
  const total = shape.length === 0 ? 1 : shape[0];
  const cols = shape.slice(1).reduce((a, b) => a * b, 1);
  const step = Math.max(1, Math.floor(MAX_BLOCK_ELEMENTS / cols));
  let count = 0,
    first: number[] | undefined,
    kind = "";
  const look = (r0: number, r1: number) => {
    const w = model.readRows(name, r0, r1);
    for (let i = firstNonFinite(w); i >= 0 && i < w.length; i++) {
      if (w[i] - w[i] === 0) continue;
      count++;
      if (!first) {
        first = shape.length <= 1 ? [i] : [r0 + Math.floor(i / cols), i % cols];
        kind = Number.isNaN(w[i]) ? "NaN" : "infinite";
      }
    }
  };
  if (rows) for (const r of new Set(rows)) look(r, r + 1);
  else for (let r0 = 0; r0 < total; r0 += step) look(r0, Math.min(total, r0 + step));
  return first ? { count, first, kind } : undefined;
}

/** The error for a non-finite value first seen at (layer, point): which of `suspects` hold such values. */
export function nonFiniteError(
  model: Model,
  layer: number,
  point: string,
  data: Float32Array,
  at: number,
  suspects: readonly string[],
  rows?: (name: string) => readonly number[] | undefined,
): NonFiniteError {
  const kind = Number.isNaN(data[at]) ? "NaN" : "an infinite value";
  const where = point === "logits" ? "the logits" : `layer ${layer}, ${point}`;
  const found: string[] = [];
  for (const name of suspects) {
    const bad = nonFiniteIn(model, name, rows?.(name));
    if (bad)
      found.push(
        `${name} holds ${bad.count} ${bad.kind} value${bad.count === 1 ? "" : "s"} (first at [${bad.first.join(", ")}])`,
      );
  }
  const cause = found.length
    ? found.slice(0, 3).join("; ") + (found.length > 3 ? `; and ${found.length - 3} more tensors` : "")
    : "the weights read there are finite: the arithmetic overflowed float32, or the config makes it fail";
  return new NonFiniteError(
    `${kind} first appears at ${where}: ${cause}. Pass --allow-non-finite to go on anyway`,
    model.path,
  );
}
