// A scan: the iterated rule on one or more prompts, each candidate classified, the prompts' results
// merged (a super weight is input-independent, so we say which candidates every prompt finds), and
// the published coordinates of a known model checked against what was found.
import type { Model } from "../engine/model.js";
import { detect, type Candidate, type Detection, type LayerSpikes } from "./detect.js";
import { classify, describeNllEffect, type Evidence, type WeightClass } from "./classify.js";
import { lookupPublished } from "./directory.js";

export const DEFAULT_PROMPT = "Apple Inc. is a worldwide tech company.";

export interface ScanInput {
  label: string;
  ids: number[];
}

/** A candidate as the scan reports it: where and what it is, its class, and the evidence. */
export interface ScannedWeight extends Pick<Candidate,
  "layer" | "row" | "column" | "tensor" | "index" | "value" | "inputActivation" | "outputActivation" | "token" | "inputToken" | "iteration" | "inputToMedian" | "outputToMedian"> {
  /** The token's text when a tokenizer is known. */
  tokenText?: string;
  class: WeightClass;
  evidence: Evidence & { residual: (number | null)[]; residualZeroed: (number | null)[]; medianAbsResidual: number[] };
  reasons: string[];
  nllNote: string;
  /** Indices of the prompts on which the rule found it, and whether that is every prompt. */
  prompts: number[];
  allPrompts: boolean;
  /** Its class on each prompt that found it. */
  classes: WeightClass[];
}

export interface PublishedCheck {
  modelId: string;
  source: string;
  coordinates: { layer: number; row: number; column: number; found: boolean; class?: WeightClass }[];
}

export interface ScanResult {
  threshold: number;
  maxIterations: number;
  prompts: { label: string; ids: number[]; meanNll: number | null; meanNllCandidatesZeroed: number | null; iterations: number }[];
  superWeights: ScannedWeight[];
  /** Per layer, the spikes of the unedited model on the first prompt. */
  layers: LayerSpikes[];
  detections: Detection[];
  published?: PublishedCheck;
  forwardRuns: number;
  layerPasses: number;
  weightPasses: number;
  bytesRead: number;
  seconds: number;
}

export interface ScanOptions {
  threshold: number;
  maxIterations: number;
  modelId?: string;
  tokenText?: (id: number) => string;
  onProgress?: (message: string) => void;
  onLayer?: (layer: number, from: number) => void;
}

export async function scan(model: Model, inputs: ScanInput[], o: ScanOptions): Promise<ScanResult> {
  const t0 = performance.now();
  const detections: Detection[] = [];
  for (const [i, input] of inputs.entries()) {
    o.onProgress?.(`prompt ${i + 1}/${inputs.length}`);
    detections.push(await detect(model, input.ids, { threshold: o.threshold, maxIterations: o.maxIterations, onProgress: o.onProgress, onLayer: o.onLayer }));
  }

  const merged = new Map<string, ScannedWeight>();
  detections.forEach((d, p) => {
    for (const c of d.candidates) {
      const k = `${c.layer}:${c.row}:${c.column}`;
      const verdict = classify(c, model.spec.layers, d.candidates);
      const seen = merged.get(k);
      if (seen) {
        seen.prompts.push(p);
        seen.classes.push(verdict.class);
        if (verdict.class === "super") seen.class = "super";
        continue;
      }
      merged.set(k, toScanned(c, verdict, p, o.tokenText?.(inputs[p].ids[c.token])));
    }
  });
  for (const w of merged.values()) w.allPrompts = w.prompts.length === inputs.length;

  const superWeights = [...merged.values()].sort((a, b) => a.iteration - b.iteration || a.layer - b.layer || a.row - b.row);
  return {
    threshold: o.threshold,
    maxIterations: o.maxIterations,
    prompts: inputs.map((input, i) => ({
      label: input.label, ids: input.ids,
      meanNll: detections[i].meanNll, meanNllCandidatesZeroed: detections[i].withCandidatesZeroed.meanNll,
      iterations: detections[i].iterations.length,
    })),
    superWeights,
    layers: detections[0].iterations[0].layers,
    detections,
    published: o.modelId ? checkPublished(o.modelId, superWeights) : undefined,
    forwardRuns: sum(detections.map((d) => d.forwardRuns)),
    layerPasses: sum(detections.map((d) => d.layerPasses)),
    weightPasses: sum(detections.map((d) => d.weightPasses)),
    bytesRead: sum(detections.map((d) => d.bytesRead)),
    seconds: (performance.now() - t0) / 1000,
  };
}

function toScanned(c: Candidate, v: ReturnType<typeof classify>, prompt: number, tokenText?: string): ScannedWeight {
  return {
    layer: c.layer, row: c.row, column: c.column, tensor: c.tensor, index: c.index, value: c.value,
    inputActivation: c.inputActivation, outputActivation: c.outputActivation,
    token: c.token, inputToken: c.inputToken, ...(tokenText !== undefined ? { tokenText } : {}),
    iteration: c.iteration, class: v.class,
    inputToMedian: c.inputToMedian, outputToMedian: c.outputToMedian,
    evidence: { ...v.evidence, residual: c.residual, residualZeroed: c.ablation.residual, medianAbsResidual: c.medianAbsResidual },
    reasons: v.reasons,
    nllNote: describeNllEffect(v.evidence),
    prompts: [prompt], allPrompts: false, classes: [v.class],
  };
}

function checkPublished(modelId: string, found: ScannedWeight[]): PublishedCheck | undefined {
  const entry = lookupPublished(modelId);
  if (!entry) return undefined;
  return {
    modelId: entry.modelId,
    source: entry.source,
    coordinates: entry.coordinates.map((p) => {
      const hit = found.find((w) => w.layer === p.layer && w.row === p.row && w.column === p.column);
      return { layer: p.layer, row: p.row, column: p.column, found: !!hit, ...(hit ? { class: hit.class } : {}) };
    }),
  };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
