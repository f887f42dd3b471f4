// What an architecture's layer function works with: weights loaded on demand (one matrix, or one block
// of rows of it, at a time, released after use), the shared kernels, and the hook points.
//
// Activations are [variants·T, width]: every variant (a copy of the model with some weights edited)
// runs the same tokens in lockstep, so each weight is read from disk once per pass for all of them.
import type { Model } from "./model.js";
import type { Layout, MatmulBackend } from "./matmul.js";
import type { Hook, HookPoint, Variant, WeightEdit } from "./hooks.js";
import { addBias, layerNorm, rmsNorm } from "./kernels.js";
import { attention } from "./attention.js";
import { applyRope, type RopeTable } from "./rope.js";
import { blockBuffer, MAX_BLOCK_ELEMENTS } from "../checkpoint/widen-wasm.js";


export interface RunState {
  model: Model;
  backend: MatmulBackend;
  tokens: number;
  variants: readonly Variant[];
  hooks: readonly Hook[];
  rope?: RopeTable;
  /** Bytes of weights read so far (for throughput figures). */
  bytesRead: number;
}

export class LayerRun {
  readonly rows: number;
  private readonly vectors = new Map<string, Float32Array | undefined>();

  constructor(readonly state: RunState, readonly layer: number, readonly prefix: string) {
    this.rows = state.variants.length * state.tokens;
  }

  get spec() {
    return this.state.model.spec;
  }

  /** A small tensor of this layer (norm weight, bias) by suffix, or undefined when not stored. */
  vector(suffix: string): Float32Array | undefined {
    const name = this.prefix + suffix;
    if (!this.vectors.has(name)) this.vectors.set(name, this.state.model.has(name) ? this.state.model.read(name) : undefined);
    return this.vectors.get(name);
  }

  /** out[rows, n] = x[rows, k] · W + b for `${prefix}${name}.weight` (and `.bias` when stored). */
  async linear(x: Float32Array, name: string): Promise<Float32Array> {
    const weight = `${this.prefix}${name}.weight`;
    const out = await linear(this.state, x, this.rows, weight);
    const bias = this.vector(`${name}.bias`);
    if (bias) addBias(out, bias, this.rows);
    return out;
  }

  /** The spec's norm with `${name}.weight` (and `.bias` for LayerNorm) of this layer. */
  norm(x: Float32Array, name: string): Float32Array {
    const { norm, normEps, hidden } = this.spec;
    const out = new Float32Array(x.length);
    if (norm === "rms" || norm === "rms_plus_one") rmsNorm(out, x, this.vector(`${name}.weight`)!, this.rows, hidden, normEps, norm === "rms_plus_one");
    else if (norm === "layernorm") layerNorm(out, x, this.vector(`${name}.weight`), this.vector(`${name}.bias`), this.rows, hidden, normEps);
    else layerNorm(out, x, undefined, undefined, this.rows, hidden, normEps);
    return out;
  }

  /** RoPE on q or k ([rows, heads·headDim]), each variant from position 0. */
  rope(x: Float32Array, heads: number): void {
    const { tokens, variants, rope } = this.state;
    const width = heads * this.spec.headDim;
    for (let v = 0; v < variants.length; v++) applyRope(x.subarray(v * tokens * width, (v + 1) * tokens * width), tokens, heads, this.spec.headDim, rope!);
  }

  /** Causal attention for each variant; q [rows, heads·d], k/v [rows, kvHeads·d] → [rows, heads·d]. */
  async attention(q: Float32Array, k: Float32Array, v: Float32Array): Promise<Float32Array> {
    const { tokens: T, variants, backend } = this.state;
    const { heads, kvHeads, headDim } = this.spec;
    const out = new Float32Array(this.rows * heads * headDim);
    const shape = { tokens: T, heads, kvHeads, headDim, scale: this.spec.attnScale(this.layer), window: this.spec.slidingWindow };
    for (let b = 0; b < variants.length; b++) {
      const slice = (a: Float32Array, w: number) => a.subarray(b * T * w, (b + 1) * T * w);
      const o = await attention(backend, slice(q, heads * headDim), slice(k, kvHeads * headDim), slice(v, kvHeads * headDim), shape);
      out.set(o, b * T * heads * headDim);
    }
    return out;
  }

  /** Let every hook see (and change) `data` [rows, width] at `point`, one variant at a time. */
  hook(point: HookPoint, data: Float32Array, width: number): void {
    runHooks(this.state, point, this.layer, data, width);
  }
}

export function runHooks(state: RunState, point: HookPoint, layer: number, data: Float32Array, width: number): void {
  const T = state.tokens;
  for (const hook of state.hooks)
    for (let v = 0; v < state.variants.length; v++)
      hook({ point, layer, variant: v, data: data.subarray(v * T * width, (v + 1) * T * width), tokens: T, width });
}

/**
 * out[rows, n] = x[rows, k] · W for a stored weight, read in row blocks of at most MAX_BLOCK_ELEMENTS
 * and released after use. Variants that edit this weight get their own product with the edits applied
 * to the block (set, multiply, restore), so the result is exactly that of the edited model.
 */
export async function linear(state: RunState, x: Float32Array, rows: number, weight: string, layout: Layout = state.model.arch.layout): Promise<Float32Array> {
  const { model, backend, tokens: T, variants } = state;
  const shape = model.shape(weight);
  const [n, k] = layout === "nk" ? shape : [shape[1], shape[0]];
  if (x.length !== rows * k) throw new Error(`linear ${weight}: input has ${x.length / rows} columns, weight expects ${k}`);

  // Variants grouped by the edits they make to this weight ("" = none).
  const groups = new Map<string, { variants: number[]; edits: WeightEdit[] }>();
  variants.forEach((v, i) => {
    const edits = (v.edits ?? []).filter((e) => e.tensor === weight);
    const key = edits.map((e) => `${e.row},${e.column},${e.value}`).join(";");
    const g = groups.get(key) ?? { variants: [], edits };
    g.variants.push(i);
    groups.set(key, g);
  });
  const inputs = [...groups.values()].map((g) => ({ ...g, x: g.variants.length === variants.length ? x : gatherRows(x, g.variants, T, k) }));

  // Row blocks of the stored matrix, each read into one reused buffer and widened in place:
  //   "nk" [out, in]: rows [r0, r1) are output columns [r0, r1), written into place;
  //   "kn" [in, out]: rows [r0, r1) are inputs [r0, r1), whose partial products are summed.
  // (onnxruntime-node runs a product synchronously, so the next block is read once this one is done.)
  const out = new Float32Array(rows * n);
  const blockRows = Math.max(1, Math.floor(MAX_BLOCK_ELEMENTS / shape[1]));
  for (let r0 = 0; r0 < shape[0]; r0 += blockRows) {
    const r1 = Math.min(shape[0], r0 + blockRows);
    const w = model.readRows(weight, r0, r1, blockBuffer((r1 - r0) * shape[1]));
    state.bytesRead += (r1 - r0) * shape[1] * bytesPerElement(model, weight);
    for (const g of inputs) {
      const m = g.variants.length * T;
      const saved = applyEdits(w, r0, r1, shape[1], g.edits);
      if (layout === "nk") scatter(out, await backend.linear(g.x, m, k, w, r1 - r0, layout), g.variants, T, n, r0, r1 - r0);
      else accumulate(out, await backend.linear(columns(g.x, m, k, r0, r1), m, r1 - r0, w, n, layout), g.variants, T, n);
      restore(w, saved);
    }
  }
  return out;
}

function bytesPerElement(model: Model, weight: string): number {
  return model.dtype(weight) === "F32" ? 4 : 2;
}

function gatherRows(x: Float32Array, variants: number[], T: number, k: number): Float32Array {
  const out = new Float32Array(variants.length * T * k);
  variants.forEach((v, i) => out.set(x.subarray(v * T * k, (v + 1) * T * k), i * T * k));
  return out;
}

/** out[variant rows, c0 : c0 + width] = part[i-th variant rows, :] */
function scatter(out: Float32Array, part: Float32Array, variants: number[], T: number, n: number, c0: number, width: number): void {
  variants.forEach((v, i) => {
    for (let t = 0; t < T; t++) {
      const src = (i * T + t) * width;
      out.set(part.subarray(src, src + width), (v * T + t) * n + c0);
    }
  });
}

/** x[m, c0:c1] as its own [m, c1 − c0] array (the whole x when that is all of it). */
function columns(x: Float32Array, m: number, k: number, c0: number, c1: number): Float32Array {
  if (c0 === 0 && c1 === k) return x;
  const out = new Float32Array(m * (c1 - c0));
  for (let r = 0; r < m; r++) out.set(x.subarray(r * k + c0, r * k + c1), r * (c1 - c0));
  return out;
}

/** out[variant rows, :] += part[i-th variant rows, :] */
function accumulate(out: Float32Array, part: Float32Array, variants: number[], T: number, n: number): void {
  variants.forEach((v, i) => {
    const o = v * T * n, p = i * T * n;
    for (let j = 0; j < T * n; j++) out[o + j] += part[p + j];
  });
}

function applyEdits(w: Float32Array, r0: number, r1: number, cols: number, edits: WeightEdit[]): [number, number][] {
  const saved: [number, number][] = [];
  for (const e of edits) {
    if (e.row < r0 || e.row >= r1) continue;
    const i = (e.row - r0) * cols + e.column;
    saved.push([i, w[i]]);
    w[i] = e.value;
  }
  return saved;
}

function restore(w: Float32Array, saved: [number, number][]): void {
  for (let j = saved.length - 1; j >= 0; j--) w[saved[j][0]] = saved[j][1];
}
