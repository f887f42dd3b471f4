// What a `superweight report` shows, as one typed, versioned object: the scan (super weights, the evidence per
// candidate, the published-directory check), an eval of the super weights zeroed (and scaled, for a sweep), and
// the data of each figure drawn from them. The HTML page (html.ts) and `report --json` are built from it.
//
// The scan runs once; the eval then zeroes exactly the weights the scan classified super (as --zero, so it does
// not scan again), which gives the residual traces with and without them, the next-token shift and the sweep.
import { readFileSync } from "node:fs";
import type { Model } from "../engine/model.js";
import { scan, type ScanInput, type ScanReport, type ScannedWeight } from "../superweight/scan.js";
import { evaluate, type EvalReport, type EvalRequest } from "../eval/eval.js";
import { stopwordMask } from "../eval/shift.js";
import type { WeightCoordinate } from "../eval/interventions.js";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";
import type { QuantComparison } from "./figures-quantize.js";

export const REPORT_VERSION = 1;

/** Figure 3: the largest |down_proj input| and |output| of each layer (full model, first prompt). */
export interface SpikePoint {
  layer: number;
  input: number;
  inputToken: number;
  inputChannel: number;
  output: number;
  outputToken: number;
  outputChannel: number;
}

/** Figures 2 and 4: one residual channel at one token after every layer, with and without the super weights. */
export interface ActivationTrace {
  /** The super weights whose output channel this is, at this token (usually one). */
  weights: (WeightCoordinate & { tensor: string })[];
  /** The first of their layers. */
  layer: number;
  channel: number;
  token: number;
  /** Signed residual after each layer; null where not finite. */
  full: (number | null)[];
  zeroed: (number | null)[];
  /** For a weight found in a later scan pass: the scan's trace in the model that pass ran (earlier finds zeroed). */
  atDetection: { pass: number; byLayer: (number | null)[] } | null;
}

/** Figure 5: one token whose average next-token probability rose or fell most with the super weights zeroed. */
export interface ShiftToken {
  id: number;
  /** Its decoded text (null without a tokenizer), and a label unique within the figure. */
  text: string | null;
  label: string;
  direction: "rise" | "fall";
  before: number;
  after: number;
  /** An English stopword (null without a tokenizer). */
  stopword: boolean | null;
}

export interface ShiftFigure {
  prompts: number;
  /** KL(before ‖ after), nats. */
  kl: number;
  tokens: ShiftToken[];
  stopwordMass: { before: number; after: number } | null;
}

/** Figure 6: one scale factor of the super weights. */
export interface SweepPoint {
  factor: number;
  /** The eval arm it is. */
  arm: number;
  /** Of --text when given, else the prompts' (the mean of each prompt's mean NLL; perplexity = its exp). */
  meanNll: number;
  perplexity: number;
}

export interface SweepFigure {
  /** What was scored: the --text corpus's name, or "prompts". */
  scored: string;
  tokens: number;
  points: SweepPoint[];
}

export interface ReportData {
  version: typeof REPORT_VERSION;
  kind: "superweight-report";
  tool: { name: "superweight"; version: string };
  /** When it was made (ISO 8601). */
  created: string;
  model: { label: string; path: string; modelId: string | null; modelType: string };
  scan: ScanReport;
  eval: EvalReport;
  /** The eval arm with the super weights zeroed (null when the scan classified none super). */
  zeroedArm: number | null;
  figures: {
    spikes: { threshold: number; layers: SpikePoint[] };
    superActivation: ActivationTrace[];
    shift: ShiftFigure | null;
    sweep: SweepFigure | null;
    quantization: QuantComparison | null;
  };
  /** What is missing and why, for the reader. */
  notes: string[];
}

export interface ReportRequest {
  label: string;
  modelId?: string;
  prompts: ScanInput[];
  threshold: number;
  maxIterations: number;
  tokenizer?: TextTokenizer;
  /** Perplexity of a text (--text) beside the prompts. */
  perplexity?: EvalRequest["perplexity"];
  sweepScale?: number[];
  quantization?: QuantComparison;
  /** Tokens per direction in Figure 5. */
  top?: number;
  maxVariants?: number;
  onProgress?: (message: string) => void;
  onLayer?: (layer: number, from: number) => void;
}

const toolVersion = (): string =>
  JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")).version;

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);
const coordinate = (w: ScannedWeight): WeightCoordinate & { tensor: string } => ({
  layer: w.layer,
  ...(w.expert !== undefined ? { expert: w.expert } : {}),
  row: w.row,
  column: w.column,
  tensor: w.tensor,
});

export async function buildReport(model: Model, r: ReportRequest): Promise<ReportData> {
  const notes: string[] = [];
  const scanned = await scan(model, r.prompts, {
    threshold: r.threshold,
    maxIterations: r.maxIterations,
    label: r.label,
    modelId: r.modelId,
    tokenText: r.tokenizer ? (id) => r.tokenizer!.tokenText(id) : undefined,
    onProgress: r.onProgress && ((m) => r.onProgress!(`scan: ${m}`)),
    onLayer: r.onLayer,
  });
  const supers = scanned.superWeights.filter((w) => w.class === "super");
  if (!supers.length) {
    const found = scanned.superWeights.length;
    notes.push(
      `the scan classified no weight as super (${found} candidate${found === 1 ? "" : "s"}), so nothing ` +
        "was zeroed: no super activation trace, next-token shift or scale sweep",
    );
  }
  const sweep = supers.length ? r.sweepScale : undefined;
  if (r.sweepScale?.length && !supers.length)
    notes.push("--sweep-scale was skipped: there is no super weight to scale");
  const evaluated = await evaluate(model, {
    plan: { zero: supers.map(coordinate), sweepScale: sweep },
    prompts: r.prompts,
    perplexity: r.perplexity,
    tokenizer: r.tokenizer,
    shiftTop: r.top ?? 8,
    maxVariants: r.maxVariants,
    onProgress: r.onProgress && ((m) => r.onProgress!(`eval: ${m}`)),
  });
  const zeroedArm = supers.length ? evaluated.arms.findIndex((a) => a.role === "intervention") : null;
  if (!r.tokenizer) notes.push("the model has no tokenizer: tokens are shown by id and stopwords cannot be told apart");
  return {
    version: REPORT_VERSION,
    kind: "superweight-report",
    tool: { name: "superweight", version: toolVersion() },
    created: new Date().toISOString(),
    model: { label: r.label, path: model.path, modelId: scanned.modelId, modelType: scanned.modelType },
    scan: scanned,
    eval: evaluated,
    zeroedArm,
    figures: {
      spikes: { threshold: scanned.threshold, layers: spikePoints(scanned) },
      superActivation: zeroedArm === null ? [] : traces(evaluated, zeroedArm, supers),
      shift: zeroedArm === null ? null : shiftFigure(evaluated, zeroedArm, model.spec.vocab, r.tokenizer),
      sweep: sweep?.length ? sweepFigure(evaluated, notes) : null,
      quantization: r.quantization ?? null,
    },
    notes,
  };
}

function spikePoints(s: ScanReport): SpikePoint[] {
  return s.layers.map((l) => ({
    layer: l.layer,
    input: l.downProjInput.max,
    inputToken: l.downProjInput.token,
    inputChannel: l.downProjInput.channel,
    output: l.downProjOutput.max,
    outputToken: l.downProjOutput.token,
    outputChannel: l.downProjOutput.channel,
  }));
}

/** The eval's residual traces on the first prompt, baseline against the zeroed arm: one per (channel, token), so
 * that super weights feeding the same activation share it. */
function traces(e: EvalReport, zeroed: number, supers: ScannedWeight[]): ActivationTrace[] {
  const prompt = e.prompts!.items[0];
  const base = prompt.arms[0].traces,
    without = prompt.arms[zeroed].traces;
  const out: ActivationTrace[] = [];
  base.forEach((t, i) => {
    if (out.some((o) => o.channel === t.channel && o.token === t.token)) return;
    const weights = supers.filter(
      (w) =>
        w.row === t.channel && base.some((b) => b.layer === w.layer && b.channel === t.channel && b.token === t.token),
    );
    // The scan's evidence is at its own token on the prompt that classified it: shown only where that matches.
    const later = weights.find(
      (w) =>
        w.iteration > 1 &&
        w.token === t.token &&
        (w.perPrompt.find((p) => p.class === "super") ?? w.perPrompt[0]).prompt === 0,
    );
    out.push({
      weights: weights.map(coordinate),
      layer: t.layer,
      channel: t.channel,
      token: t.token,
      full: t.byLayer.map(finite),
      zeroed: without[i].byLayer.map(finite),
      atDetection: later
        ? { pass: later.iteration, byLayer: later.evidence.residual.map((v) => (v === null ? null : finite(v))) }
        : null,
    });
  });
  return out;
}

/** Shown text of a token: whitespace made visible. */
const shownText = (text: string) =>
  text.replace(/ /g, "␣").replace(/\n/g, "⏎").replace(/\t/g, "⇥").replace(/\r/g, "␍") || "∅";

function shiftFigure(e: EvalReport, zeroed: number, vocab: number, tokenizer?: TextTokenizer): ShiftFigure | null {
  const shift = e.shift?.arms[zeroed];
  if (!shift) return null;
  const mask = tokenizer && stopwordMask(tokenizer, vocab);
  const seen = new Set<string>();
  const tokens = [
    ...shift.rises.map((t) => ({ ...t, direction: "rise" as const })),
    ...shift.falls.map((t) => ({ ...t, direction: "fall" as const })),
  ].map(({ id, before, after, direction }) => {
    const text = tokenizer ? tokenizer.decode([id]) : null;
    let label = text === null ? `#${id}` : shownText(text);
    if (seen.has(label)) label = `${label} #${id}`;
    seen.add(label);
    return { id, text, label, direction, before, after, stopword: mask ? mask[id] === 1 : null };
  });
  return { prompts: e.shift!.prompts, kl: shift.kl, tokens, stopwordMass: shift.stopwordMass };
}

function sweepFigure(e: EvalReport, notes: string[]): SweepFigure | null {
  const arms = e.arms.filter((a) => a.role === "sweep");
  const p = e.perplexity;
  const meanNll = (arm: number) => (p ? p.arms[arm].meanNll : e.prompts!.meanNll[arm]);
  if (arms.some((a) => meanNll(a.id) === null)) {
    notes.push("--sweep-scale: no prompt has a next token to score (give --text, or longer prompts)");
    return null;
  }
  return {
    scored: p ? p.name : "prompts",
    tokens: p ? p.arms[0].tokensScored : e.prompts!.items.reduce((n, item) => n + item.arms[0].nll.length, 0),
    points: arms.map((a) => ({
      factor: a.factor!,
      arm: a.id,
      meanNll: meanNll(a.id)!,
      perplexity: p ? p.arms[a.id].perplexity : Math.exp(meanNll(a.id)!),
    })),
  };
}

/** The report as one JSON object (`report --json`): typed arrays as lists, non-finite numbers as null. */
export function reportJson(r: ReportData): string {
  return JSON.stringify(r, (_, v) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v));
}
