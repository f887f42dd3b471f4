// The paper's detection rule (§3.2), iterated, with the measurements that tell a super weight from a
// late outlier.
//
// For one prompt: for every down projection (a dense layer's mlp.down_proj; in a Mixture-of-Experts layer,
// each expert's, over the tokens routed to it) take the largest |input| at (token t, channel c) and the
// largest |output| at (token t', channel r). Where both exceed the threshold, weight[r, c] is a candidate.
// Zero the candidates and run again until nothing new appears.
//
// Work is shared, never redone: after pass k finds candidates in layers ≥ L, ONE sweep from layer L —
// starting from the residual entering L cached during pass k — runs, in lockstep, pass k+1 (every
// find so far zeroed) and one causal check per new candidate (that candidate alone zeroed on top of
// pass k's model). Each sweep reads every weight once, whatever the number of variants.
import type { Model } from "../engine/model.js";
import { forward } from "../engine/forward.js";
import type { HookEvent } from "../engine/hooks.js";
import { editWeights, type Variant, type WeightEdit } from "../engine/variants.js";

export interface SpikeAt {
  /** max |x| */
  max: number;
  /** x there, signed */
  value: number;
  token: number;
  channel: number;
}

/** The spikes of one down projection in one pass. */
export interface DownProjSpikes {
  downProjInput: SpikeAt;
  downProjOutput: SpikeAt;
}

/** One expert's spikes over the tokens routed to it (a sparse layer). */
export interface ExpertSpikes extends DownProjSpikes {
  expert: number | "shared";
  tensor: string;
  /** How many tokens were routed to it. */
  tokens: number;
}

/** A layer's spikes; in a sparse layer the largest over its experts, with each expert's in `experts` (those a
 * token was routed to, then a shared expert) and the largest |output| of the whole block in `blockOutput`. */
export interface LayerSpikes extends DownProjSpikes {
  layer: number;
  experts?: ExpertSpikes[];
  blockOutput?: SpikeAt;
}

export type Expert = number | "shared";

export interface Candidate {
  layer: number;
  /** The expert whose down projection holds it (Mixture-of-Experts models). */
  expert?: Expert;
  /** Output channel (row of down_proj.weight [out, in]). */
  row: number;
  /** Input channel (column). */
  column: number;
  tensor: string;
  /** Index into the stored tensor: [row, column], or [column, row] for GPT-2's Conv1D [in, out]. */
  index: [number, number];
  /** The weight's value. */
  value: number;
  iteration: number;
  /** Token of the output spike, and of the input spike. */
  token: number;
  inputToken: number;
  inputActivation: number;
  outputActivation: number;
  /** The routing weight the output spike's token gave this expert (a shared expert: its sigmoid gate there). */
  routingWeight?: number;
  /** Spike / median |activation| of that down projection's input (output). */
  inputToMedian: number;
  outputToMedian: number;
  /** Residual channel `row` at `token` after every layer, in the model as this candidate's pass saw it
   * (null where not recorded), with the median |residual| of each layer for scale. */
  residual: (number | null)[];
  medianAbsResidual: number[];
  /** The residual entering the candidate's layer at (token, row). */
  residualBefore: number;
  /** Causal check: the same pass with this candidate alone also zeroed. */
  ablation: {
    /** Residual at (token, row) after layers ≥ its layer (null before). */
    residual: (number | null)[];
    meanNll: number | null;
  };
  /** Mean NLL of the prompt in the model as this candidate's pass saw it. */
  baseMeanNll: number | null;
}

export interface DetectOptions {
  threshold: number;
  maxIterations: number;
  /** Largest residual log kept for the evidence traces (floats); beyond it only the first tokens are kept. */
  residualLogBudget?: number;
  onProgress?: (message: string) => void;
  /** After each layer of each sweep (progress bars): the layer, and the sweep's first layer. */
  onLayer?: (layer: number, from: number) => void;
}

export interface Detection {
  ids: number[];
  threshold: number;
  candidates: Candidate[];
  /** Per pass: the layer maxima as that pass saw the model, the coordinates it found, and (Mixture-of-Experts
   * models) how many experts had a token routed to them (only those are read) out of all of them. */
  iterations: { iteration: number; layers: LayerSpikes[]; found: Coordinate[]; experts?: ExpertsTouched }[];
  /** Mean NLL of the prompt: full model, and with every candidate zeroed. */
  meanNll: number | null;
  withCandidatesZeroed: { zeroed: Coordinate[]; meanNll: number | null };
  /** Forward runs (a variant of a sweep counts as one), layer·variant evaluations / layers, weight sweeps. */
  forwardRuns: number;
  layerPasses: number;
  weightPasses: number;
  bytesRead: number;
  seconds: number;
}

/** Routed experts (numbered ones; a shared expert runs on every token) out of every sparse layer's experts. */
export interface ExpertsTouched {
  touched: number;
  total: number;
}

/** [layer, row, column], or [layer, expert, row, column] for an expert's weight. */
export type Coordinate = [number, number, number] | [number, Expert, number, number];

export function coordinate(c: { layer: number; expert?: Expert; row: number; column: number }): Coordinate {
  return c.expert === undefined ? [c.layer, c.row, c.column] : [c.layer, c.expert, c.row, c.column];
}

const key = (c: { layer: number; expert?: Expert; row: number; column: number }) => coordinate(c).join(":");

/**
 * The paper's rule on one down projection's spikes: both above the threshold makes weight[row, column] a
 * candidate (row = the output spike's channel, column = the input spike's). The one place the rule lives.
 */
export function spikeCandidate(s: DownProjSpikes, threshold: number): { row: number; column: number; token: number } | undefined {
  if (!(s.downProjInput.max > threshold && s.downProjOutput.max > threshold)) return undefined;
  return { row: s.downProjOutput.channel, column: s.downProjInput.channel, token: s.downProjOutput.token };
}

/** One down projection as a pass saw it: spikes, medians, and the routing weight of each row. */
interface ProjectionLog extends DownProjSpikes {
  layer: number;
  tensor: string;
  expert?: Expert;
  rows: number;
  inputMedian: number;
  outputMedian: number;
  /** Routing weight by token position (experts). */
  routing?: Map<number, number>;
}

/** What one sweep records for the variant that carries the detection pass. */
interface PassLog {
  /** Every down projection that fired, in order. */
  projections: ProjectionLog[];
  /** Residual after each layer, [T_kept, H] per layer (T_kept ≤ T under the log budget). */
  residual: (Float32Array | undefined)[];
  medianAbsResidual: number[];
  /** Residual entering each layer where a new candidate was found (the next sweep starts there). */
  entering: Map<number, Float32Array>;
  /** A sparse block's largest |output|, by layer. */
  blocks: Map<number, SpikeAt>;
  meanNll: number | null;
}

export async function detect(model: Model, ids: number[], o: DetectOptions): Promise<Detection> {
  const t0 = performance.now();
  const { spec } = model;
  const L = spec.layers, H = spec.hidden, T = ids.length;
  const keptTokens = Math.max(1, Math.min(T, Math.floor((o.residualLogBudget ?? 16 * 1024 * 1024) / (L * H))));
  const stats = { forwardRuns: 0, layerEvals: 0, layerSweeps: 0, bytesRead: 0 };

  const zeroEdit = (c: Candidate): WeightEdit => ({ tensor: c.tensor, row: c.index[0], column: c.index[1], value: 0 });
  const candidates: Candidate[] = [];
  const iterations: Detection["iterations"] = [];
  const known = new Set<string>();
  const rule = { known, threshold: o.threshold, keptTokens };

  // Pass 1: the full model, from the embeddings.
  let zeroed: WeightEdit[] = [];
  let pass = newLog(L);
  let sweep = await runSweep(model, ids, 0, undefined, [{}], pass, rule, [], stats, o.onLayer);
  pass.meanNll = sweep.meanNll[0];
  const fullMeanNll = pass.meanNll;

  for (let iteration = 1; iteration <= o.maxIterations; iteration++) {
    const found = newCandidates(pass, o.threshold, known);
    const layers = layerSpikes(pass, L);
    iterations.push({ iteration, layers, found: found.map((f) => coordinate(f)), ...expertsTouched(model, pass) });
    const names = found.map((f) => `[${coordinate(f).join(", ")}]`).join(" ");
    o.onProgress?.(`pass ${iteration}: ${found.length ? names : "nothing new"}`);
    if (!found.length) break;

    const newOnes: Candidate[] = found.map((f) => {
      const index: [number, number] = model.layout(f.tensor) === "nk" ? [f.row, f.column] : [f.column, f.row];
      const p = f.log;
      const residual = pass.residual.map((r) => (r && f.token < keptTokens ? r[f.token * H + f.row] : null));
      const entering = pass.entering.get(f.layer)!;
      return {
        layer: f.layer, ...(f.expert !== undefined ? { expert: f.expert } : {}), row: f.row, column: f.column,
        tensor: f.tensor, index,
        value: model.weight(f.tensor, index[0], index[1]),
        iteration,
        token: p.downProjOutput.token, inputToken: p.downProjInput.token,
        inputActivation: p.downProjInput.value, outputActivation: p.downProjOutput.value,
        ...(p.routing ? { routingWeight: p.routing.get(p.downProjOutput.token) } : {}),
        inputToMedian: p.downProjInput.max / p.inputMedian,
        outputToMedian: p.downProjOutput.max / p.outputMedian,
        residual, medianAbsResidual: pass.medianAbsResidual.slice(),
        residualBefore: entering[f.token * H + f.row],
        ablation: { residual: new Array(L).fill(null), meanNll: null },
        baseMeanNll: pass.meanNll,
      };
    });
    for (const c of newOnes) known.add(key(c));
    candidates.push(...newOnes);

    // One sweep from the first layer that changes: the next pass, plus a causal check per new candidate
    // (deduplicated: with a single new candidate, its check *is* the next pass).
    const from = Math.min(...newOnes.map((c) => c.layer));
    const nextZeroed = [...zeroed, ...newOnes.map(zeroEdit)];
    const variantEdits: WeightEdit[][] = [nextZeroed];
    const checks = newOnes.map((c) => {
      const edits = [...zeroed, zeroEdit(c)];
      const same = variantEdits.findIndex((v) => sameEdits(v, edits));
      if (same >= 0) return same;
      variantEdits.push(edits);
      return variantEdits.length - 1;
    });
    const variants: Variant[] = variantEdits.map((edits) => ({ overrides: editWeights(model, edits) }));
    const traces = newOnes.map((c, i) => ({ variant: checks[i], layer: c.layer, token: c.token, channel: c.row, out: c.ablation.residual }));
    const next = newLog(L);
    // Layers before `from` are unchanged: carry their spikes and residuals over.
    next.projections = pass.projections.filter((p) => p.layer < from);
    for (const [l, b] of pass.blocks) if (l < from) next.blocks.set(l, b);
    for (let l = 0; l < from; l++) {
      next.residual[l] = pass.residual[l];
      next.medianAbsResidual[l] = pass.medianAbsResidual[l];
    }
    sweep = await runSweep(model, ids, from, pass.entering.get(from)!, variants, next, rule, traces, stats, o.onLayer);
    newOnes.forEach((c, i) => (c.ablation.meanNll = sweep.meanNll[checks[i]]));
    const checksText = `${newOnes.length} causal check${newOnes.length > 1 ? "s" : ""}`;
    o.onProgress?.(`pass ${iteration + 1} and ${checksText} ran in one sweep from layer ${from} (${variants.length} variant${variants.length > 1 ? "s" : ""})`);
    next.meanNll = sweep.meanNll[0];
    zeroed = nextZeroed;
    pass = next;
  }

  return {
    ids, threshold: o.threshold, candidates, iterations,
    meanNll: fullMeanNll,
    withCandidatesZeroed: { zeroed: candidates.map((c) => coordinate(c)), meanNll: pass.meanNll },
    forwardRuns: stats.forwardRuns,
    layerPasses: stats.layerEvals / L,
    weightPasses: stats.layerSweeps / L,
    bytesRead: stats.bytesRead,
    seconds: (performance.now() - t0) / 1000,
  };
}

function newLog(L: number): PassLog {
  return {
    projections: [], residual: new Array(L).fill(undefined), medianAbsResidual: new Array(L).fill(NaN),
    entering: new Map(), blocks: new Map(), meanNll: null,
  };
}

/** How many experts the pass routed a token to, out of all (nothing for a dense model). */
function expertsTouched(model: Model, log: PassLog): { experts?: ExpertsTouched } {
  const ex = model.spec.experts;
  if (!ex) return {};
  let sparse = 0;
  for (let l = 0; l < model.spec.layers; l++) if (ex.sparse(l)) sparse++;
  const touched = log.projections.filter((p) => typeof p.expert === "number").length;
  return { experts: { touched, total: sparse * ex.count } };
}

/** Per layer: a dense layer's spikes, or a sparse layer's largest over its experts with each expert's listed. */
function layerSpikes(log: PassLog, L: number): LayerSpikes[] {
  const out: LayerSpikes[] = [];
  for (let layer = 0; layer < L; layer++) {
    const ps = log.projections.filter((p) => p.layer === layer);
    if (!ps.length) continue;
    if (ps.length === 1 && ps[0].expert === undefined) {
      out.push({ layer, downProjInput: ps[0].downProjInput, downProjOutput: ps[0].downProjOutput });
      continue;
    }
    const top = (side: "downProjInput" | "downProjOutput") => ps.reduce((a, b) => (b[side].max > a[side].max ? b : a))[side];
    const block = log.blocks.get(layer);
    out.push({
      layer, downProjInput: top("downProjInput"), downProjOutput: top("downProjOutput"),
      experts: ps.map((p) => ({ expert: p.expert!, tensor: p.tensor, tokens: p.rows, downProjInput: p.downProjInput, downProjOutput: p.downProjOutput })),
      ...(block ? { blockOutput: block } : {}),
    });
  }
  return out;
}

/** Down projections where the rule fires on a coordinate not yet known. */
function newCandidates(log: PassLog, threshold: number, known: Set<string>) {
  const out: { layer: number; expert?: Expert; row: number; column: number; token: number; tensor: string; log: ProjectionLog }[] = [];
  for (const p of log.projections) {
    const hit = spikeCandidate(p, threshold);
    if (!hit) continue;
    const c = { layer: p.layer, ...(p.expert !== undefined ? { expert: p.expert } : {}), ...hit, tensor: p.tensor, log: p };
    if (!known.has(key(c))) out.push(c);
  }
  return out;
}

function sameEdits(a: readonly WeightEdit[], b: readonly WeightEdit[]): boolean {
  const k = (e: WeightEdit) => `${e.tensor}:${e.row}:${e.column}:${e.value}`;
  const sa = new Set(a.map(k));
  return a.length === b.length && b.every((e) => sa.has(k(e)));
}

interface Trace { variant: number; layer: number; token: number; channel: number; out: (number | null)[] }

/** Run variants from `from` to the end; variant 0 carries the detection pass and fills `log`; traces record (token, channel). */
async function runSweep(
  model: Model, ids: number[], from: number, start: Float32Array | undefined, variants: Variant[], log: PassLog,
  rule: { known: Set<string>; threshold: number; keptTokens: number },
  traces: Trace[], stats: { forwardRuns: number; layerEvals: number; layerSweeps: number; bytesRead: number },
  onLayer?: (layer: number, from: number) => void,
): Promise<{ meanNll: (number | null)[] }> {
  const { spec } = model;
  const H = spec.hidden;
  let entering: Float32Array | undefined;
  const inputs = new Map<string, { spike: SpikeAt; median: number }>();
  const hook = (e: HookEvent) => {
    if (e.point === "layer_output") for (const t of traces) if (t.variant === e.variant && e.layer >= t.layer) t.out[e.layer] = e.data[t.token * H + t.channel];
    if (e.variant !== 0) return;
    const at = (token: number) => (e.positions ? e.positions[token] : token);
    switch (e.point) {
      case "layer_input":
        entering = e.data.slice();
        break;
      case "down_proj_input": {
        const s = largest(e.data, e.width);
        inputs.set(e.tensor!, { spike: { ...s, token: at(s.token) }, median: medianAbs(e.data) });
        break;
      }
      case "down_proj_output": {
        const s = largest(e.data, e.width);
        if (e.tensor === undefined) {
          log.blocks.set(e.layer, s); // a sparse block's whole output: not a projection the rule looks at
          break;
        }
        const input = inputs.get(e.tensor!)!;
        const p: ProjectionLog = {
          layer: e.layer, tensor: e.tensor!, ...(e.expert !== undefined ? { expert: e.expert } : {}), rows: e.tokens,
          downProjInput: input.spike, downProjOutput: { ...s, token: at(s.token) },
          inputMedian: input.median, outputMedian: medianAbs(e.data),
          ...(e.routingWeights ? { routing: new Map(Array.from(e.routingWeights, (w, i) => [at(i), w])) } : {}),
        };
        log.projections.push(p);
        const hit = spikeCandidate(p, rule.threshold);
        if (hit && !rule.known.has(key({ layer: p.layer, expert: p.expert, ...hit }))) log.entering.set(e.layer, entering!);
        break;
      }
      case "layer_output":
        log.residual[e.layer] = e.data.slice(0, rule.keptTokens * H);
        log.medianAbsResidual[e.layer] = medianAbs(e.data);
        break;
    }
  };
  const T = ids.length;
  const targets = ids.map((_, t) => (t + 1 < T ? ids[t + 1] : -1));
  const out = await forward(model, ids, { fromLayer: from, start, variants, hooks: [hook], head: { targets }, onLayer: onLayer && ((l) => onLayer(l, from)) });
  stats.forwardRuns += variants.length;
  stats.layerEvals += variants.length * (spec.layers - from);
  stats.layerSweeps += spec.layers - from;
  stats.bytesRead += out.bytesRead;
  const meanNll = out.nll!.map((nll) => (T > 1 ? nll.subarray(0, T - 1).reduce((a, b) => a + b, 0) / (T - 1) : null));
  return { meanNll };
}

/** The first largest |x| in [token][channel] order. */
export function largest(x: Float32Array, width: number): SpikeAt {
  let best = -1, at = 0;
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]);
    if (a > best) (best = a), (at = i);
  }
  return { max: best, value: x[at], token: Math.floor(at / width), channel: at % width };
}

/**
 * Median of |x| — the lower middle value for an even count, as torch.median takes it — over at most
 * 65,536 evenly spaced samples for big tensors, by quickselect.
 */
export function medianAbs(x: Float32Array): number {
  const step = Math.max(1, Math.floor(x.length / 65536));
  const n = Math.ceil(x.length / step);
  const a = new Float32Array(n);
  for (let i = 0, j = 0; j < n; i += step, j++) a[j] = Math.abs(x[i]);
  return select(a, (n - 1) >> 1);
}

/** Rearrange a so that a[k] is the k-th smallest (Hoare's selection); returns it. */
function select(a: Float32Array, k: number): number {
  let lo = 0, hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1];
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i]; a[i] = a[j]; a[j] = t;
        i++; j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return a[k];
}
