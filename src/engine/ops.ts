// The engine's implementation of the layer operations (src/models/ops.ts) for one layer of one pass. Every
// weight is read as it is needed and released; every hook point is fired here.
import type { Activations, AttentionBlock, ExpertsBlock, LayerOps, MlpBlock } from "../models/ops.js";
import type { ModelSpec } from "../models/spec.js";
import { activate, addBias, addInPlace, clampInPlace, layerNorm, mulInPlace, rmsNorm } from "./kernels.js";
import { attention } from "./attention.js";
import { applyRope } from "./rope.js";
import { linear } from "./linear.js";
import type { Pass } from "./pass.js";
import type { HookEvent } from "./hooks.js";

export class EngineOps implements LayerOps {
  private readonly vectors = new Map<string, Float32Array | undefined>();

  constructor(
    readonly pass: Pass,
    readonly layer: number,
    readonly prefix: string,
  ) {}

  get spec(): ModelSpec {
    return this.pass.model.spec;
  }

  /** A small tensor of this layer (norm weight, bias) by name, or undefined when not stored. Its read counts. */
  private vector(name: string): Float32Array | undefined {
    const full = this.prefix + name;
    if (!this.vectors.has(full)) {
      const { model } = this.pass;
      const stored = model.has(full) ? model.read(full) : undefined;
      if (stored) {
        const info = model.info(full);
        this.pass.countRead(full, info.shape[0] ?? 1, info);
      }
      this.vectors.set(full, stored);
    }
    return this.vectors.get(full);
  }

  norm(x: Activations, name: string): Activations {
    const { norm, normEps, hidden } = this.spec;
    return this.normWidth(x, name, hidden, norm, normEps);
  }

  private normWidth(x: Activations, name: string, width: number, kind: ModelSpec["norm"], eps: number): Activations {
    const out = new Float32Array(x.length);
    const rows = x.length / width;
    if (kind === "rms" || kind === "rms_plus_one")
      rmsNorm(out, x, this.vector(`${name}.weight`)!, rows, width, eps, kind === "rms_plus_one");
    else if (kind === "layernorm")
      layerNorm(out, x, this.vector(`${name}.weight`), this.vector(`${name}.bias`), rows, width, eps);
    else layerNorm(out, x, undefined, undefined, rows, width, eps);
    return out;
  }

  linear(x: Activations, name: string): Promise<Activations> {
    return this.linearRows(x, this.pass.uniform, name);
  }

  /** x · W (+ b) where counts[v] rows of x belong to variant v; the hooks see the input first (on a copy). */
  private async linearRows(
    x: Activations,
    counts: readonly number[],
    name: string,
    extra: Partial<HookEvent> = {},
    perVariant?: (v: number) => Partial<HookEvent>,
  ): Promise<Activations> {
    const tensor = `${this.prefix}${name}.weight`;
    if (this.pass.hooked) {
      x = x.slice();
      const rows = counts.reduce((a, b) => a + b, 0);
      this.pass.fire(
        "linear_input",
        this.layer,
        x,
        rows ? x.length / rows : 0,
        { tensor, ...extra },
        counts,
        perVariant,
      );
    }
    const out = await linear(this.pass, x, counts, tensor);
    const bias = this.vector(`${name}.bias`);
    if (bias) addBias(out, bias, out.length / bias.length);
    return out;
  }

  split(x: Activations, widths: readonly number[]): Activations[] {
    const total = widths.reduce((a, b) => a + b, 0);
    const rows = x.length / total;
    const parts = widths.map((w) => new Float32Array(rows * w));
    for (let r = 0; r < rows; r++) {
      let c = r * total;
      widths.forEach((w, i) => {
        parts[i].set(x.subarray(c, c + w), r * w);
        c += w;
      });
    }
    return parts;
  }

  add(residual: Activations, y: Activations): Activations {
    addInPlace(residual, y);
    return residual;
  }

  async attention(x: Activations, block: AttentionBlock): Promise<Activations> {
    const { heads, kvHeads, headDim: d, clipQkv } = this.spec;
    const [q, k, v] =
      "qkv" in block.proj
        ? this.split(await this.linear(x, block.proj.qkv), [heads * d, kvHeads * d, kvHeads * d])
        : [await this.linear(x, block.proj.q), await this.linear(x, block.proj.k), await this.linear(x, block.proj.v)];
    if (block.qkNorm) {
      const { normEps, norm } = this.spec;
      const kind = norm === "rms_plus_one" ? "rms_plus_one" : "rms";
      const qn = this.normWidth(q, block.qkNorm.q, block.qkNorm.perHead ? d : heads * d, kind, normEps);
      const kn = this.normWidth(k, block.qkNorm.k, block.qkNorm.perHead ? d : kvHeads * d, kind, normEps);
      (q.set(qn), k.set(kn));
    }
    if (clipQkv !== undefined) for (const a of [q, k, v]) clampInPlace(a, clipQkv);
    const rope = this.spec.rope(this.layer);
    const { tokens: T, variants, backend } = this.pass;
    if (rope) {
      const table = this.pass.rope(rope);
      for (let b = 0; b < variants.length; b++) {
        applyRope(q.subarray(b * T * heads * d, (b + 1) * T * heads * d), T, heads, d, table);
        applyRope(k.subarray(b * T * kvHeads * d, (b + 1) * T * kvHeads * d), T, kvHeads, d, table);
      }
    }
    const ctx = new Float32Array(q.length);
    const { cache, offset } = this.pass;
    const shape = {
      tokens: T,
      keys: offset + T,
      heads,
      kvHeads,
      headDim: d,
      scale: this.spec.attnScale(this.layer),
      window: this.spec.slidingWindow(this.layer),
      softcap: this.spec.attnSoftcap,
    };
    for (let b = 0; b < variants.length; b++) {
      const slice = (a: Float32Array, w: number) => a.subarray(b * T * w, (b + 1) * T * w);
      // With a cache, attend over its positions and these; their keys and values join it.
      const kv = cache
        ? cache.extend(this.layer, b, slice(k, kvHeads * d), slice(v, kvHeads * d), kvHeads * d)
        : { k: slice(k, kvHeads * d), v: slice(v, kvHeads * d) };
      ctx.set(await attention(backend, slice(q, heads * d), kv.k, kv.v, shape), b * T * heads * d);
    }
    const out = await this.linear(ctx, block.out);
    this.pass.fire("attn_output", this.layer, out, this.spec.hidden);
    return out;
  }

  mlp(x: Activations, block: MlpBlock): Promise<Activations> {
    return this.mlpRows(x, this.pass.uniform, block, this.spec.intermediate);
  }

  /** The MLP on rows of x (counts[v] per variant), firing the down-projection hook points with `extra`. */
  private async mlpRows(
    x: Activations,
    counts: readonly number[],
    block: MlpBlock,
    width: number,
    extra: Partial<HookEvent> = {},
    perVariant?: (v: number) => Partial<HookEvent>,
  ): Promise<Activations> {
    const p = block.proj;
    let inner: Float32Array;
    if ("gateUp" in p) {
      const [gate, up] = this.split(await this.linearRows(x, counts, p.gateUp, extra, perVariant), [width, width]);
      activate(gate, this.spec.act);
      mulInPlace(gate, up);
      inner = gate;
    } else if ("gate" in p) {
      inner = await this.linearRows(x, counts, p.gate, extra, perVariant);
      activate(inner, this.spec.act);
      mulInPlace(inner, await this.linearRows(x, counts, p.up, extra, perVariant));
    } else {
      inner = await this.linearRows(x, counts, p.up, extra, perVariant);
      activate(inner, this.spec.act);
    }
    const tensor = `${this.prefix}${block.down}.weight`;
    this.pass.fire("down_proj_input", this.layer, inner, width, { tensor, ...extra }, counts, perVariant);
    const out = await this.linearRows(inner, counts, block.down, extra, perVariant);
    this.pass.fire("down_proj_output", this.layer, out, this.spec.hidden, { tensor, ...extra }, counts, perVariant);
    return out;
  }

  async experts(x: Activations, block: ExpertsBlock): Promise<Activations> {
    const spec = this.spec;
    const ex = spec.experts;
    if (!ex) throw new Error(`experts block in layer ${this.layer} of a model without an experts spec`);
    const { tokens: T, variants } = this.pass;
    const H = spec.hidden,
      E = ex.count,
      k = ex.topK,
      rows = variants.length * T;
    const logits = await this.linear(x, block.router);
    // Routing, per variant and token: softmax over all experts, the k largest, renormalised if asked.
    const routed = Array.from({ length: E }, () =>
      variants.map(() => ({ positions: [] as number[], weights: [] as number[] })),
    );
    const chosen = new Int32Array(rows * k),
      chosenWeights = new Float32Array(rows * k);
    const probs = new Float32Array(E);
    for (let r = 0; r < rows; r++) {
      const row = logits.subarray(r * E, (r + 1) * E);
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      for (let e = 0; e < E; e++) sum += probs[e] = Math.fround(Math.exp(row[e] - max));
      for (let e = 0; e < E; e++) probs[e] = Math.fround(probs[e] / Math.fround(sum));
      const top = [...probs.keys()].sort((a, b) => probs[b] - probs[a] || a - b).slice(0, k);
      let norm = 1;
      if (ex.renormalize) norm = Math.fround(top.reduce((s, e) => Math.fround(s + probs[e]), 0));
      top.forEach((e, j) => {
        const slot = routed[e][Math.floor(r / T)];
        const w = Math.fround(probs[e] / norm);
        slot.positions.push(r % T);
        slot.weights.push(w);
        chosen[r * k + j] = e;
        chosenWeights[r * k + j] = w;
      });
    }
    const out = new Float32Array(x.length);
    for (let e = 0; e < E; e++) {
      const counts = routed[e].map((s) => s.positions.length);
      if (counts.every((c) => c === 0)) continue; // never read: no token is routed to it
      const xe = new Float32Array(counts.reduce((a, b) => a + b, 0) * H);
      let i = 0;
      routed[e].forEach((s, v) =>
        s.positions.forEach((t) => xe.set(x.subarray((v * T + t) * H, (v * T + t + 1) * H), H * i++)),
      );
      const ye = await this.mlpRows(xe, counts, block.expert(e), ex.intermediate, { expert: e }, (v) => ({
        positions: routed[e][v].positions,
        routingWeights: Float32Array.from(routed[e][v].weights),
      }));
      i = 0;
      routed[e].forEach((s, v) =>
        s.positions.forEach((t, j) => {
          const o = (v * T + t) * H,
            w = s.weights[j],
            y = i++ * H;
          for (let c = 0; c < H; c++) out[o + c] += Math.fround(w * ye[y + c]);
        }),
      );
    }
    let gates: Float32Array | undefined;
    if (block.shared) {
      const g = (gates = await this.linear(x, block.shared.gate));
      for (let r = 0; r < rows; r++) g[r] = Math.fround(1 / (1 + Math.exp(-g[r])));
      const gate = (v: number) => ({ routingWeights: g.slice(v * T, (v + 1) * T) });
      const shared = block.shared.mlp;
      const ys = await this.mlpRows(x, this.pass.uniform, shared, ex.sharedIntermediate!, { expert: "shared" }, gate);
      for (let r = 0; r < rows; r++) for (let c = 0; c < H; c++) out[r * H + c] += Math.fround(g[r] * ys[r * H + c]);
    }
    // The block's output — what the layer adds to the residual — with how each token was routed.
    const rowsOf = <A extends Float32Array | Int32Array>(a: A, v: number, w: number) =>
      a.subarray(v * T * w, (v + 1) * T * w) as A;
    this.pass.fire("down_proj_output", this.layer, out, H, {}, this.pass.uniform, (v) => ({
      routing: {
        logits: rowsOf(logits, v, E),
        experts: rowsOf(chosen, v, k),
        weights: rowsOf(chosenWeights, v, k),
        ...(gates ? { sharedGate: rowsOf(gates, v, 1) } : {}),
      },
    }));
    return out;
  }
}
