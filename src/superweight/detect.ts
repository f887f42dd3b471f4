// The paper's detection rule (§3.2), iterated, with the measurements that tell a super weight from a
// late outlier.
//
// For one prompt: for every down projection (a dense layer's mlp.down_proj; in a Mixture-of-Experts layer,
// each expert's, over the tokens routed to it) take the largest |input| at (token t, channel c) and the
// largest |output| at (token t', channel r). Where both exceed the threshold, weight[r, c] is a candidate.
// Zero the candidates and run again until nothing new appears.
//
// Work is shared, never redone: ONE sweep over the layers carries every pass and every causal check in lockstep.
// When pass k's rule fires in layer l, pass k+1 (every find so far zeroed) and a causal check per new candidate
// (that candidate alone zeroed on top of pass k's model) start right there, from the residual entering l that
// pass k holds: layer l is read again for them, and from l + 1 on every variant shares each read. A later find
// of pass k, in layer l', re-runs l' for the variants that zero it. So the iterated rule and its checks cost
// one pass over the weights plus one read of each layer where candidates appear, whatever the number of variants.
import type { Model } from "../engine/model.js";
import { forward } from "../engine/forward.js";
import type { HookEvent } from "../engine/hooks.js";
import { editWeights, type WeightEdit } from "../engine/variants.js";

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
  /** Forward runs (each model variant the sweep carried to the head counts as one), layer·variant evaluations /
   * layers, and layers' weights read / layers (one sweep, plus each layer read again where candidates appeared). */
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
export function spikeCandidate(
  s: DownProjSpikes,
  threshold: number,
): { row: number; column: number; token: number } | undefined {
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

/** What a pass of the rule saw, layer by layer. */
interface PassLog {
  /** Every down projection that fired, in order. */
  projections: ProjectionLog[];
  /** Residual after each layer, [T_kept, H] per layer (T_kept ≤ T under the log budget). */
  residual: (Float32Array | undefined)[];
  medianAbsResidual: number[];
  /** A sparse block's largest |output|, by layer. */
  blocks: Map<number, SpikeAt>;
  meanNll: number | null;
}

/** A model variant the sweep carries: its edits, the residual entering the layer being run, and that layer's
 * record once it has run. Variants are told apart by their edits: equal edits, one run. */
interface Run {
  key: string;
  edits: WeightEdit[];
  entering: Float32Array;
  record?: LayerRecord;
  meanNll?: number | null;
}

interface LayerRecord {
  projections: ProjectionLog[];
  /** The residual leaving the layer, [T, H]. */
  residual: Float32Array;
  /** A sparse block's largest |output|. */
  block?: SpikeAt;
}

/** Pass k of the rule: its log, what it found, and the run that carries it. */
interface PassState {
  k: number;
  log: PassLog;
  found: Candidate[];
  run: Run;
  /** The last layer whose spikes it has looked at. */
  examined: number;
}

/** The causal check of a candidate of pass `pass`: that candidate alone zeroed on top of pass `pass`'s model. */
interface Check {
  candidate: Candidate;
  pass: number;
  run: Run;
}

type Stats = { forwardRuns: number; layerEvals: number; layerReads: number; bytesRead: number };

export async function detect(model: Model, ids: number[], o: DetectOptions): Promise<Detection> {
  const t0 = performance.now();
  const { spec } = model;
  const L = spec.layers,
    H = spec.hidden,
    T = ids.length;
  const keptTokens = Math.max(1, Math.min(T, Math.floor((o.residualLogBudget ?? 16 * 1024 * 1024) / (L * H))));
  const stats: Stats = { forwardRuns: 0, layerEvals: 0, layerReads: 0, bytesRead: 0 };
  // Stryker disable next-line all: equivalent, the last position's target is never scored (the mean is over T − 1).
  const targets = ids.map((_, t) => (t + 1 < T ? ids[t + 1] : -1));

  const zeroEdit = (c: Candidate): WeightEdit => ({ tensor: c.tensor, row: c.index[0], column: c.index[1], value: 0 });
  const known = new Set<string>();
  // Stryker disable next-line BooleanLiteral: equivalent, a head at the embeddings would only cost time.
  const embedded = await forward(model, ids, { toLayer: 0, head: false });
  stats.bytesRead += embedded.bytesRead;
  const first: Run = { key: "", edits: [], entering: embedded.residual };
  // Stryker disable next-line UnaryOperator: equivalent, any value but 0 works: looking at layer 0 sets it.
  const passes: PassState[] = [{ k: 1, log: newLog(L), found: [], run: first, examined: -1 }];
  const checks: Check[] = [];

  // Each pass's and each check's edits, given what the passes found so far; a role whose edits changed moves to
  // the run with those edits, or to a new run that starts from its old run's residual (the edits differ only in
  // the layer being run, where the change was found).
  let runs = new Map<string, Run>();
  const zeroedBefore = (k: number) => passes.filter((p) => p.k < k).flatMap((p) => p.found.map(zeroEdit));
  const assign = (role: { run: Run }, edits: WeightEdit[]) => {
    // Stryker disable next-line MethodExpression: equivalent, edits come in pass order (a check's candidate last), so equal sets are equal lists.
    const key = edits
      .map((e) => `${e.tensor}:${e.row}:${e.column}`)
      .sort()
      // Stryker disable next-line StringLiteral: equivalent, each part starts with a tensor name and ends in a number.
      .join(" ");
    // Stryker disable next-line ConditionalExpression: equivalent, a live run is in runs under its key.
    if (role.run.key === key) return;
    let run = runs.get(key);
    if (!run) runs.set(key, (run = { key, edits, entering: role.run.entering }));
    role.run = run;
  };
  const reassign = () => {
    for (const p of passes) assign(p, zeroedBefore(p.k));
    for (const c of checks) assign(c, [...zeroedBefore(c.pass), zeroEdit(c.candidate)]);
  };
  const live = () => [...new Set([...passes.map((p) => p.run), ...checks.map((c) => c.run)])];

  for (let layer = 0; layer < L; layer++) {
    // Run the layer for every variant that has not, then look at each pass's spikes in order; a find starts
    // new variants in this layer (and changes later passes' edits), so run it again for them, until none is new.
    for (;;) {
      const pending = live().filter((r) => !r.record);
      if (!pending.length) break;
      await runLayer(model, ids, layer, pending, stats);
      for (const p of passes) {
        if (p.k > o.maxIterations || !p.run.record) break;
        // Stryker disable next-line ConditionalExpression: equivalent, looking again finds nothing: its finds are known.
        if (p.examined === layer) continue;
        p.examined = layer;
        const found = newCandidates(p.run.record.projections, o.threshold, known);
        if (!found.length) continue;
        const newOnes = found.map((f) => candidate(model, f, p, H));
        for (const c of newOnes) known.add(key(c));
        p.found.push(...newOnes);
        const next = passes.some((q) => q.k === p.k + 1);
        // The next pass sees layers before this one as this pass did: their log carries over.
        const { projections, residual, medianAbsResidual, blocks } = p.log;
        const log = {
          ...newLog(L),
          projections: [...projections],
          residual: [...residual],
          medianAbsResidual: [...medianAbsResidual],
          blocks: new Map(blocks),
        };
        // Stryker disable next-line ArithmeticOperator: equivalent, any layer but this one makes the new pass look at it.
        if (!next) passes.push({ k: p.k + 1, log, found: [], run: p.run, examined: layer - 1 });
        checks.push(...newOnes.map((c) => ({ candidate: c, pass: p.k, run: p.run })));
        reassign();
        o.onProgress?.(findsLine(p.k, newOnes.map(coordinate), layer, next));
      }
    }
    for (const p of passes) {
      const { projections, residual, block } = p.run.record!;
      p.log.projections.push(...projections);
      // Stryker disable next-line ConditionalExpression: equivalent, a block's output is read for sparse layers only.
      if (block) p.log.blocks.set(layer, block);
      // Stryker disable next-line MethodExpression: equivalent, memory only: tokens past keptTokens are never read.
      p.log.residual[layer] = residual.slice(0, keptTokens * H);
      p.log.medianAbsResidual[layer] = medianAbs(residual);
    }
    for (const { candidate: c, run } of checks) c.ablation.residual[layer] = run.record!.residual[c.token * H + c.row];
    const now = live();
    // Stryker disable next-line ArrayDeclaration: equivalent, a role's new edits are a set no earlier layer ran.
    runs = new Map(now.map((r) => [r.key, r]));
    for (const r of now) ((r.entering = r.record!.residual), (r.record = undefined));
    o.onLayer?.(layer, 0);
  }

  // The head, for every variant at once: each one's mean NLL of the prompt.
  const finals = live();
  const start = new Float32Array(finals.length * T * H);
  finals.forEach((r, i) => start.set(r.entering, i * T * H));
  // Stryker disable next-line ObjectLiteral: equivalent, the edits are of down projections, which the head does not read.
  const variants = finals.map((r) => ({ overrides: editWeights(model, r.edits) }));
  const head = await forward(model, ids, { fromLayer: L, start, variants, head: { targets } });
  stats.bytesRead += head.bytesRead;
  stats.forwardRuns = finals.length;
  const mean = (nll: Float64Array) => (T > 1 ? nll.subarray(0, T - 1).reduce((a, b) => a + b, 0) / (T - 1) : null);
  finals.forEach((r, i) => (r.meanNll = mean(head.nll![i])));

  const iterations: Detection["iterations"] = [];
  for (const p of passes) {
    p.log.meanNll = p.run.meanNll!;
    for (const c of p.found) {
      c.residual = p.log.residual.map((r) => (r && c.token < keptTokens ? r[c.token * H + c.row] : null));
      // Stryker disable next-line MethodExpression: equivalent, neither the log nor the candidate's copy changes after this.
      c.medianAbsResidual = p.log.medianAbsResidual.slice();
      c.baseMeanNll = p.log.meanNll;
    }
    const found = p.found.map((c) => coordinate(c));
    if (p.k <= o.maxIterations)
      iterations.push({ iteration: p.k, layers: layerSpikes(p.log, L), found, ...expertsTouched(model, p.log) });
  }
  for (const { candidate, run } of checks) candidate.ablation.meanNll = run.meanNll!;
  const last = passes[passes.length - 1];
  if (last.k <= o.maxIterations) o.onProgress?.(`pass ${last.k}: nothing new`);
  const reread = stats.layerReads - L;
  const runsText = `${stats.forwardRuns} forward run${stats.forwardRuns > 1 ? "s" : ""}`;
  const rereadText = `${reread} layer${reread === 1 ? "" : "s"} read again where candidates appeared`;
  o.onProgress?.(`one sweep carried ${runsText}; ${rereadText}`);

  const candidates = passes.flatMap((p) => p.found);
  return {
    ids,
    threshold: o.threshold,
    candidates,
    iterations,
    meanNll: passes[0].log.meanNll,
    withCandidatesZeroed: { zeroed: candidates.map((c) => coordinate(c)), meanNll: last.log.meanNll },
    forwardRuns: stats.forwardRuns,
    layerPasses: stats.layerEvals / L,
    weightPasses: stats.layerReads / L,
    bytesRead: stats.bytesRead,
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * The progress line for what pass k found in `layer`: each find gets a causal check, and pass k + 1 (which runs with
 * them zeroed) starts in this layer, or, when it is already running, runs this layer again.
 */
export function findsLine(k: number, found: Coordinate[], layer: number, nextRunning: boolean): string {
  const names = found.map((c) => `[${c.join(", ")}]`).join(" ");
  const checks = `${found.length} causal check${found.length > 1 ? "s" : ""}`;
  const them = found.length > 1 ? "them" : "it";
  return nextRunning
    ? `pass ${k}: ${names}; pass ${k + 1} runs layer ${layer} again with ${them} zeroed, beside ${checks}`
    : `pass ${k}: ${names}; pass ${k + 1} and ${checks} start in layer ${layer}`;
}

/** A candidate as pass `p` found it in the layer being run; the fields that need the whole pass (its residual
 * trace, its NLL) and its check's are filled in after the sweep. */
function candidate(model: Model, f: Found, p: PassState, H: number): Candidate {
  const index: [number, number] = model.layout(f.tensor) === "nk" ? [f.row, f.column] : [f.column, f.row];
  const s = f.log;
  return {
    layer: f.layer,
    ...(f.expert !== undefined ? { expert: f.expert } : {}),
    row: f.row,
    column: f.column,
    tensor: f.tensor,
    index,
    value: model.weight(f.tensor, index[0], index[1]),
    iteration: p.k,
    token: s.downProjOutput.token,
    inputToken: s.downProjInput.token,
    inputActivation: s.downProjInput.value,
    outputActivation: s.downProjOutput.value,
    ...(s.routing ? { routingWeight: s.routing.get(s.downProjOutput.token) } : {}),
    inputToMedian: s.downProjInput.max / s.inputMedian,
    outputToMedian: s.downProjOutput.max / s.outputMedian,
    // Stryker disable next-line ArrayDeclaration: equivalent, both are set for every candidate after the sweep.
    residual: [],
    // Stryker disable next-line ArrayDeclaration: equivalent, as above.
    medianAbsResidual: [],
    residualBefore: p.run.entering[f.token * H + f.row],
    ablation: { residual: new Array(model.spec.layers).fill(null), meanNll: null },
    baseMeanNll: null,
  };
}

function newLog(L: number): PassLog {
  return {
    // Stryker disable next-line ArrayDeclaration: equivalent, a stray entry has no layer or expert for a filter to keep.
    projections: [],
    // Stryker disable next-line ArrayDeclaration: equivalent, every layer's entry is written before it is read.
    residual: new Array(L).fill(undefined),
    // Stryker disable next-line ArrayDeclaration: equivalent, as above.
    medianAbsResidual: new Array(L).fill(NaN),
    blocks: new Map(),
    meanNll: null,
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
  // Stryker disable next-line EqualityOperator: equivalent, layer L has no projections and is skipped.
  for (let layer = 0; layer < L; layer++) {
    const ps = log.projections.filter((p) => p.layer === layer);
    // Stryker disable next-line ConditionalExpression: equivalent, a pass logs every layer (a sparse one routes a token somewhere).
    if (!ps.length) continue;
    // A dense layer logs one projection, without an expert; a sparse layer's projections are all experts'.
    if (ps[0].expert === undefined) {
      out.push({ layer, downProjInput: ps[0].downProjInput, downProjOutput: ps[0].downProjOutput });
      continue;
    }
    const top = (side: "downProjInput" | "downProjOutput") =>
      ps.reduce((a, b) => (b[side].max > a[side].max ? b : a))[side];
    const block = log.blocks.get(layer);
    out.push({
      layer,
      downProjInput: top("downProjInput"),
      downProjOutput: top("downProjOutput"),
      experts: ps.map((p) => ({
        expert: p.expert!,
        tensor: p.tensor,
        tokens: p.rows,
        downProjInput: p.downProjInput,
        downProjOutput: p.downProjOutput,
      })),
      ...(block ? { blockOutput: block } : {}),
    });
  }
  return out;
}

/** Down projections where the rule fires on a coordinate not yet known. */
interface Found {
  layer: number;
  expert?: Expert;
  row: number;
  column: number;
  token: number;
  tensor: string;
  log: ProjectionLog;
}

function newCandidates(projections: readonly ProjectionLog[], threshold: number, known: Set<string>): Found[] {
  const out: Found[] = [];
  for (const p of projections) {
    const hit = spikeCandidate(p, threshold);
    if (!hit) continue;
    const c = {
      layer: p.layer,
      // Stryker disable next-line ConditionalExpression: equivalent, an expert: undefined key is read as no expert.
      ...(p.expert !== undefined ? { expert: p.expert } : {}),
      ...hit,
      tensor: p.tensor,
      log: p,
    };
    if (!known.has(key(c))) out.push(c);
  }
  return out;
}

/** Layer `layer` for these runs, in one pass over its weights: each run's record (its down projections' spikes,
 * the residual leaving the layer). */
async function runLayer(model: Model, ids: number[], layer: number, runs: Run[], stats: Stats): Promise<void> {
  const T = ids.length,
    H = model.spec.hidden;
  const records: LayerRecord[] = runs.map(() => ({ projections: [], residual: new Float32Array(0) }));
  const inputs = new Map<string, { spike: SpikeAt; median: number }>();
  const hook = (e: HookEvent) => {
    const at = (token: number) => (e.positions ? e.positions[token] : token);
    if (e.point === "down_proj_input") {
      const s = largest(e.data, e.width);
      inputs.set(`${e.variant}:${e.tensor}`, { spike: { ...s, token: at(s.token) }, median: medianAbs(e.data) });
    } else if (e.point === "down_proj_output") {
      const s = largest(e.data, e.width);
      if (e.tensor === undefined) {
        records[e.variant].block = s; // a sparse block's whole output: not a projection the rule looks at
        return;
      }
      const input = inputs.get(`${e.variant}:${e.tensor}`)!;
      records[e.variant].projections.push({
        layer: e.layer,
        tensor: e.tensor!,
        // Stryker disable next-line ConditionalExpression: equivalent, an expert: undefined key is read as no expert.
        ...(e.expert !== undefined ? { expert: e.expert } : {}),
        rows: e.tokens,
        downProjInput: input.spike,
        downProjOutput: { ...s, token: at(s.token) },
        inputMedian: input.median,
        outputMedian: medianAbs(e.data),
        ...(e.routingWeights ? { routing: new Map(Array.from(e.routingWeights, (w, i) => [at(i), w])) } : {}),
      });
    }
  };
  const start = new Float32Array(runs.length * T * H);
  runs.forEach((r, i) => start.set(r.entering, i * T * H));
  const variants = runs.map((r) => ({ overrides: editWeights(model, r.edits) }));
  const out = await forward(model, ids, {
    fromLayer: layer,
    toLayer: layer + 1,
    start,
    variants,
    hooks: [hook],
    head: false,
  });
  runs.forEach((r, i) => (r.record = { ...records[i], residual: out.residual.slice(i * T * H, (i + 1) * T * H) }));
  stats.layerEvals += runs.length;
  stats.layerReads++;
  stats.bytesRead += out.bytesRead;
}

/** The first largest |x| in [token][channel] order. */
export function largest(x: Float32Array, width: number): SpikeAt {
  let best = -1,
    at = 0;
  // Stryker disable next-line EqualityOperator: equivalent, |x[length]| is NaN, never larger.
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]);
    if (a > best) ((best = a), (at = i));
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
  // Stryker disable next-line EqualityOperator: equivalent, a typed array ignores a write past its end.
  for (let i = 0, j = 0; j < n; i += step, j++) a[j] = Math.abs(x[i]);
  return select(a, (n - 1) >> 1);
}

/** Rearrange a so that a[k] is the k-th smallest (Hoare's selection); returns it. */
function select(a: Float32Array, k: number): number {
  let lo = 0,
    hi = a.length - 1;
  // Stryker disable next-line EqualityOperator: equivalent, a one-element range is already in place.
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1];
    let i = lo,
      j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    // Stryker disable next-line ConditionalExpression: equivalent, between j and i a[k] is final; the range past it leaves it.
    else if (k >= i) lo = i;
    else break;
  }
  return a[k];
}
