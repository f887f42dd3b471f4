// The forward pass, top to bottom: embeddings → each decoder layer, its weights loaded and released
// → final norm → LM head. Optionally starts from a cached residual entering some layer, stops early,
// and runs several weight-edited variants of the model in lockstep (see layer.ts).
import { UserError } from "../errors.js";
import type { Model } from "./model.js";
import { getBackend, type MatmulBackend } from "./matmul.js";
import type { Hook, Variant } from "./hooks.js";
import { LayerRun, linear, runHooks, type RunState } from "./layer.js";
import { ropeTable } from "./rope.js";

export interface ForwardOptions {
  /** Weight-edited copies of the model to run side by side (default: one, unedited). */
  variants?: readonly Variant[];
  hooks?: readonly Hook[];
  /** Start at this layer from `start`, the residual entering it ([T, hidden], or [variants·T, hidden]). */
  fromLayer?: number;
  start?: Float32Array;
  /** Stop before this layer (default: all layers); logits are computed only after the last layer. */
  toLayer?: number;
  /** Compute logits (default true when running to the end). */
  logits?: boolean;
  backend?: MatmulBackend;
  /** Called after each layer (progress). */
  onLayer?: (layer: number) => void;
}

export interface ForwardResult {
  tokens: number;
  variants: number;
  /** The residual after the last layer run, [variants·T, hidden]. */
  residual: Float32Array;
  /** [variants·T, vocab] when computed. */
  logits?: Float32Array;
  /** Bytes of weights read from the checkpoint. */
  bytesRead: number;
}

export async function forward(model: Model, ids: readonly number[], options: ForwardOptions = {}): Promise<ForwardResult> {
  const { spec, arch } = model;
  const variants = options.variants ?? [{}];
  const T = ids.length;
  const from = options.fromLayer ?? 0;
  const to = options.toLayer ?? spec.layers;
  if (T === 0) throw new UserError("no tokens to run");
  if (from < 0 || to > spec.layers || from > to) throw new RangeError(`layers [${from}, ${to}) outside 0..${spec.layers}`);
  checkEdits(model, variants);
  const state: RunState = {
    model, variants, tokens: T, hooks: options.hooks ?? [], bytesRead: 0,
    backend: options.backend ?? (await getBackend()),
    rope: spec.rope ? ropeTable(spec.rope, T) : undefined,
  };

  // x[variants·T, hidden]: the residual stream.
  let x: Float32Array;
  if (from === 0 && !options.start) x = repeat(embed(model, ids, state), variants.length);
  else {
    if (!options.start) throw new Error("forward: fromLayer > 0 needs the residual entering that layer (start)");
    x = options.start.length === T * spec.hidden ? repeat(options.start, variants.length) : options.start.slice();
    if (x.length !== variants.length * T * spec.hidden) throw new Error("forward: start residual has the wrong size");
  }

  for (let layer = from; layer < to; layer++) {
    const run = new LayerRun(state, layer, arch.layerPrefix(layer));
    run.hook("layer_input", x, spec.hidden);
    x = await arch.layer(run, x);
    run.hook("layer_output", x, spec.hidden);
    options.onLayer?.(layer);
  }

  const result: ForwardResult = { tokens: T, variants: variants.length, residual: x, bytesRead: state.bytesRead };
  if (to === spec.layers && options.logits !== false) {
    const head = new LayerRun(state, spec.layers, "");
    const normed = head.norm(x, arch.finalNorm);
    // The head (lm_head or the tied embedding) is [vocab, hidden] in every architecture.
    const logits = await linear(state, normed, head.rows, arch.lmHead(spec), "nk");
    runHooks(state, "logits", spec.layers, logits, spec.vocab);
    result.logits = logits;
    result.bytesRead = state.bytesRead;
  }
  return result;
}

/** Token embeddings (+ learned positions, × the embedding scale), reading only the rows needed. */
function embed(model: Model, ids: readonly number[], state: RunState): Float32Array {
  const { spec, arch } = model;
  const H = spec.hidden;
  const x = new Float32Array(ids.length * H);
  ids.forEach((id, t) => {
    if (!Number.isInteger(id) || id < 0 || id >= spec.vocab) throw new UserError(`token id ${id} is outside the vocabulary (0..${spec.vocab - 1})`);
    model.readRows(arch.embedding, id, id + 1, x.subarray(t * H, (t + 1) * H));
  });
  state.bytesRead += ids.length * H * (model.dtype(arch.embedding) === "F32" ? 4 : 2);
  if (spec.embedScale !== 1) for (let i = 0; i < x.length; i++) x[i] = Math.fround(x[i] * spec.embedScale);
  if (arch.positionEmbedding) {
    if (ids.length > spec.maxPositions) throw new UserError(`${ids.length} tokens exceed the model's ${spec.maxPositions} positions`);
    const pos = model.readRows(arch.positionEmbedding, 0, ids.length);
    for (let i = 0; i < x.length; i++) x[i] += pos[i];
  }
  return x;
}

function repeat(x: Float32Array, times: number): Float32Array {
  if (times === 1) return x.slice();
  const out = new Float32Array(x.length * times);
  for (let i = 0; i < times; i++) out.set(x, i * x.length);
  return out;
}

function checkEdits(model: Model, variants: readonly Variant[]): void {
  for (const v of variants)
    for (const e of v.edits ?? []) {
      if (!model.has(e.tensor)) throw new UserError(`cannot edit "${e.tensor}": no such tensor in ${model.folder}`);
      const [r, c] = model.shape(e.tensor);
      if (!(e.row >= 0 && e.row < r && e.column >= 0 && e.column < c)) throw new UserError(`cannot edit ${e.tensor}[${e.row}, ${e.column}]: outside its shape [${r}, ${c}]`);
    }
}
