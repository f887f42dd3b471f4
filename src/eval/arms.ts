// What one evaluation compares: the arms. The baseline, the intervention the options ask for, and around it
// the arms that give an effect its meaning — each weight alone, all but one (leave-one-out), a scale sweep,
// and nulls: the same change on random weights of the same tensor and |w| rank neighbourhood, or random sets
// of the size --prune-outliers zeroes. Arms that compute the same model share one variant.
import { UserError } from "../errors.js";
import type { Model } from "../engine/model.js";
import {
  coordinateText,
  flatIndex,
  interventionKey,
  locateWeight,
  scaledBy,
  setTo,
  type ActivationSite,
  type Intervention,
  type LocatedWeight,
  type WeightChange,
  type WeightCoordinate,
} from "./interventions.js";
import { rankNeighbours, rng, sampleDistinct, seedOf } from "./random.js";

/** A weight the scan reported: where its super activation sits (token; channel = row) and its class. */
export interface ScannedWeight extends LocatedWeight {
  token: number;
  class: "super" | "outlier";
}

export interface InterventionPlan {
  zero?: WeightCoordinate[];
  scale?: { weight: WeightCoordinate; factor: number }[];
  /** What the scan found (for the super-weight options, --keep-super and the restore's token). */
  scanned?: ScannedWeight[];
  zeroSuper?: boolean;
  scaleSuper?: number;
  prune?: { fraction: number; keepSuper: boolean };
  restoreSuperActivation?: boolean;
  sweepScale?: number[];
  leaveOneOut?: boolean;
  /** Random draws per null. */
  nulls?: number;
  seed?: number;
}

export type ArmRole = "baseline" | "intervention" | "single" | "leave-one-out" | "joint" | "prune" | "sweep" | "null";

export interface Arm {
  id: number;
  label: string;
  role: ArmRole;
  intervention: Intervention;
  /** Arms with equal keys compute the same model (one variant). */
  key: string;
  factor?: number;
}

/** Where a real effect is compared with its null draws. */
export interface NullGroup {
  /** The arm whose effect is tested, and its null arms. */
  real: number;
  arms: number[];
  what: string;
  /** Single-weight nulls: the weight's |w| rank in its tensor and the ranks the draws came from. */
  neighbourhood?: {
    tensor: string;
    elements: number;
    rank: number;
    window: [number, number];
    drawn: { coordinate: WeightCoordinate; value: number; rank: number }[];
  };
}

export interface ArmPlan {
  arms: Arm[];
  nulls: NullGroup[];
}

/** How many |w|-rank neighbours a single-weight null draws its weights from. */
export const nullNeighbourhood = (draws: number) => Math.max(64, 4 * draws);

type Op = { kind: "zero" } | { kind: "scale"; factor: number };
const change = (w: LocatedWeight, op: Op): WeightChange => (op.kind === "zero" ? setTo(w, 0) : scaledBy(w, op.factor));
const opText = (op: Op) => (op.kind === "zero" ? "zero" : `×${op.factor}`);
const same = (a: WeightCoordinate, b: WeightCoordinate) =>
  a.layer === b.layer && a.expert === b.expert && a.row === b.row && a.column === b.column;

export function planArms(model: Model, plan: InterventionPlan): ArmPlan {
  const scanned = plan.scanned ?? [];
  const supers = scanned.filter((w) => w.class === "super");
  const needSupers = (option: string) => {
    if (!plan.scanned) throw new UserError(`${option} needs the scan's super weights`);
    if (!supers.length)
      throw new UserError(
        `${option}: the scan classified no weight as super on the prompt ` +
          `(candidates: ${scanned.map(coordinateText).join(" ") || "none"})`,
      );
  };

  // The weights the intervention changes, each with its operation (a weight named twice must agree).
  const targets: { weight: LocatedWeight; op: Op }[] = [];
  const add = (weight: LocatedWeight, op: Op, option: string) => {
    const seen = targets.find((t) => same(t.weight, weight));
    if (seen && JSON.stringify(seen.op) !== JSON.stringify(op))
      throw new UserError(`${option}: weight ${coordinateText(weight)} is already set by ${opText(seen.op)}`);
    if (!seen) targets.push({ weight, op });
  };
  for (const c of plan.zero ?? []) add(locateWeight(model, c), { kind: "zero" }, "--zero");
  for (const s of plan.scale ?? []) add(locateWeight(model, s.weight), { kind: "scale", factor: s.factor }, "--scale");
  if (plan.zeroSuper && plan.scaleSuper !== undefined)
    throw new UserError("give --zero-super or --scale-super, not both");
  if (plan.zeroSuper) {
    needSupers("--zero-super");
    for (const w of supers) add(w, { kind: "zero" }, "--zero-super");
  }
  if (plan.scaleSuper !== undefined) {
    needSupers("--scale-super");
    for (const w of supers) add(w, { kind: "scale", factor: plan.scaleSuper }, "--scale-super");
  }

  const prune = plan.prune && checkedPrune(plan.prune.fraction);
  if (plan.prune?.keepSuper) needSupers("--keep-super");
  const spare = plan.prune?.keepSuper ? supers : [];
  let restore: ActivationSite[] | undefined;
  if (plan.restoreSuperActivation) {
    if (!targets.length)
      throw new UserError(
        "--restore-super-activation needs a super weight changed " +
          "(--zero-super, or --zero / --scale of a weight the scan found)",
      );
    restore = targets.map(({ weight }) => {
      const s = scanned.find((w) => same(w, weight));
      if (!s)
        throw new UserError(
          `--restore-super-activation: the scan did not find ${coordinateText(weight)} on the prompt, ` +
            "so its super activation's token is unknown",
        );
      return siteOf(s);
    });
  }

  const arms: Arm[] = [];
  const arm = (label: string, role: ArmRole, intervention: Intervention, factor?: number) => {
    const a: Arm = {
      id: arms.length,
      label,
      role,
      intervention,
      key: interventionKey(intervention),
      ...(factor !== undefined ? { factor } : {}),
    };
    arms.push(a);
    return a.id;
  };
  // One operation for all ("zero [1, 2, 3] [4, 5, 6]"), or each weight's own ("zero [1, 2, 3], ×2 [4, 5, 6]").
  const describe = (ts: typeof targets) =>
    ts.every((t) => JSON.stringify(t.op) === JSON.stringify(ts[0].op))
      ? `${opText(ts[0].op)} ${ts.map((t) => coordinateText(t.weight)).join(" ")}`
      : ts.map((t) => `${opText(t.op)} ${coordinateText(t.weight)}`).join(", ");
  const pruneText =
    prune !== undefined ? `prune ${100 * prune}% largest |w|${spare.length ? " (super weights kept)" : ""}` : "";
  const restoreText = restore ? " + restore super activation" : "";
  const weightsOf = (ts: typeof targets) => ts.map((t) => change(t.weight, t.op));
  const sitesOf = (ts: typeof targets) => (restore ? ts.map((t) => restore![targets.indexOf(t)]) : undefined);

  arm("baseline", "baseline", { weights: [] });
  if (targets.length || prune !== undefined) {
    const parts = [targets.length ? describe(targets) : "", pruneText].filter(Boolean);
    arm(parts.join(" + ") + restoreText, "intervention", {
      weights: weightsOf(targets),
      ...(prune !== undefined ? { prune: { fraction: prune, spare } } : {}),
      ...(restore ? { restore } : {}),
    });
  }

  const nulls: NullGroup[] = [];
  const draws = plan.nulls ?? 0;
  if (!(Number.isInteger(draws) && draws >= 0))
    throw new UserError(`--null ${plan.nulls}: expected a whole number of draws`);
  const seed = plan.seed ?? 0;
  const several = targets.length > 1;
  // Each weight alone (and all but each) when there are several; a null tests a weight on its own.
  if (several && (plan.leaveOneOut || draws > 0))
    for (const t of targets)
      arm(`only ${describe([t])}${restoreText}`, "single", {
        weights: weightsOf([t]),
        ...(restore ? { restore: sitesOf([t]) } : {}),
      });
  if (several && plan.leaveOneOut)
    targets.forEach((t) => {
      const rest = targets.filter((o) => o !== t);
      arm(`all but ${coordinateText(t.weight)}${restoreText}`, "leave-one-out", {
        weights: weightsOf(rest),
        ...(restore ? { restore: sitesOf(rest) } : {}),
      });
    });

  if (plan.sweepScale?.length && !targets.length) needSupers("--sweep-scale");
  const swept = targets.length ? targets.map((t) => t.weight) : supers;
  for (const factor of plan.sweepScale ?? []) {
    if (!Number.isFinite(factor)) throw new UserError(`--sweep-scale: ${factor} is not a finite factor`);
    const ts = swept.map((weight) => ({ weight, op: { kind: "scale", factor } as Op }));
    arm(`scale ×${factor}`, "sweep", { weights: weightsOf(ts) }, factor);
  }

  if (draws > 0) {
    // A real arm of the weight change alone (no prune, no restore), to compare with the draws.
    const plain = (ts: typeof targets, role: ArmRole, label: string) => {
      const iv: Intervention = { weights: weightsOf(ts) };
      return arms.find((a) => a.key === interventionKey(iv))?.id ?? arm(label, role, iv);
    };
    const drawn = targets.map((t, i) => {
      const real = plain([t], "single", `only ${describe([t])}`);
      const exclude = new Set(
        targets.filter((o) => o.weight.tensor === t.weight.tensor).map((o) => flatIndex(model, o.weight)),
      );
      const size = nullNeighbourhood(draws);
      const { rank, neighbours } = rankNeighbours(model, t.weight.tensor, flatIndex(model, t.weight), size, exclude);
      if (neighbours.length < draws)
        throw new UserError(
          `--null ${draws}: ${t.weight.tensor} has only ${neighbours.length} other weights to draw from`,
        );
      const picks = [
        ...sampleDistinct(rng(seedOf(seed, "weight", coordinateText(t.weight))), neighbours.length, draws),
      ].map((j) => neighbours[j]);
      const cols = model.shape(t.weight.tensor)[1],
        kn = model.layout(t.weight.tensor) === "kn";
      const weights = picks.map((p) => {
        const index: [number, number] = [Math.floor(p.index / cols), p.index % cols];
        const [row, column] = kn ? [index[1], index[0]] : index;
        return {
          ...locateWeight(model, {
            layer: t.weight.layer,
            ...(t.weight.expert !== undefined ? { expert: t.weight.expert } : {}),
            row,
            column,
          }),
          rank: p.rank,
        };
      });
      const ranks = neighbours.map((n) => n.rank);
      nulls.push({
        real,
        what:
          `${opText(t.op)} ${coordinateText(t.weight)} vs the same on ${draws} random weights of ` +
          `${t.weight.tensor} near it in |w| rank`,
        arms: weights.map((w, j) =>
          arm(`null ${j + 1}: ${opText(t.op)} ${coordinateText(w)}`, "null", { weights: [change(w, t.op)] }),
        ),
        neighbourhood: {
          tensor: t.weight.tensor,
          elements: model.shape(t.weight.tensor).reduce((a, b) => a * b, 1),
          rank,
          window: [Math.min(...ranks), Math.max(...ranks)],
          drawn: weights.map((w) => ({
            coordinate: {
              layer: w.layer,
              ...(w.expert !== undefined ? { expert: w.expert } : {}),
              row: w.row,
              column: w.column,
            },
            value: w.value,
            rank: w.rank,
          })),
        },
      });
      return weights;
    });
    if (several) {
      const real = plain(targets, "joint", describe(targets));
      nulls.push({
        real,
        what: `${describe(targets)} vs the same on one random |w|-rank neighbour of each, ${draws} times`,
        arms: Array.from({ length: draws }, (_, j) =>
          arm(`null ${j + 1}: joint`, "null", { weights: targets.map((t, i) => change(drawn[i][j], t.op)) }),
        ),
      });
    }
    if (prune !== undefined) {
      const iv: Intervention = { weights: [], prune: { fraction: prune, spare } };
      const real = arms.find((a) => a.key === interventionKey(iv))?.id ?? arm(pruneText, "prune", iv);
      nulls.push({
        real,
        what: `${pruneText} vs zeroing random sets of the same size in every linear weight, ${draws} times`,
        arms: Array.from({ length: draws }, (_, j) =>
          arm(`null ${j + 1}: random ${100 * prune}%`, "null", {
            weights: [],
            prune: { fraction: prune, spare, random: { seed: seedOf(seed, "prune", j) } },
          }),
        ),
      });
    }
  }
  return { arms, nulls };
}

function checkedPrune(fraction: number): number {
  if (!(fraction > 0 && fraction < 1))
    throw new UserError(`--prune-outliers ${fraction}: expected a fraction between 0 and 1 (e.g. 0.001 for 0.1%)`);
  return fraction;
}

function siteOf(w: ScannedWeight): ActivationSite {
  return {
    layer: w.layer,
    ...(w.expert !== undefined ? { expert: w.expert } : {}),
    tensor: w.tensor,
    token: w.token,
    channel: w.row,
  };
}
