// `superweight quantize --compare`: quantization configurations side by side, all in memory — naive round-to-
// nearest, with clipping, and with clipping plus the super weights held out, across block sizes and bit widths,
// optionally with the down_proj inputs quantized — each scored on a text by perplexity (windows as `eval` cuts
// them) and by the KL divergence of its next-token distributions from the unquantized model's, beside its size
// in the packed layout. Configurations are variants of the same passes (the unquantized model leads each batch of
// at most maxVariants), so every weight is read once per window for a whole batch. The result is a typed,
// versioned report; src/report/ renders it.
import type { Model } from "../engine/model.js";
import { forward } from "../engine/forward.js";
import type { Variant } from "../engine/variants.js";
import { UserError } from "../errors.js";
import { checkWindows, type Window, type WindowOptions } from "../eval/perplexity.js";
import { klFromLogits } from "../eval/generate.js";
import type { Bits, Block, Clip, Scheme } from "../quant/scheme.js";
import { formatClip } from "../quant/scheme.js";
import { quantizeActivations, type ActivationInputs, type ActivationSite } from "./activations.js";
import { layoutSize, type LayoutSize } from "./size.js";
import {
  keptIndices,
  quantizesEmbeddingLookup,
  selectTensors,
  type HeldWeight,
  type Selection,
  type SelectedTensor,
} from "./tensors.js";
import { MeasurePool, quantizeOverride, transformedValue } from "./weights.js";

export const QUANTIZE_COMPARISON_VERSION = 1;

/** The compared blocks when none are chosen: the paper's sweep from one block per tensor down to 128 weights. */
export const DEFAULT_COMPARE_BLOCKS: readonly Block[] = ["tensor", 1 << 20, 1 << 18, 1 << 16, 1 << 14, 1 << 12, 128];
export const DEFAULT_COMPARE_BITS: readonly Bits[] = [4, 3];
/** Clipping of the "clip" configurations when none is given: the z-score the paper's runs use. */
export const DEFAULT_COMPARE_CLIP: Clip = { method: "zscore", k: 9 };

/** rtn (bits from the sweep) or nf4 (4 bits; --bits does not apply). */
export type SchemeFamily = { kind: "rtn" } | { kind: "nf4"; range: "absmax" | "minmax" };

/** How a configuration treats the weights: clipped or not, super weights held out or not. */
export type WeightMethod = "naive" | "clip" | "hold-out" | "clip+hold-out";

export interface CompareConfig {
  weights: { method: WeightMethod; scheme: Scheme } | null;
  activations: ActivationSetting | null;
}

/** Activations quantized per tensor to `bits`: the down_proj inputs or every linear input, super activation held
 * out or not. */
export interface ActivationSetting {
  bits: number;
  inputs: ActivationInputs;
  keepSuperActivation: boolean;
}

export interface ConfigPlan {
  family: SchemeFamily;
  bits: readonly Bits[];
  blocks: readonly Block[];
  /** What the clip methods clip with; "none" leaves naive and hold-out. */
  clip: Clip;
  /** Whether there are super weights to hold out. */
  holdOut: boolean;
  /** Activation bits to compare (none: weights only). */
  activationBits: readonly number[];
  /** Which activations those are. */
  activationInputs: ActivationInputs;
  /** Also each activation setting with the super activation held out. */
  keepSuperActivation: boolean;
}

/** Every configuration: each weight setting (and the unquantized weights when activations are compared) with each
 * activation setting (and none); the unquantized model itself is the baseline, not a configuration. */
export function compareConfigs(p: ConfigPlan): CompareConfig[] {
  const none: Clip = { method: "none" };
  const methods: [WeightMethod, Clip][] =
    p.clip.method === "none"
      ? [
          ["naive", none],
          ["hold-out", none],
        ]
      : [
          ["naive", none],
          ["clip", p.clip],
          ["clip+hold-out", p.clip],
        ];
  const usable = methods.filter(([m]) => p.holdOut || !m.includes("hold-out"));
  const widths: (Bits | undefined)[] = p.family.kind === "rtn" ? [...p.bits] : [undefined];
  const weights: CompareConfig["weights"][] = [];
  for (const bits of widths)
    for (const block of p.blocks)
      for (const [method, clip] of usable) {
        const scheme: Scheme =
          p.family.kind === "rtn"
            ? { kind: "rtn", bits: bits!, block, clip }
            : { kind: "nf4", range: p.family.range, block, clip };
        weights.push({ method, scheme });
      }
  const activations: CompareConfig["activations"][] = [null];
  for (const bits of p.activationBits) {
    activations.push({ bits, inputs: p.activationInputs, keepSuperActivation: false });
    if (p.keepSuperActivation) activations.push({ bits, inputs: p.activationInputs, keepSuperActivation: true });
  }
  const all = p.activationBits.length ? [null, ...weights] : weights;
  return all.flatMap((w) => activations.filter((a) => w || a).map((a) => ({ weights: w, activations: a })));
}

export interface CompareRequest {
  plan: ConfigPlan;
  selection?: Selection;
  /** The held-out weights of the hold-out methods, and where they came from. */
  superWeights: { source: "scan" | "keep" | "none"; held: HeldWeight[] };
  /** The super activations --keep-super-activation holds out. */
  superActivations: ActivationSite[];
  /** The scored text as a token stream, its windows, and what it is (for the report). */
  stream: readonly number[];
  windows: WindowOptions;
  text: { name: string; source: string };
  /** Variants per pass, the unquantized model included (at least 2). */
  maxVariants: number;
  onPass?: (done: number, of: number) => void;
}

export interface ComparedConfig {
  id: number;
  /** Configurations with the same model quantize every tensor alike (e.g. blocks larger than every tensor): one
   * variant computed them. */
  model: number;
  weights: {
    method: WeightMethod;
    scheme: "rtn" | "nf4";
    bits: number;
    nf4Range?: "absmax" | "minmax";
    block: Block;
    clip: string;
    /** Weights held out exactly. */
    heldOut: number;
  } | null;
  activations: ActivationSetting | null;
  tokensScored: number;
  meanNll: number;
  perplexity: number;
  /** meanNll − the unquantized model's. */
  deltaMeanNll: number;
  /** KL(unquantized ‖ this) of the next-token distributions, nats: mean and largest over the scored positions. */
  kl: { mean: number; max: number };
  size: LayoutSize;
  /** Each super weight as this configuration leaves it. */
  superWeights: { layer: number; row: number; column: number; value: number; reconstructed: number }[];
}

export interface QuantizeComparison {
  kind: "quantize-comparison";
  version: typeof QUANTIZE_COMPARISON_VERSION;
  model: string;
  modelType: string;
  scheme: "rtn" | "nf4";
  nf4Range?: "absmax" | "minmax";
  /** What the clip methods clip with. */
  clip: string;
  text: {
    name: string;
    source: string;
    tokens: number;
    windows: number;
    ctx: number;
    stride: number;
    bos: number | null;
    tokensScored: number;
  };
  /** The quantized tensors (canonical names), their weights and their bytes as stored. */
  quantized: { tensors: string[]; elements: number };
  superWeights: { source: "scan" | "keep" | "none"; weights: HeldWeight[] };
  superActivations: ActivationSite[];
  baseline: { tokensScored: number; meanNll: number; perplexity: number; size: LayoutSize };
  configs: ComparedConfig[];
  run: { passes: number; batches: number; maxVariants: number; bytesRead: number; seconds: number };
}

/** A window's ids (BOS first when given) and the next-token targets of its scored positions (−1 elsewhere). */
export function windowTargets(stream: readonly number[], w: Window, bos: number | undefined) {
  const head = bos === undefined ? [] : [bos];
  const ids = [...head, ...stream.slice(w.begin, w.end)];
  // Position p predicts ids[p + 1], the stream token at begin + p + 1 − |head|.
  const targets = ids.map((_, p) =>
    p + 1 < ids.length && w.begin + p + 1 - head.length >= w.scoreFrom ? ids[p + 1] : -1,
  );
  const positions = targets.flatMap((t, p) => (t >= 0 ? [p] : []));
  return { ids, targets, positions };
}

export async function compareQuantization(model: Model, r: CompareRequest): Promise<QuantizeComparison> {
  const t0 = performance.now();
  if (!(Number.isInteger(r.maxVariants) && r.maxVariants >= 2))
    throw new UserError(`--max-variants ${r.maxVariants}: at least 2 (the unquantized model and one configuration)`);
  const tensors = selectTensors(model, r.selection);
  if (!tensors.length) throw new UserError("has no weight to quantize", model.path);
  if (quantizesEmbeddingLookup(model, tensors))
    throw new UserError(
      "--compare cannot quantize the embedding lookup in memory (the engine reads it without " +
        "overrides): leave out --include-embeddings (and --include-head on a tied head), or write it with --out",
    );
  const windows = checkWindows(model, r.stream.length, r.windows);
  const configs = compareConfigs(r.plan);
  const held = r.superWeights.held;
  // The distinct models: configurations whose every override and activation setting agree are one.
  const keys: string[] = [];
  const modelOf = configs.map((c) => {
    const v = variantOf(model, c, tensors, held, r.superActivations, new MeasurePool());
    const key = JSON.stringify([v.overrides?.map((o) => `${o.tensor}=${o.key}`), c.activations]);
    const i = keys.indexOf(key);
    return i >= 0 ? i : keys.push(key) - 1;
  });
  const distinct = keys.map((_, m) => configs[modelOf.indexOf(m)]);
  const V = model.spec.vocab;
  const per = r.maxVariants - 1;
  const batches = Math.ceil(distinct.length / per);
  const sums = distinct.map(() => ({ nll: 0, n: 0, kl: 0, klMax: 0 }));
  const base = { nll: 0, n: 0 };
  const reconstructed: ComparedConfig["superWeights"][] = [];
  let passes = 0,
    bytesRead = 0;
  for (let b = 0; b < batches; b++) {
    const members = distinct.slice(b * per, (b + 1) * per);
    const pool = new MeasurePool();
    const variants: Variant[] = [{}];
    for (const c of members) variants.push(variantOf(model, c, tensors, held, r.superActivations, pool));
    for (const w of windows) {
      const { ids, targets, positions } = windowTargets(r.stream, w, r.windows.bos);
      const out = await forward(model, ids, { variants, head: { targets, logitsAt: positions } });
      passes++;
      bytesRead += out.bytesRead;
      r.onPass?.(passes, batches * windows.length);
      const nll = out.nll!,
        logits = out.logitsAt!;
      if (b === 0) for (const p of positions) ((base.nll += nll[0][p]), base.n++);
      members.forEach((_, i) => {
        const s = sums[b * per + i];
        positions.forEach((p, k) => {
          s.nll += nll[i + 1][p];
          s.n++;
          const kl = klFromLogits(logits[0].subarray(k * V, (k + 1) * V), logits[i + 1].subarray(k * V, (k + 1) * V));
          s.kl += kl;
          s.klMax = Math.max(s.klMax, kl);
        });
      });
    }
    members.forEach((c, i) => reconstructed.push(superWeightsUnder(model, c, variants[i + 1], held)));
  }

  const baseMean = base.nll / base.n;
  const kept = (holdOut: boolean) => (t: string) => (holdOut ? keptIndices(held, t).length : 0);
  const family = r.plan.family;
  return {
    kind: "quantize-comparison",
    version: QUANTIZE_COMPARISON_VERSION,
    model: model.path,
    modelType: model.spec.modelType,
    scheme: family.kind,
    ...(family.kind === "nf4" ? { nf4Range: family.range } : {}),
    clip: formatClip(r.plan.clip),
    text: {
      ...r.text,
      tokens: r.stream.length,
      windows: windows.length,
      ctx: r.windows.ctx,
      stride: r.windows.stride,
      bos: r.windows.bos ?? null,
      tokensScored: base.n,
    },
    quantized: { tensors: tensors.map((t) => t.name), elements: tensors.reduce((s, t) => s + t.elements, 0) },
    superWeights: { source: r.superWeights.source, weights: held },
    superActivations: r.superActivations,
    baseline: {
      tokensScored: base.n,
      meanNll: baseMean,
      perplexity: Math.exp(baseMean),
      size: layoutSize(model, tensors, null),
    },
    configs: configs.map((c, id): ComparedConfig => {
      const s = sums[modelOf[id]];
      const w = c.weights;
      const holdOut = !!w && w.method.includes("hold-out");
      return {
        id,
        model: modelOf[id],
        weights: w && {
          method: w.method,
          scheme: w.scheme.kind,
          bits: w.scheme.kind === "rtn" ? w.scheme.bits : 4,
          ...(w.scheme.kind === "nf4" ? { nf4Range: w.scheme.range } : {}),
          block: w.scheme.block,
          clip: formatClip(w.scheme.clip),
          heldOut: holdOut ? held.length : 0,
        },
        activations: c.activations,
        tokensScored: s.n,
        meanNll: s.nll / s.n,
        perplexity: Math.exp(s.nll / s.n),
        deltaMeanNll: s.nll / s.n - baseMean,
        kl: { mean: s.kl / s.n, max: s.klMax },
        size: layoutSize(model, tensors, w?.scheme ?? null, kept(holdOut)),
        superWeights: reconstructed[modelOf[id]],
      };
    }),
    run: { passes, batches, maxVariants: r.maxVariants, bytesRead, seconds: (performance.now() - t0) / 1000 },
  };
}

/** A configuration as a variant: an override per quantized tensor, and the activation hook. */
function variantOf(
  model: Model,
  c: CompareConfig,
  tensors: readonly SelectedTensor[],
  held: readonly HeldWeight[],
  sites: readonly ActivationSite[],
  pool: MeasurePool,
): Variant {
  const w = c.weights;
  const holdOut = !!w && w.method.includes("hold-out");
  const overrides = w
    ? tensors.map((t) => quantizeOverride(model, t.name, w.scheme, holdOut ? keptIndices(held, t.name) : [], pool))
    : [];
  const a = c.activations;
  const hooks = a ? [quantizeActivations(a.bits, a.keepSuperActivation ? sites : [], a.inputs)] : [];
  return { overrides, hooks };
}

/** The super weights as the variant's overrides leave them (as stored when its weights are not quantized). */
function superWeightsUnder(model: Model, c: CompareConfig, v: Variant, held: readonly HeldWeight[]) {
  return held.map((h) => {
    const o = c.weights ? v.overrides?.find((x) => x.tensor === h.tensor) : undefined;
    const reconstructed = o ? transformedValue(model, o, h.index) : h.value;
    return { layer: h.layer, row: h.row, column: h.column, value: h.value, reconstructed };
  });
}
