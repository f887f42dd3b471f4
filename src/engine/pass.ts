// The state of one forward pass: the model, the variants run side by side, the hooks, what it read, and the
// KV cache it continues (its tokens then sit at positions cache.length..).
import type { RopeSpec } from "../models/spec.js";
import type { Model } from "./model.js";
import type { MatmulBackend } from "./matmul.js";
import type { Hook, HookEvent, HookPoint } from "./hooks.js";
import type { Variant } from "./variants.js";
import { ropeTable, type RopeTable } from "./rope.js";
import { firstNonFinite, nonFiniteError } from "./finite.js";
import type { KvCache } from "./kv-cache.js";

export class Pass {
  /** Bytes of weights read so far (for throughput figures). */
  bytesRead = 0;
  /** Rows of each stored tensor read so far (a routed expert's are read only when a token goes to it). */
  readonly rowsRead = new Map<string, number>();
  private readonly ropes = new Map<RopeSpec, RopeTable>();
  /** Position of the pass's first token: what the cache holds before it. */
  readonly offset: number;
  /** Whether any hook sees this pass (the pass's own or a variant's). */
  readonly hooked: boolean;

  constructor(
    readonly model: Model,
    readonly backend: MatmulBackend,
    /** Tokens per variant. */
    readonly tokens: number,
    readonly variants: readonly Variant[],
    readonly hooks: readonly Hook[],
    /** Stop at the first NaN or infinity a hook point sees (see finite.ts). */
    readonly checkFinite: boolean,
    /** The prompt's token ids (to name the embedding rows that hold a non-finite value). */
    readonly ids: readonly number[],
    readonly cache?: KvCache,
  ) {
    this.offset = cache?.length ?? 0;
    // Stryker disable next-line all: equivalent, without hooks firing linear_input copies the input and calls none
    this.hooked = hooks.length > 0 || variants.some((v) => (v.hooks?.length ?? 0) > 0);
  }

  /** Count `rows` rows of `tensor` as read (`info`: its stored bytes, and its rows as shape[0]). */
  countRead(tensor: string, rows: number, info: { bytes: number; shape: readonly number[] }): void {
    this.bytesRead += (info.bytes * rows) / (info.shape[0] ?? 1);
    this.rowsRead.set(tensor, (this.rowsRead.get(tensor) ?? 0) + rows);
  }

  /** Throw a NonFiniteError naming the culprit when `data` at (layer, point) holds a NaN or an infinity. */
  check(point: HookPoint, layer: number, data: Float32Array): void {
    if (!this.checkFinite) return;
    const at = firstNonFinite(data);
    if (at < 0) return;
    const { model } = this;
    const { arch, spec } = model;
    const names = model.source
      .names()
      .map((n) => arch.sanitize(n, spec))
      .filter((n): n is string => n !== null && model.has(n));
    const embeddings = [arch.embedding, ...(arch.positionEmbedding ? [arch.positionEmbedding] : [])];
    const suspects =
      point === "logits"
        ? names.filter((n) => n.startsWith(arch.finalNorm) || n === arch.lmHead(spec))
        : layer === 0 && point === "layer_input"
          ? embeddings
          : names.filter((n) => n.startsWith(arch.layerPrefix(layer)));
    throw nonFiniteError(model, layer, point, data, at, suspects, (n) => (n === arch.embedding ? this.ids : undefined));
  }

  /** Each variant's row count when all see every token. */
  get uniform(): number[] {
    return this.variants.map(() => this.tokens);
  }

  /** cos/sin tables of positions offset..offset + T − 1 for a RoPE spec, built once per pass. */
  rope(spec: RopeSpec): RopeTable {
    let t = this.ropes.get(spec);
    // Stryker disable next-line ConditionalExpression: equivalent, without the cache the same table is built again
    if (!t) {
      const all = ropeTable(spec, this.offset + this.tokens),
        at = this.offset * all.half;
      this.ropes.set(spec, (t = { cos: all.cos.subarray(at), sin: all.sin.subarray(at), half: all.half }));
    }
    return t;
  }

  /**
   * Let the hooks see (and change) `data` [Σ counts, width] at `point`, one variant at a time: the pass's
   * hooks, then that variant's own. `counts[v]` rows belong to variant v (default: T each).
   */
  fire(
    point: HookPoint,
    layer: number,
    data: Float32Array,
    width: number,
    extra: Partial<HookEvent> = {},
    counts: readonly number[] = this.uniform,
    perVariant?: (v: number) => Partial<HookEvent>,
  ): void {
    if (point !== "linear_input") this.check(point, layer, data);
    let row = 0;
    this.variants.forEach((variant, v) => {
      const hooks = variant.hooks?.length ? [...this.hooks, ...variant.hooks] : this.hooks;
      const n = counts[v];
      if (hooks.length && n > 0) {
        const event: HookEvent = {
          point,
          layer,
          variant: v,
          data: data.subarray(row * width, (row + n) * width),
          tokens: n,
          width,
          ...extra,
          ...perVariant?.(v),
        };
        for (const hook of hooks) hook(event);
      }
      row += n;
    });
  }
}
