// `superweight eval` as a function: scan when the interventions name the super weights, plan the arms
// (baseline, intervention, singles, leave-one-out, sweep, nulls), run every measurement asked for with all
// arms as variants of the same passes, and return one typed report: every measurement with the baseline
// beside each arm, the exact interventions applied, and where each real effect falls among its nulls.
import type { Model } from "../engine/model.js";
import type { PerplexityCorpus, Task } from "../data/requests.js";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";
import { scan } from "../superweight/scan.js";
import { UserError } from "../errors.js";
import {
  linearWeights,
  locateWeight,
  type ActivationSite,
  type Intervention,
  type LocatedWeight,
  type WeightCoordinate,
} from "./interventions.js";
import { planArms, type ArmRole, type InterventionPlan, type NullGroup, type ScannedWeight } from "./arms.js";
import { ArmRunner } from "./runner.js";
import { measurePrompts, type PromptInput, type PromptScore, type TraceSite } from "./prompts.js";
import { probabilityShift, stopwordMask, stopwordMass, type Shift } from "./shift.js";
import { checkWindows, corpusStream, windowedPerplexity, type PerplexityScore } from "./perplexity.js";
import { lastWord, multipleChoice, taskRequests, type LastWordScore, type McScore } from "./choice.js";
import { generate, type Generation } from "./generate.js";
import { nullStats, type NullStats } from "./null-stats.js";
import { plainEncoder } from "./tokens.js";

export const EVAL_REPORT_VERSION = 1;

export interface EvalRequest {
  plan: Omit<InterventionPlan, "scanned">;
  /** Scanned (when the plan names super weights), measured, and continued by `generate`. */
  prompts: PromptInput[];
  scan?: { threshold: number; maxIterations: number };
  perplexity?: {
    corpus: PerplexityCorpus;
    /** Positions per window (default: the corpus's window, at most the model's positions). */
    ctx?: number;
    /** Default: a whole window (non-overlapping). */
    stride?: number;
    /** Start every window with the BOS token (which then predicts the window's first token). */
    windowBos?: boolean;
    maxTokens?: number;
  };
  tasks?: Task[];
  choice?: { addBos?: boolean; itemAt?: (task: Task, item: number) => string };
  generate?: { tokens: number };
  /** The prompts went through the chat template (reported). */
  chat?: boolean;
  tokenizer?: TextTokenizer;
  maxVariants?: number;
  /** Tokens listed per direction in the probability shift. */
  shiftTop?: number;
  /** Keep every prompt's logits per arm (short prompts; tests). */
  keepLogits?: boolean;
  onProgress?: (message: string) => void;
}

export interface AppliedIntervention {
  weights: (WeightCoordinate & { tensor: string; index: [number, number]; old: number; new: number })[];
  prune?: {
    fraction: number;
    selection: "largest |w|" | "random";
    seed?: number;
    spared: WeightCoordinate[];
    tensors: number;
    zeroed: number;
  };
  restore?: ActivationSite[];
}

export interface ArmReport {
  id: number;
  label: string;
  role: ArmRole;
  factor?: number;
  /** Arms with the same model index computed the same model (one variant). */
  model: number;
  applied: AppliedIntervention;
}

export interface EvalReport {
  version: typeof EVAL_REPORT_VERSION;
  model: string;
  modelType: string;
  shape: { layers: number; hidden: number; intermediate: number; vocab: number };
  chat: boolean;
  seed: number;
  scan: { threshold: number; found: ScannedWeight[] } | null;
  arms: ArmReport[];
  /** Distinct models run, in how many batches of variants. */
  variants: { models: number; batches: number; maxVariants: number };
  prompts: {
    items: { label: string; ids: number[]; arms: (PromptScore & { deltaMeanNll: number | null })[] }[];
    meanNll: (number | null)[];
  } | null;
  /** Per arm (null for the baseline): the averaged next-token distribution against the baseline's. */
  shift: { prompts: number; baselineStopwordMass: number | null; arms: (Shift | null)[] } | null;
  perplexity: {
    name: string;
    source: string;
    tokens: number;
    windows: number;
    ctx: number;
    stride: number;
    bos: number | null;
    dropPartial: boolean;
    arms: (PerplexityScore & { deltaMeanNll: number })[];
  } | null;
  tasks: {
    name: string;
    kind: Task["kind"];
    metrics: readonly string[];
    source: string;
    items: number;
    arms: (
      | (McScore & { deltaAcc: number; deltaAccNorm: number })
      | (LastWordScore & { deltaAcc: number; deltaPerplexity: number })
    )[];
  }[];
  /** Per prompt, per arm (null for null arms, which are not generated). */
  generation: {
    tokens: number;
    prompts: { label: string; arms: ((Generation & { text: string | null }) | null)[] }[];
  } | null;
  nulls: (NullGroup & { stats: { metric: string; stats: NullStats }[] })[];
  passes: number;
  bytesRead: number;
  seconds: number;
}

const needsScan = (p: EvalRequest["plan"]) =>
  !!(
    p.zeroSuper ||
    p.scaleSuper !== undefined ||
    p.prune?.keepSuper ||
    p.restoreSuperActivation ||
    (p.sweepScale?.length && !p.zero?.length && !p.scale?.length)
  );

const sourceText = (s: PerplexityCorpus["source"]) =>
  "file" in s ? s.file : `${s.repo}@${s.revision ?? "main"}/${s.path}`;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function evaluate(model: Model, r: EvalRequest): Promise<EvalReport> {
  const t0 = performance.now();
  const say = r.onProgress ?? (() => {});
  const { spec } = model;

  // Bad input fails before any pass runs: coordinates, windows, every task item's tokens.
  for (const c of [...(r.plan.zero ?? []), ...(r.plan.scale ?? []).map((s) => s.weight)]) locateWeight(model, c);
  const windows = r.perplexity && perplexityPlan(model, r.perplexity, r.tokenizer);
  const choice = (task: Task) => ({
    addBos: r.choice?.addBos,
    itemAt: r.choice?.itemAt && ((i: number) => r.choice!.itemAt!(task, i)),
    onItem: (d: number, of: number) => say(`${task.name}: item ${d}/${of}`),
  });
  const encodeOf = (task: Task) => {
    if (!r.tokenizer)
      throw new UserError(`has no tokenizer.json, so the task ${task.name} cannot be tokenized`, model.path);
    return plainEncoder(r.tokenizer);
  };
  for (const task of r.tasks ?? []) taskRequests(model, task, encodeOf(task), choice(task));

  let scanned: ScannedWeight[] | undefined;
  if (needsScan(r.plan)) {
    say(`scan of ${r.prompts.length} prompt${r.prompts.length === 1 ? "" : "s"}`);
    const report = await scan(
      model,
      r.prompts.map((p) => ({ label: p.label, ids: p.ids })),
      { threshold: r.scan?.threshold ?? 50, maxIterations: r.scan?.maxIterations ?? 10 },
    );
    scanned = report.superWeights.map((w) => ({
      layer: w.layer,
      ...(w.expert !== undefined ? { expert: w.expert } : {}),
      row: w.row,
      column: w.column,
      tensor: w.tensor,
      index: w.index,
      value: w.value,
      token: w.token,
      class: w.class,
    }));
  }
  const seed = r.plan.seed ?? 0;
  const plan = planArms(model, { ...r.plan, scanned });
  const runner = new ArmRunner(model, plan.arms, r.maxVariants);
  say(
    `${plan.arms.length} arms, ${runner.models.length} distinct models in ${runner.batches.length} ` +
      `batch${runner.batches.length === 1 ? "" : "es"}`,
  );
  const perArm = <T>(perModel: readonly T[]) => runner.perArm(perModel);

  // Prompts: NLL, spikes, the super activations' residual channels, the next-token distribution.
  const sites = traceSites(
    plan.arms.filter((a) => a.role !== "null").flatMap((a) => a.intervention.weights),
    scanned,
  );
  say("prompts");
  const prompts = await measurePrompts(model, r.prompts, sites, runner, { logits: r.keepLogits });
  const promptArms = prompts.scores.map((perModel) => perArm(perModel));
  const promptMean = plan.arms.map((_, a) => {
    const xs = promptArms.map((p) => p[a].meanNll).filter((x): x is number => x !== null);
    return xs.length ? mean(xs) : null;
  });
  const mask = r.tokenizer ? stopwordMask(r.tokenizer, spec.vocab) : undefined;
  const next = perArm(prompts.meanNext);
  const shifts = plan.arms.map((a, i) => (i === 0 ? null : probabilityShift(next[0], next[i], r.shiftTop ?? 10, mask)));

  let perplexity: EvalReport["perplexity"] = null;
  if (windows) {
    const { stream, corpus: c, ctx, stride, bos, dropPartial } = windows;
    say(`perplexity: ${stream.length} tokens of ${c.name}`);
    const run = await windowedPerplexity(
      model,
      stream,
      runner,
      { ctx, stride, bos, dropPartial, maxWindows: c.maxWindows },
      (done, of) => say(`perplexity: window ${done}/${of}`),
    );
    const scores = perArm(run.scores);
    perplexity = {
      name: c.name,
      source: sourceText(c.source),
      tokens: run.tokens,
      windows: run.windows.length,
      ctx,
      stride,
      bos: bos ?? null,
      dropPartial,
      arms: scores.map((s) => ({ ...s, deltaMeanNll: s.meanNll - scores[0].meanNll })),
    };
  }

  const tasks: EvalReport["tasks"] = [];
  for (const task of r.tasks ?? []) {
    const encode = encodeOf(task),
      o = choice(task);
    const base = {
      name: task.name,
      kind: task.kind,
      metrics: task.metrics,
      source: sourceText(task.source),
      items: task.items.length,
    };
    if (task.kind === "multiple_choice") {
      const scores = perArm(await multipleChoice(model, task, encode, runner, o));
      tasks.push({
        ...base,
        arms: scores.map((s) => ({
          ...s,
          deltaAcc: s.acc - scores[0].acc,
          deltaAccNorm: s.accNorm - scores[0].accNorm,
        })),
      });
    } else {
      const scores = perArm(await lastWord(model, task, encode, runner, o));
      tasks.push({
        ...base,
        arms: scores.map((s) => ({
          ...s,
          deltaAcc: s.acc - scores[0].acc,
          deltaPerplexity: s.perplexity - scores[0].perplexity,
        })),
      });
    }
  }

  let generation: EvalReport["generation"] = null;
  if (r.generate) {
    // Nulls are compared by their numbers, not continued.
    const shown = plan.arms.filter((a) => a.role !== "null");
    const genRunner = new ArmRunner(model, shown, r.maxVariants);
    const eos = eosIds(model);
    generation = { tokens: r.generate.tokens, prompts: [] };
    for (const [i, p] of r.prompts.entries()) {
      say(`generate: prompt ${i + 1}/${r.prompts.length}`);
      const gens = genRunner.perArm(
        await generate(model, p.ids, genRunner, { tokens: r.generate.tokens, eos, stopwords: mask }),
      );
      generation.prompts.push({
        label: p.label,
        arms: plan.arms.map((a) => {
          const at = shown.indexOf(a);
          return at < 0 ? null : { ...gens[at], text: r.tokenizer ? r.tokenizer.decode(gens[at].ids) : null };
        }),
      });
    }
    ((runner.passes += genRunner.passes), (runner.bytesRead += genRunner.bytesRead));
  }

  // Each arm's scalar metrics, for the nulls.
  const metrics = (a: number): Record<string, number> => {
    const m: Record<string, number> = {};
    if (promptMean[a] !== null) m["prompts: mean NLL"] = promptMean[a]!;
    if (mask) m["next-token stopword mass"] = stopwordMass(next[a], mask);
    if (perplexity) m[`${perplexity.name}: mean NLL`] = perplexity.arms[a].meanNll;
    for (const t of tasks) {
      const s = t.arms[a];
      m[`${t.name}: acc`] = s.acc;
      if ("accNorm" in s) m[`${t.name}: acc_norm`] = s.accNorm;
      else m[`${t.name}: perplexity`] = s.perplexity;
    }
    return m;
  };
  const baseline = metrics(0);
  const nulls = plan.nulls.map((g) => {
    const real = metrics(g.real),
      draws = g.arms.map(metrics);
    return {
      ...g,
      stats: Object.keys(real).map((metric) => ({
        metric,
        stats: nullStats(
          real[metric] - baseline[metric],
          draws.map((d) => d[metric] - baseline[metric]),
        ),
      })),
    };
  });

  return {
    version: EVAL_REPORT_VERSION,
    model: model.path,
    modelType: spec.modelType,
    shape: { layers: spec.layers, hidden: spec.hidden, intermediate: spec.intermediate, vocab: spec.vocab },
    chat: !!r.chat,
    seed,
    scan: scanned ? { threshold: r.scan?.threshold ?? 50, found: scanned } : null,
    arms: plan.arms.map((a, i) => ({
      id: a.id,
      label: a.label,
      role: a.role,
      ...(a.factor !== undefined ? { factor: a.factor } : {}),
      model: runner.modelOf[i],
      applied: applied(model, a.intervention),
    })),
    variants: { models: runner.models.length, batches: runner.batches.length, maxVariants: runner.maxVariants },
    prompts: {
      items: r.prompts.map((p, i) => ({
        label: p.label,
        ids: p.ids,
        arms: promptArms[i].map((s) => ({
          ...s,
          // A prompt of one token predicts nothing, in every arm alike.
          deltaMeanNll: s.meanNll === null ? null : s.meanNll - promptArms[i][0].meanNll!,
        })),
      })),
      meanNll: promptMean,
    },
    shift: { prompts: r.prompts.length, baselineStopwordMass: mask ? stopwordMass(next[0], mask) : null, arms: shifts },
    perplexity,
    tasks,
    generation,
    nulls,
    passes: runner.passes,
    bytesRead: runner.bytesRead,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** The corpus as a token stream and its windows' protocol, checked (a window longer than the model's positions,
 * a bad stride, no BOS for --window-bos). */
function perplexityPlan(model: Model, p: NonNullable<EvalRequest["perplexity"]>, tokenizer: TextTokenizer | undefined) {
  const { spec } = model,
    corpus = p.corpus;
  const bos = p.windowBos ? spec.bosTokenId : undefined;
  if (p.windowBos && bos === undefined)
    throw new UserError("names no bos_token_id to start each window with (--window-bos)", model.source.configFile);
  const ctx = p.ctx ?? Math.min(corpus.windowTokens, spec.maxPositions);
  const room = bos === undefined ? ctx : ctx - 1;
  const stride = p.stride ?? room;
  // A named corpus keeps GPTQ's protocol (the paper's): whole windows only.
  const dropPartial = "repo" in corpus.source && stride === room;
  const stream = corpusStream(model, corpus, tokenizer, !!p.windowBos, p.maxTokens);
  checkWindows(model, stream.length, { ctx, stride, bos, dropPartial, maxWindows: corpus.maxWindows });
  return { stream, corpus, ctx, stride, bos, dropPartial };
}

/** The residual channels to follow: each super weight's and each changed weight's output channel, at the
 * scan's token when it found the weight. */
function traceSites(weights: LocatedWeight[], scanned: ScannedWeight[] | undefined): TraceSite[] {
  const sites: TraceSite[] = [];
  const same = (a: LocatedWeight, b: LocatedWeight) =>
    a.tensor === b.tensor && a.row === b.row && a.column === b.column;
  for (const w of [...(scanned?.filter((s) => s.class === "super") ?? []), ...weights]) {
    if (sites.some((o) => o.layer === w.layer && o.channel === w.row)) continue;
    const s = scanned?.find((o) => same(o, w));
    sites.push(
      s
        ? { layer: w.layer, channel: w.row, token: s.token }
        : { layer: w.layer, channel: w.row, tensor: w.tensor, column: w.column },
    );
  }
  return sites;
}

function applied(model: Model, iv: Intervention): AppliedIntervention {
  const out: AppliedIntervention = {
    weights: iv.weights.map((w) => ({
      layer: w.layer,
      ...(w.expert !== undefined ? { expert: w.expert } : {}),
      row: w.row,
      column: w.column,
      tensor: w.tensor,
      index: w.index,
      old: w.value,
      new: w.newValue,
    })),
  };
  if (iv.prune) {
    const tensors = linearWeights(model);
    const zeroed = tensors.reduce((n, t) => {
      const size = model.shape(t).reduce((a, b) => a * b, 1) - iv.prune!.spare.filter((w) => w.tensor === t).length;
      return n + Math.round(iv.prune!.fraction * size);
    }, 0);
    out.prune = {
      fraction: iv.prune.fraction,
      selection: iv.prune.random ? "random" : "largest |w|",
      ...(iv.prune.random ? { seed: iv.prune.random.seed } : {}),
      spared: iv.prune.spare.map((w) => ({
        layer: w.layer,
        ...(w.expert !== undefined ? { expert: w.expert } : {}),
        row: w.row,
        column: w.column,
      })),
      tensors: tensors.length,
      zeroed,
    };
  }
  if (iv.restore) out.restore = iv.restore;
  return out;
}

/** eos_token_id of config.json (a number or a list). */
function eosIds(model: Model): number[] {
  const e = model.source.config["eos_token_id"];
  const list = Array.isArray(e) ? e : [e];
  return list.filter((x): x is number => Number.isInteger(x));
}
