// The forward pass, top to bottom: embeddings → each decoder layer, its weights loaded and released
// → final norm → LM head. Optionally starts from a cached residual entering some layer, stops early,
// runs several variants of the model (weight overrides, own hooks) in lockstep, or continues a KV cache
// (its tokens then sit at the positions after the cache's, and only they are run).
import { UserError } from "../errors.js";
import type { Model } from "./model.js";
import { getBackend, type MatmulBackend } from "./matmul.js";
import type { Hook } from "./hooks.js";
import type { Variant } from "./variants.js";
import { Pass } from "./pass.js";
import { EngineOps } from "./ops.js";
import { runHead, type HeadRequest, type HeadResult } from "./head.js";
import { tensorRows } from "./linear.js";
import { checksNonFinite } from "./finite.js";
import type { KvCache } from "./kv-cache.js";

export interface ForwardOptions {
  /** Copies of the model to run side by side (default: one, unchanged). */
  variants?: readonly Variant[];
  /** Hooks that see every variant's events. */
  hooks?: readonly Hook[];
  /** Start at this layer from `start`, the residual entering it ([T, hidden], or [variants·T, hidden]). */
  fromLayer?: number;
  start?: Float32Array;
  /** Stop before this layer (default: all layers); the head runs only after the last layer. */
  toLayer?: number;
  /** What to compute from the head (default: every position's logits); false: no head. */
  head?: HeadRequest | false;
  backend?: MatmulBackend;
  /** Go on past NaN or infinite values instead of stopping with a NonFiniteError (default: SUPERWEIGHT_ALLOW_NON_FINITE). */
  allowNonFinite?: boolean;
  /** Called after each layer (progress). */
  onLayer?: (layer: number) => void;
  /** Continue these variants' keys and values (one slot per variant); the pass's tokens are appended. */
  cache?: KvCache;
  /** Each variant's own tokens (T each), instead of `ids` for all (generation: each continues its own text). */
  variantIds?: readonly (readonly number[])[];
}

export interface ForwardResult extends HeadResult {
  tokens: number;
  variants: number;
  /** The residual after the last layer run, [variants·T, hidden]. */
  residual: Float32Array;
  /** Bytes of weights read from the checkpoint. */
  bytesRead: number;
  /** Rows read of each stored tensor the pass read. */
  rowsRead: Map<string, number>;
}

export async function forward(
  model: Model,
  ids: readonly number[],
  options: ForwardOptions = {},
): Promise<ForwardResult> {
  const { spec, arch } = model;
  const variants = options.variants ?? [{}];
  const T = ids.length;
  const from = options.fromLayer ?? 0;
  const to = options.toLayer ?? spec.layers;
  if (T === 0) throw new UserError("no tokens to run");
  if (from < 0 || to > spec.layers || from > to)
    throw new RangeError(`layers [${from}, ${to}) outside 0..${spec.layers}`);
  const { cache, variantIds } = options;
  if (cache && (from !== 0 || to !== spec.layers || options.start))
    throw new Error("forward: a KV cache needs every layer run from the embeddings");
  if (cache && cache.variants !== variants.length)
    throw new Error(`forward: the KV cache holds ${cache.variants} variants, the pass runs ${variants.length}`);
  const badIds = variantIds && (variantIds.length !== variants.length || variantIds.some((v) => v.length !== T));
  if (variantIds && (from !== 0 || options.start || badIds))
    throw new Error(`forward: variantIds must give ${T} tokens for each of ${variants.length} variants, from layer 0`);
  const backend = options.backend ?? (await getBackend());
  const pass = new Pass(
    model,
    backend,
    T,
    variants,
    options.hooks ?? [],
    checksNonFinite(options.allowNonFinite),
    ids,
    cache,
  );
  prepareOverrides(pass);

  // x[variants·T, hidden]: the residual stream.
  let x: Float32Array;
  if (variantIds) x = concat(variantIds.map((v) => embed(pass, v)));
  else if (from === 0 && !options.start) x = repeat(embed(pass, ids), variants.length);
  else {
    if (!options.start) throw new Error("forward: fromLayer > 0 needs the residual entering that layer (start)");
    x = options.start.length === T * spec.hidden ? repeat(options.start, variants.length) : options.start.slice();
    if (x.length !== variants.length * T * spec.hidden) throw new Error("forward: start residual has the wrong size");
  }

  for (let layer = from; layer < to; layer++) {
    const ops = new EngineOps(pass, layer, arch.layerPrefix(layer));
    pass.fire("layer_input", layer, x, spec.hidden);
    x = await arch.layer(ops, x);
    pass.fire("layer_output", layer, x, spec.hidden);
    options.onLayer?.(layer);
  }

  const result: ForwardResult = {
    tokens: T,
    variants: variants.length,
    residual: x,
    bytesRead: 0,
    rowsRead: pass.rowsRead,
  };
  const head = options.head ?? { logits: true };
  if (to === spec.layers && head) {
    const normed = new EngineOps(pass, spec.layers, "").norm(x, arch.finalNorm);
    Object.assign(result, await runHead(pass, normed, arch.lmHead(spec), head, spec.layers));
  }
  result.bytesRead = pass.bytesRead;
  cache?.advance(T);
  return result;
}

/** Token embeddings (+ learned positions from the pass's offset, × the embedding scale), reading only the rows
 * needed. */
function embed(pass: Pass, ids: readonly number[]): Float32Array {
  const { model } = pass;
  const { spec, arch } = model;
  const H = spec.hidden;
  const x = new Float32Array(ids.length * H);
  const info = model.info(arch.embedding);
  ids.forEach((id, t) => {
    if (!Number.isInteger(id) || id < 0 || id >= spec.vocab)
      throw new UserError(`token id ${id} is outside the vocabulary (0..${spec.vocab - 1})`);
    model.readRows(arch.embedding, id, id + 1, x.subarray(t * H, (t + 1) * H));
  });
  pass.countRead(arch.embedding, ids.length, info);
  // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, scaling by 1 changes nothing; one step past the end writes nowhere
  if (spec.embedScale !== 1) for (let i = 0; i < x.length; i++) x[i] = Math.fround(x[i] * spec.embedScale);
  if (arch.positionEmbedding) {
    const end = pass.offset + ids.length;
    if (end > spec.maxPositions) throw new UserError(`${end} tokens exceed the model's ${spec.maxPositions} positions`);
    const pos = model.readRows(arch.positionEmbedding, pass.offset, end, new Float32Array(ids.length * H));
    // Stryker disable next-line EqualityOperator: equivalent, one step past the end writes nowhere
    for (let i = 0; i < x.length; i++) x[i] += pos[i];
  }
  return x;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}

function repeat(x: Float32Array, times: number): Float32Array {
  // Stryker disable next-line ConditionalExpression: equivalent, the loop below copies the one time too
  if (times === 1) return x.slice();
  const out = new Float32Array(x.length * times);
  for (let i = 0; i < times; i++) out.set(x, i * x.length);
  return out;
}

/** Check every override names a stored tensor, and give each `prepare` its one look at the tensor. */
function prepareOverrides(pass: Pass): void {
  const { model } = pass;
  for (const v of pass.variants)
    for (const o of v.overrides ?? []) {
      if (!model.has(o.tensor)) throw new UserError(`cannot override "${o.tensor}": no such tensor in ${model.path}`);
      if (o.prepare && !model.prepared.has(o)) {
        o.prepare(tensorRows(pass, o.tensor));
        model.prepared.add(o);
      }
    }
}
