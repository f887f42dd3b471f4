// Interventions on a model, as data, and the variant of one pass each becomes (the checkpoint is never
// changed): single down-projection weights set to new values (zeroed, scaled), the largest-|w| fraction of
// every linear weight zeroed (or, as its null, a random set of the same size), and the super activation put
// back at its layer's down_proj output.
import { UserError } from "../errors.js";
import type { Model } from "../engine/model.js";
import type { Hook, HookEvent } from "../engine/hooks.js";
import { editWeights, zeroLargest, type Variant, type WeightOverride } from "../engine/variants.js";
import { zeroRandom } from "./random.js";

export type Expert = number | "shared";

/** A down_proj weight by [layer, row = output channel, column = input channel] (an expert's: + expert). */
export interface WeightCoordinate {
  layer: number;
  expert?: Expert;
  row: number;
  column: number;
}

/** A down_proj weight found in its stored tensor: `index` is [row, column], or [column, row] where the
 * tensor is stored [in, out] (GPT-2's Conv1D); `value` is the checkpoint's. */
export interface LocatedWeight extends WeightCoordinate {
  tensor: string;
  index: [number, number];
  value: number;
}

/** A weight an intervention sets: `value` before, `newValue` after. */
export interface WeightChange extends LocatedWeight {
  newValue: number;
}

/** Where a super activation sits: a down projection's output at (token, channel). */
export interface ActivationSite {
  layer: number;
  expert?: Expert;
  tensor: string;
  token: number;
  channel: number;
}

/** Zero a fraction of every linear weight: the largest |w| (the paper's "other outliers"), or a random set of
 * the same size per tensor (its null), never the weights in `spare`. */
export interface Prune {
  fraction: number;
  spare: LocatedWeight[];
  random?: { seed: number };
}

export interface Intervention {
  weights: WeightChange[];
  prune?: Prune;
  /** Put the baseline's down_proj output back at these sites (with their super weights changed). */
  restore?: ActivationSite[];
}

export const coordinateText = (c: WeightCoordinate) =>
  `[${[c.layer, ...(c.expert !== undefined ? [c.expert] : []), c.row, c.column].join(", ")}]`;

/** "L:R:C", or "L:E:R:C" for an expert's down projection (E a number or "shared"). */
export function parseCoordinate(text: string, option = "--zero"): WeightCoordinate {
  const parts = text.split(":");
  const int = (p: string) => (/^\d+$/.test(p) && Number.isSafeInteger(Number(p)) ? Number(p) : undefined);
  const nums = parts.map(int);
  const bad = () =>
    new UserError(`${option} ${text}: expected LAYER:ROW:COLUMN (or LAYER:EXPERT:ROW:COLUMN), non-negative integers`);
  if (parts.length === 3 && nums.every((n) => n !== undefined))
    return { layer: nums[0]!, row: nums[1]!, column: nums[2]! };
  if (parts.length === 4 && nums[0] !== undefined && nums[2] !== undefined && nums[3] !== undefined) {
    const expert = parts[1] === "shared" ? "shared" : nums[1];
    if (expert === undefined) throw bad();
    return { layer: nums[0], expert, row: nums[2], column: nums[3] };
  }
  throw bad();
}

/** "L:R:C=F": the weight and its factor. */
export function parseScale(text: string): { weight: WeightCoordinate; factor: number } {
  const eq = text.lastIndexOf("=");
  const factor = Number(text.slice(eq + 1));
  if (eq < 0 || text.slice(eq + 1).trim() === "" || !Number.isFinite(factor))
    throw new UserError(`--scale ${text}: expected LAYER:ROW:COLUMN=FACTOR with a finite FACTOR`);
  return { weight: parseCoordinate(text.slice(0, eq), "--scale"), factor };
}

/** Find a coordinate's down projection and stored index; errors say what the model has. */
export function locateWeight(model: Model, c: WeightCoordinate): LocatedWeight {
  const { spec, arch } = model;
  const where = coordinateText(c);
  if (c.layer >= spec.layers) throw new UserError(`weight ${where}: the model has layers 0..${spec.layers - 1}`);
  const projections = arch.downProjections(spec, c.layer);
  const p = projections.find((d) => d.expert === c.expert);
  if (!p) {
    const experts = projections.filter((d) => d.expert !== undefined).map((d) => d.expert);
    if (c.expert === undefined)
      throw new UserError(
        `weight ${where}: layer ${c.layer} is a Mixture-of-Experts layer; ` +
          `give LAYER:EXPERT:ROW:COLUMN (experts ${experts.join(", ")})`,
      );
    throw new UserError(
      `weight ${where}: layer ${c.layer} has ${experts.length ? `experts ${experts.join(", ")}` : "no experts"}`,
    );
  }
  const [r, k] = model.shape(p.tensor);
  const transposed = model.layout(p.tensor) === "kn";
  const [outputs, inputs] = transposed ? [k, r] : [r, k];
  if (c.row >= outputs || c.column >= inputs)
    throw new UserError(
      `weight ${where}: ${p.tensor} has ${outputs} output channels (rows) and ${inputs} input channels (columns)`,
    );
  const index: [number, number] = transposed ? [c.column, c.row] : [c.row, c.column];
  return { ...c, tensor: p.tensor, index, value: model.weight(p.tensor, index[0], index[1]) };
}

/** w set to `value` (zero: 0). */
export const setTo = (w: LocatedWeight, value: number): WeightChange => ({ ...w, newValue: Math.fround(value) });

/** w·F in float32 (F rounded to float32 first, as a float32 tensor times a Python float is computed). */
export const scaledBy = (w: LocatedWeight, factor: number): WeightChange =>
  setTo(w, Math.fround(w.value * Math.fround(factor)));

/** Every 2-D weight of the decoder layers (not the embeddings or the head): what --prune-outliers acts on. */
export function linearWeights(model: Model): string[] {
  const { spec, arch } = model;
  const prefixes = Array.from({ length: spec.layers }, (_, l) => arch.layerPrefix(l));
  return [...arch.tensors(spec)]
    .filter(([name, shape]) => shape.length === 2 && prefixes.some((p) => name.startsWith(p)))
    .map(([name]) => name);
}

/** Stored flat index of a weight in its tensor. */
export function flatIndex(model: Model, w: LocatedWeight): number {
  return w.index[0] * model.shape(w.tensor)[1] + w.index[1];
}

/** The weight changes that change something (×1 does not). */
const effective = (iv: Intervention) => iv.weights.filter((w) => !Object.is(w.newValue, w.value));

/** What decides a variant: interventions with equal keys compute the same model. */
export function interventionKey(iv: Intervention): string {
  const weights = effective(iv)
    .map((w) => `${w.tensor}[${w.index}]=${w.newValue}`)
    .sort();
  const prune =
    iv.prune &&
    `${iv.prune.random ? `random${iv.prune.random.seed}` : "largest"}:${iv.prune.fraction}:` +
      iv.prune.spare.map((w) => `${w.tensor}[${w.index}]`).sort();
  const restore = iv.restore?.map((s) => `${s.tensor}@${s.token}:${s.channel}`).sort();
  return JSON.stringify([weights, prune ?? null, restore ?? []]);
}

/** Position of the first token of the pass now running (a cached pass starts after the cache). */
export interface PassClock {
  offset: number;
}

/**
 * The variants of one pass: the baseline first (it records the activations a restore needs, at the same
 * point of the same pass), then one per intervention. Build them once and reuse them for every pass, so
 * that each override looks at its tensor once.
 */
export function interventionVariants(
  model: Model,
  interventions: readonly Intervention[],
  clock: PassClock,
): Variant[] {
  const recorded = new Map<string, number>();
  const sites = interventions.flatMap((iv) => iv.restore ?? []);
  const siteKey = (s: ActivationSite) => `${s.tensor}@${s.token}:${s.channel}`;
  const baselineHooks: Hook[] = sites.length
    ? [
        (e) => {
          if (e.point !== "down_proj_output") return;
          for (const s of sites) {
            const row = rowOf(e, s, clock.offset);
            if (row >= 0) recorded.set(siteKey(s), e.data[row * e.width + s.channel]);
          }
        },
      ]
    : [];
  const baseline: Variant = { hooks: baselineHooks };
  return [
    baseline,
    ...interventions.map((iv): Variant => {
      const overrides: WeightOverride[] = [
        ...pruneOverrides(model, iv.prune),
        ...editWeights(
          model,
          effective(iv).map((w) => ({ tensor: w.tensor, row: w.index[0], column: w.index[1], value: w.newValue })),
        ),
      ];
      const restore = iv.restore ?? [];
      const hooks: Hook[] = restore.length
        ? [
            (e) => {
              if (e.point !== "down_proj_output") return;
              for (const s of restore) {
                const row = rowOf(e, s, clock.offset);
                const value = recorded.get(siteKey(s));
                if (row >= 0 && value !== undefined) e.data[row * e.width + s.channel] = value;
              }
            },
          ]
        : [];
      return { overrides, hooks };
    }),
  ];
}

/** The row of `e` that holds the site's token in this pass, or −1. */
function rowOf(e: HookEvent, s: ActivationSite, offset: number): number {
  if (e.layer !== s.layer || e.tensor !== s.tensor) return -1;
  const local = s.token - offset;
  if (e.positions) return e.positions.indexOf(local);
  return local >= 0 && local < e.tokens ? local : -1;
}

function pruneOverrides(model: Model, prune: Prune | undefined): WeightOverride[] {
  if (!prune) return [];
  return linearWeights(model).map((tensor) => {
    const spare = prune.spare.filter((w) => w.tensor === tensor).map((w) => flatIndex(model, w));
    return prune.random
      ? zeroRandom(tensor, prune.fraction, spare, prune.random.seed)
      : zeroLargest(tensor, prune.fraction, spare);
  });
}
