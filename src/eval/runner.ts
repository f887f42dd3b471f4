// Runs an evaluation's arms as variants of the same passes: arms that compute the same model share a
// variant; the variants go in batches of at most `maxVariants` (each batch led by the baseline, which a
// restore reads from), so every weight is read once per batch for all of its variants. The layers before
// the first one a batch's variants change run once, for all of them (unless hooks want every variant there).
import type { Model } from "../engine/model.js";
import { forward, type ForwardOptions, type ForwardResult } from "../engine/forward.js";
import type { Variant } from "../engine/variants.js";
import { interventionKey, interventionVariants, type Intervention, type PassClock } from "./interventions.js";
import type { Arm } from "./arms.js";

export interface Batch {
  variants: Variant[];
  /** The distinct model each variant computes (index into `ArmRunner.models`); members[0] = 0, the baseline. */
  members: number[];
  /** The first layer any of its variants changes: the layers before it are the same for all. */
  from: number;
}

export class ArmRunner {
  /** Where the running pass starts (a cached pass runs after the cache's positions). */
  readonly clock: PassClock = { offset: 0 };
  /** The distinct models: [0] the baseline. */
  readonly models: Intervention[] = [];
  /** Arm → its model. */
  readonly modelOf: number[];
  readonly batches: Batch[] = [];
  /** Forward passes run and the weight bytes they read. */
  passes = 0;
  bytesRead = 0;

  constructor(
    readonly model: Model,
    readonly arms: readonly Arm[],
    readonly maxVariants = 16,
  ) {
    if (!(Number.isInteger(maxVariants) && maxVariants >= 2))
      throw new RangeError(`maxVariants ${maxVariants}: at least 2`);
    const keys: string[] = [];
    this.modelOf = arms.map((a) => {
      let i = keys.indexOf(a.key);
      if (i < 0) ((i = keys.push(a.key) - 1), this.models.push(a.intervention));
      return i;
    });
    if (arms[0]?.role !== "baseline" || arms[0].key !== interventionKey({ weights: [] }))
      throw new Error("arm 0 must be the baseline");
    const rest = this.models.slice(1).map((_, i) => i + 1);
    const per = maxVariants - 1;
    for (let b = 0; b === 0 || b * per < rest.length; b++) {
      const members = [0, ...rest.slice(b * per, (b + 1) * per)];
      const ivs = members.slice(1).map((m) => this.models[m]);
      const from = Math.min(model.spec.layers, ...ivs.map(firstLayer));
      this.batches.push({ members, from, variants: interventionVariants(model, ivs, this.clock) });
    }
  }

  /** Run `pass` on every batch; each distinct model's result, from the first batch that ran it. */
  async run<R>(pass: (batch: Batch) => Promise<R[]>): Promise<R[]> {
    const out: R[] = new Array(this.models.length);
    for (const batch of this.batches) {
      const results = await pass(batch);
      batch.members.forEach((m, v) => {
        if (out[m] === undefined) out[m] = results[v];
      });
    }
    return out;
  }

  /** One forward pass of a batch's variants (after `options.cache`'s positions, when given). */
  async forward(
    batch: Batch,
    ids: readonly number[],
    options: Omit<ForwardOptions, "variants"> = {},
  ): Promise<ForwardResult> {
    this.clock.offset = options.cache?.length ?? 0;
    this.passes++;
    const { variants, from } = batch;
    let start: Partial<ForwardOptions> = {};
    if (variants.length > 1 && from > 0 && !options.cache && !options.variantIds && !options.hooks?.length) {
      const shared = await forward(this.model, ids, {
        variants: [variants[0]],
        toLayer: from,
        head: false,
        allowNonFinite: options.allowNonFinite,
      });
      this.bytesRead += shared.bytesRead;
      start = { fromLayer: from, start: shared.residual };
    }
    const r = await forward(this.model, ids, { ...options, ...start, variants });
    this.bytesRead += r.bytesRead;
    return r;
  }

  /** Per-model results as per-arm results. */
  perArm<R>(perModel: readonly R[]): R[] {
    return this.modelOf.map((m) => perModel[m]);
  }
}

/** The first layer an intervention changes (a prune: every layer). */
function firstLayer(iv: Intervention): number {
  if (iv.prune) return 0;
  return Math.min(
    ...iv.weights.filter((w) => !Object.is(w.newValue, w.value)).map((w) => w.layer),
    ...(iv.restore ?? []).map((s) => s.layer),
  );
}
