// The paper's detection rule (§3.2), iterated, with the measurements that tell a super weight from a
// late outlier.
//
// For one prompt: in every layer take the largest |down_proj input| at (token t, channel c) and the
// largest |down_proj output| at (token t', channel r). Where both exceed the threshold,
// down_proj.weight[r, c] is a candidate. Zero the candidates and run again until nothing new appears.
//
// Work is shared, never redone: after pass k finds candidates in layers ≥ L, ONE sweep from layer L —
// starting from the residual entering L cached during pass k — runs, in lockstep, pass k+1 (every
// find so far zeroed) and one causal check per new candidate (that candidate alone zeroed on top of
// pass k's model). Each sweep reads every weight once, whatever the number of variants.
import type { Model } from "../engine/model.js";
import { forward } from "../engine/forward.js";
import type { HookEvent, Variant, WeightEdit } from "../engine/hooks.js";
import { mean, nextTokenNll } from "../eval/nll.js";

export interface SpikeAt {
  /** max |x| */
  max: number;
  /** x there, signed */
  value: number;
  token: number;
  channel: number;
}

export interface LayerSpikes {
  layer: number;
  downProjInput: SpikeAt;
  downProjOutput: SpikeAt;
}

export interface Candidate {
  layer: number;
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
  /** Spike / median |activation| of that layer's down_proj input (output). */
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
  /** Per pass: the layer maxima as that pass saw the model, and the coordinates it found. */
  iterations: { iteration: number; layers: LayerSpikes[]; found: [number, number, number][] }[];
  /** Mean NLL of the prompt: full model, and with every candidate zeroed. */
  meanNll: number | null;
  withCandidatesZeroed: { zeroed: [number, number, number][]; meanNll: number | null };
  /** Forward runs (a variant of a sweep counts as one), layer·variant evaluations / layers, weight sweeps. */
  forwardRuns: number;
  layerPasses: number;
  weightPasses: number;
  bytesRead: number;
  seconds: number;
}

const key = (l: number, r: number, c: number) => `${l}:${r}:${c}`;

/** What one sweep records for the variant that carries the detection pass. */
interface PassLog {
  layers: LayerSpikes[];
  /** Residual after each layer, [T_kept, H] per layer (T_kept ≤ T under the log budget). */
  residual: (Float32Array | undefined)[];
  medianAbsResidual: number[];
  downMedian: { input: number[]; output: number[] };
  /** Residual entering each layer where a new candidate was found (the next sweep starts there). */
  entering: Map<number, Float32Array>;
  meanNll: number | null;
}

export async function detect(model: Model, ids: number[], o: DetectOptions): Promise<Detection> {
  const t0 = performance.now();
  const { spec, arch } = model;
  const L = spec.layers, H = spec.hidden, T = ids.length;
  const keptTokens = Math.max(1, Math.min(T, Math.floor((o.residualLogBudget ?? 16 * 1024 * 1024) / (L * H))));
  const stats = { forwardRuns: 0, layerEvals: 0, layerSweeps: 0, bytesRead: 0 };

  const zeroEdit = (c: { tensor: string; index: [number, number] }): WeightEdit => ({ tensor: c.tensor, row: c.index[0], column: c.index[1], value: 0 });
  const candidates: Candidate[] = [];
  const iterations: Detection["iterations"] = [];
  const known = new Set<string>();

  // Pass 1: the full model, from the embeddings.
  let zeroed: WeightEdit[] = [];
  let pass = newLog(L);
  let sweep = await runSweep(model, ids, 0, undefined, [{ edits: [] }], { detect: 0, log: pass, known, threshold: o.threshold, keptTokens }, [], stats, o.onLayer);
  pass.meanNll = sweep.meanNll[0];
  const fullMeanNll = pass.meanNll;

  for (let iteration = 1; iteration <= o.maxIterations; iteration++) {
    const found = newCandidates(pass.layers, o.threshold, known);
    iterations.push({ iteration, layers: pass.layers, found: found.map((f) => [f.layer, f.row, f.column]) });
    o.onProgress?.(`pass ${iteration}: ${found.length ? found.map((f) => `[${f.layer}, ${f.row}, ${f.column}]`).join(" ") : "nothing new"}`);
    if (!found.length) break;

    const newOnes: Candidate[] = found.map((f) => {
      const tensor = arch.downProj(f.layer);
      const index: [number, number] = arch.layout === "nk" ? [f.row, f.column] : [f.column, f.row];
      const spikes = pass.layers[f.layer];
      const residual = pass.residual.map((r) => (r && f.token < keptTokens ? r[f.token * H + f.row] : null));
      const entering = pass.entering.get(f.layer)!;
      return {
        layer: f.layer, row: f.row, column: f.column, tensor, index,
        value: model.weight(tensor, index[0], index[1]),
        iteration,
        token: spikes.downProjOutput.token, inputToken: spikes.downProjInput.token,
        inputActivation: spikes.downProjInput.value, outputActivation: spikes.downProjOutput.value,
        inputToMedian: spikes.downProjInput.max / pass.downMedian.input[f.layer],
        outputToMedian: spikes.downProjOutput.max / pass.downMedian.output[f.layer],
        residual, medianAbsResidual: pass.medianAbsResidual.slice(),
        residualBefore: entering[f.token * H + f.row],
        ablation: { residual: new Array(L).fill(null), meanNll: null },
        baseMeanNll: pass.meanNll,
      };
    });
    for (const c of newOnes) known.add(key(c.layer, c.row, c.column));
    candidates.push(...newOnes);

    // One sweep from the first layer that changes: the next pass, plus a causal check per new candidate
    // (deduplicated: with a single new candidate, its check *is* the next pass).
    const from = Math.min(...newOnes.map((c) => c.layer));
    const nextZeroed = [...zeroed, ...newOnes.map(zeroEdit)];
    const variants: Variant[] = [{ edits: nextZeroed }];
    const checks = newOnes.map((c) => {
      const edits = [...zeroed, zeroEdit(c)];
      const same = variants.findIndex((v) => sameEdits(v.edits!, edits));
      if (same >= 0) return same;
      variants.push({ edits });
      return variants.length - 1;
    });
    const traces = newOnes.map((c, i) => ({ variant: checks[i], layer: c.layer, token: c.token, channel: c.row, out: c.ablation.residual }));
    const next = newLog(L);
    // Layers before `from` are unchanged: carry their maxima and residuals over.
    for (let l = 0; l < from; l++) {
      next.layers[l] = pass.layers[l];
      next.residual[l] = pass.residual[l];
      next.medianAbsResidual[l] = pass.medianAbsResidual[l];
      next.downMedian.input[l] = pass.downMedian.input[l];
      next.downMedian.output[l] = pass.downMedian.output[l];
    }
    sweep = await runSweep(model, ids, from, pass.entering.get(from)!, variants, { detect: 0, log: next, known, threshold: o.threshold, keptTokens }, traces, stats, o.onLayer);
    newOnes.forEach((c, i) => (c.ablation.meanNll = sweep.meanNll[checks[i]]));
    o.onProgress?.(`pass ${iteration + 1} and ${newOnes.length} causal check${newOnes.length > 1 ? "s" : ""} ran in one sweep from layer ${from} (${variants.length} variant${variants.length > 1 ? "s" : ""})`);
    next.meanNll = sweep.meanNll[0];
    zeroed = nextZeroed;
    pass = next;
  }

  return {
    ids, threshold: o.threshold, candidates, iterations,
    meanNll: fullMeanNll,
    withCandidatesZeroed: { zeroed: candidates.map((c) => [c.layer, c.row, c.column]), meanNll: pass.meanNll },
    forwardRuns: stats.forwardRuns,
    layerPasses: stats.layerEvals / L,
    weightPasses: stats.layerSweeps / L,
    bytesRead: stats.bytesRead,
    seconds: (performance.now() - t0) / 1000,
  };
}

function newLog(L: number): PassLog {
  return {
    layers: new Array(L), residual: new Array(L).fill(undefined), medianAbsResidual: new Array(L).fill(NaN),
    downMedian: { input: new Array(L).fill(NaN), output: new Array(L).fill(NaN) }, entering: new Map(), meanNll: null,
  };
}

/** Layers where both spikes exceed the threshold and the coordinate is not yet known. */
function newCandidates(layers: LayerSpikes[], threshold: number, known: Set<string>) {
  const out: { layer: number; row: number; column: number; token: number }[] = [];
  for (const s of layers) {
    if (s.downProjInput.max > threshold && s.downProjOutput.max > threshold) {
      const c = { layer: s.layer, row: s.downProjOutput.channel, column: s.downProjInput.channel, token: s.downProjOutput.token };
      if (!known.has(key(c.layer, c.row, c.column))) out.push(c);
    }
  }
  return out;
}

function sameEdits(a: readonly WeightEdit[], b: readonly WeightEdit[]): boolean {
  const k = (e: WeightEdit) => `${e.tensor}:${e.row}:${e.column}:${e.value}`;
  const sa = new Set(a.map(k));
  return a.length === b.length && b.every((e) => sa.has(k(e)));
}

interface Trace { variant: number; layer: number; token: number; channel: number; out: (number | null)[] }

/** Run variants from `from` to the end; the detect variant fills `log`, traces record (token, channel). */
async function runSweep(
  model: Model, ids: number[], from: number, start: Float32Array | undefined, variants: Variant[],
  d: { detect: number; log: PassLog; known: Set<string>; threshold: number; keptTokens: number },
  traces: Trace[], stats: { forwardRuns: number; layerEvals: number; layerSweeps: number; bytesRead: number },
  onLayer?: (layer: number, from: number) => void,
): Promise<{ meanNll: (number | null)[] }> {
  const { spec } = model;
  const H = spec.hidden;
  let entering: Float32Array | undefined;
  let inputSpike: SpikeAt | undefined;
  const hook = (e: HookEvent) => {
    if (e.point === "layer_output") for (const t of traces) if (t.variant === e.variant && e.layer >= t.layer) t.out[e.layer] = e.data[t.token * H + t.channel];
    if (e.variant !== d.detect) return;
    switch (e.point) {
      case "layer_input":
        entering = e.data.slice();
        break;
      case "down_proj_input":
        inputSpike = largest(e.data, e.width);
        d.log.downMedian.input[e.layer] = medianAbs(e.data);
        break;
      case "down_proj_output": {
        const out = largest(e.data, e.width);
        d.log.layers[e.layer] = { layer: e.layer, downProjInput: inputSpike!, downProjOutput: out };
        d.log.downMedian.output[e.layer] = medianAbs(e.data);
        const isNew = inputSpike!.max > d.threshold && out.max > d.threshold && !d.known.has(key(e.layer, out.channel, inputSpike!.channel));
        if (isNew) d.log.entering.set(e.layer, entering!);
        break;
      }
      case "layer_output":
        d.log.residual[e.layer] = e.data.slice(0, d.keptTokens * H);
        d.log.medianAbsResidual[e.layer] = medianAbs(e.data);
        break;
    }
  };
  const out = await forward(model, ids, { fromLayer: from, start, variants, hooks: [hook], onLayer: onLayer && ((l) => onLayer(l, from)) });
  stats.forwardRuns += variants.length;
  stats.layerEvals += variants.length * (spec.layers - from);
  stats.layerSweeps += spec.layers - from;
  stats.bytesRead += out.bytesRead;
  const V = spec.vocab, T = ids.length;
  const meanNll = variants.map((_, v) =>
    T > 1 ? mean(nextTokenNll(out.logits!.subarray(v * T * V, (v + 1) * T * V), ids, V)) : null);
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
