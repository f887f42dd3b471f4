// A scan: the iterated rule on one or more prompts, each candidate classified, the prompts' results
// merged (a super weight is input-independent, so we say which candidates every prompt finds), and
// the published coordinates of a known model checked against what was found. The result is a typed,
// versioned report; src/report/ renders it.
import type { Model } from "../engine/model.js";
import { detect, type Candidate, type Coordinate, type Detection, type LayerSpikes } from "./detect.js";
import { classify, describeNllEffect, type Evidence, type WeightClass } from "./classify.js";
import { lookupPublished } from "./directory.js";

export const DEFAULT_PROMPT = "Apple Inc. is a worldwide tech company.";
export const SCAN_REPORT_VERSION = 1;

export interface ScanInput {
  label: string;
  ids: number[];
}

export type ScanEvidence = Evidence & {
  residual: (number | null)[];
  residualZeroed: (number | null)[];
  medianAbsResidual: number[];
};

/** What one prompt said about a candidate. */
export interface PromptVerdict {
  prompt: number;
  class: WeightClass;
  evidence: ScanEvidence;
  reasons: string[];
  nllNote: string;
  iteration: number;
  token: number;
  inputToken: number;
  inputActivation: number;
  outputActivation: number;
}

/** A candidate as the scan reports it: where and what it is, its class, and the evidence. The top-level
 * evidence is that of the first prompt on which it is `super` (else the first prompt that found it). */
export interface ScannedWeight extends Pick<
  Candidate,
  | "layer"
  | "expert"
  | "row"
  | "column"
  | "tensor"
  | "index"
  | "value"
  | "inputActivation"
  | "outputActivation"
  | "token"
  | "inputToken"
  | "iteration"
  | "inputToMedian"
  | "outputToMedian"
  | "routingWeight"
> {
  /** The token's text when a tokenizer is known. */
  tokenText?: string;
  class: WeightClass;
  evidence: ScanEvidence;
  reasons: string[];
  nllNote: string;
  /** Indices of the prompts on which the rule found it, and whether that is every prompt. */
  prompts: number[];
  allPrompts: boolean;
  /** Its class on each prompt that found it, and that prompt's evidence. */
  classes: WeightClass[];
  perPrompt: PromptVerdict[];
}

export interface PublishedCheck {
  modelId: string;
  source: string;
  coordinates: { layer: number; row: number; column: number; found: boolean; class?: WeightClass; fits: boolean }[];
}

export interface ScanReport {
  version: typeof SCAN_REPORT_VERSION;
  /** The checkpoint's path, how the user named it, and its Hugging Face id when known. */
  model: string;
  label: string;
  modelId: string | null;
  modelType: string;
  /** Sizes; a Mixture-of-Experts model adds its experts per sparse layer, their width, k and the sparse layers. */
  shape: {
    layers: number;
    hidden: number;
    intermediate: number;
    experts?: number;
    expertIntermediate?: number;
    topK?: number;
    sparseLayers?: number[];
  };
  /** How [row, column] map to the stored tensor. */
  coordinates: string;
  storedTransposed: boolean;
  prompts: {
    label: string;
    ids: number[];
    meanNll: number | null;
    meanNllCandidatesZeroed: number | null;
    iterations: number;
  }[];
  threshold: number;
  maxIterations: number;
  forwardPasses: number;
  layerPasses: number;
  weightPasses: number;
  bytesRead: number;
  seconds: number;
  superWeights: ScannedWeight[];
  /** Per layer, the spikes of the unchanged model on the first prompt. */
  layers: LayerSpikes[];
  /** Per prompt, per pass: the layer maxima (per expert in a sparse layer), what the pass found, and how many
   * experts it routed a token to (the only ones whose weights it read). */
  iterations: Detection["iterations"][];
  published: PublishedCheck | null;
}

export interface ScanOptions {
  threshold: number;
  maxIterations: number;
  label?: string;
  modelId?: string;
  tokenText?: (id: number) => string;
  onProgress?: (message: string) => void;
  onLayer?: (layer: number, from: number) => void;
}

export async function scan(model: Model, inputs: ScanInput[], o: ScanOptions): Promise<ScanReport> {
  const t0 = performance.now();
  const detections: Detection[] = [];
  for (const [i, input] of inputs.entries()) {
    o.onProgress?.(`prompt ${i + 1}/${inputs.length}`);
    detections.push(
      await detect(model, input.ids, {
        threshold: o.threshold,
        maxIterations: o.maxIterations,
        onProgress: o.onProgress,
        onLayer: o.onLayer,
      }),
    );
  }

  const finds = detections.map((d, p) =>
    d.candidates.map((c) => ({
      candidate: c,
      said: promptVerdict(c, classify(c, model.spec.layers, d.candidates), p),
      tokenText: o.tokenText?.(inputs[p].ids[c.token]),
    })),
  );
  const superWeights = mergePrompts(finds);
  const transposed = model.layout(model.arch.downProjections(model.spec, 0)[0].tensor) === "kn";
  const sum = (f: (d: Detection) => number) => detections.reduce((s, d) => s + f(d), 0);
  return {
    version: SCAN_REPORT_VERSION,
    model: model.path,
    label: o.label ?? model.path,
    modelId: o.modelId ?? null,
    modelType: model.spec.modelType,
    shape: shapeOf(model),
    coordinates: transposed
      ? "row = output channel, column = input channel; Conv1D stored [in, out], so the weight is tensor[column, row] (see index)"
      : "row = output channel, column = input channel; weight[row, column]",
    storedTransposed: transposed,
    prompts: inputs.map((input, i) => ({
      label: input.label,
      ids: input.ids,
      meanNll: detections[i].meanNll,
      meanNllCandidatesZeroed: detections[i].withCandidatesZeroed.meanNll,
      iterations: detections[i].iterations.length,
    })),
    threshold: o.threshold,
    maxIterations: o.maxIterations,
    forwardPasses: sum((d) => d.forwardRuns),
    layerPasses: sum((d) => d.layerPasses),
    weightPasses: sum((d) => d.weightPasses),
    bytesRead: sum((d) => d.bytesRead),
    seconds: (performance.now() - t0) / 1000,
    superWeights,
    layers: detections[0].iterations[0].layers,
    iterations: detections.map((d) => d.iterations),
    published: o.modelId ? checkPublished(model.spec, o.modelId, superWeights) : null,
  };
}

function shapeOf(model: Model): ScanReport["shape"] {
  const { layers, hidden, intermediate, experts: ex } = model.spec;
  if (!ex) return { layers, hidden, intermediate };
  const sparseLayers = [...Array(layers).keys()].filter((l) => ex.sparse(l));
  return {
    layers,
    hidden,
    intermediate,
    experts: ex.count,
    expertIntermediate: ex.intermediate,
    topK: ex.topK,
    sparseLayers,
  };
}

/** What one prompt found: a candidate, what that prompt said of it, and its token's text when known. */
export interface PromptFind {
  candidate: Candidate;
  said: PromptVerdict;
  tokenText?: string;
}

/**
 * The prompts' finds merged by place: one weight per place, with every prompt that found it, its class and
 * evidence on each; its top-level class and evidence are those of the first prompt on which it is super (else of
 * the first that found it). `allPrompts` when every prompt found it. In the order the passes found them: by
 * iteration, then layer, then row.
 */
export function mergePrompts(perPrompt: PromptFind[][]): ScannedWeight[] {
  const merged = new Map<string, ScannedWeight>();
  for (const finds of perPrompt)
    for (const { candidate: c, said, tokenText } of finds) {
      const k = [c.layer, c.expert ?? "", c.row, c.column].join(":");
      const seen = merged.get(k);
      if (!seen) {
        merged.set(k, toScanned(c, said, tokenText));
        continue;
      }
      seen.prompts.push(said.prompt);
      seen.classes.push(said.class);
      seen.perPrompt.push(said);
      if (said.class === "super" && seen.class !== "super") {
        const { class: cls, evidence, reasons, nllNote, iteration, token, inputToken } = said;
        const { inputActivation, outputActivation } = said;
        Object.assign(seen, { class: cls, evidence, reasons, nllNote, iteration, token, inputToken });
        Object.assign(seen, { inputActivation, outputActivation });
        if (tokenText !== undefined) seen.tokenText = tokenText;
      }
    }
  for (const w of merged.values()) w.allPrompts = w.prompts.length === perPrompt.length;
  return [...merged.values()].sort((a, b) => a.iteration - b.iteration || a.layer - b.layer || a.row - b.row);
}

function promptVerdict(c: Candidate, v: ReturnType<typeof classify>, prompt: number): PromptVerdict {
  return {
    prompt,
    class: v.class,
    evidence: {
      ...v.evidence,
      residual: c.residual,
      residualZeroed: c.ablation.residual,
      medianAbsResidual: c.medianAbsResidual,
    },
    reasons: v.reasons,
    nllNote: describeNllEffect(v.evidence),
    iteration: c.iteration,
    token: c.token,
    inputToken: c.inputToken,
    inputActivation: c.inputActivation,
    outputActivation: c.outputActivation,
  };
}

function toScanned(c: Candidate, said: PromptVerdict, tokenText?: string): ScannedWeight {
  return {
    layer: c.layer,
    ...(c.expert !== undefined ? { expert: c.expert } : {}),
    row: c.row,
    column: c.column,
    tensor: c.tensor,
    index: c.index,
    value: c.value,
    inputActivation: c.inputActivation,
    outputActivation: c.outputActivation,
    ...(c.routingWeight !== undefined ? { routingWeight: c.routingWeight } : {}),
    token: c.token,
    inputToken: c.inputToken,
    ...(tokenText !== undefined ? { tokenText } : {}),
    iteration: c.iteration,
    class: said.class,
    inputToMedian: c.inputToMedian,
    outputToMedian: c.outputToMedian,
    evidence: said.evidence,
    reasons: said.reasons,
    nllNote: said.nllNote,
    prompts: [said.prompt],
    // Stryker disable next-line BooleanLiteral: equivalent, set for every weight once all prompts are merged.
    allPrompts: false,
    classes: [said.class],
    perPrompt: [said],
  };
}

/** Each published coordinate: found by this scan, and whether it can exist in this model's shapes at all. */
export function checkPublished(
  shape: { layers: number; hidden: number; intermediate: number },
  modelId: string,
  found: Pick<ScannedWeight, "layer" | "row" | "column" | "class">[],
): PublishedCheck | null {
  const entry = lookupPublished(modelId);
  if (!entry) return null;
  const { layers, hidden, intermediate } = shape;
  return {
    modelId: entry.modelId,
    source: entry.source,
    coordinates: entry.coordinates.map((p) => {
      const hit = found.find((w) => w.layer === p.layer && w.row === p.row && w.column === p.column);
      const fits = p.layer < layers && p.row < hidden && p.column < intermediate;
      return { layer: p.layer, row: p.row, column: p.column, found: !!hit, ...(hit ? { class: hit.class } : {}), fits };
    }),
  };
}

export type { Coordinate };
