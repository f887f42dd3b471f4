// The audit of a GGUF file's super weights: what its quantization did to each one, to the other weights of its
// quantization block, to the super activation it makes and to the model's NLL — against the checkpoint it was
// made from when one is given as a reference, else with what the file alone can tell (and a list of what it
// cannot). The super weights come from the directory of published coordinates (when the model is known), the
// file's own `superweight.*` metadata (this project's exporter), a scan of the reference; failing all of these,
// from a scan of the file itself. The result is a typed, versioned report; src/report/audit-text.ts renders it.
import { signed } from "../signed.js";
import { UserError } from "../errors.js";
import type { Model } from "../engine/model.js";
import { forward } from "../engine/forward.js";
import { mean } from "../engine/nll.js";
import type { GgufKv } from "../gguf/container.js";
import { FTYPES } from "../gguf/mixture.js";
import { GgufCheckpoint } from "../gguf/source.js";
import { readSuperWeightMetadata, SUPERWEIGHT_KEYS } from "../gguf/superweight-metadata.js";
import type { WeightClass } from "./classify.js";
import { lookupPublished } from "./directory.js";
import { scan, type ScanInput, type ScanReport } from "./scan.js";

export const AUDIT_REPORT_VERSION = 1;
/** The group of weights reported as block-mates: a weight's 32-block (Q4_0, Q8_0, IQ4_NL), its K-quant sub-block. */
export const GROUP = 32;
/** Below this relative error the super weight counts as having survived. */
export const SURVIVES_WITHIN = 0.01;

export type WeightSource = "directory" | "gguf metadata" | "reference scan" | "gguf scan";

export interface Coordinate {
  layer: number;
  row: number;
  column: number;
}

/** The spread of stored values (what the file alone shows). */
export interface Spread {
  rms: number;
  maxAbs: number;
  min: number;
  max: number;
  exactZeros: number;
  distinctValues: number;
}

/** Stored against the reference's values. */
export interface ErrorStats {
  rmsOriginal: number;
  rmsError: number;
  maxAbsError: number;
  /** Became exactly 0 (the original was not). */
  zeroed: number;
  distinctOriginal: number;
}

export interface Mates {
  /** HF columns, inclusive, of the group; the super weight itself (and, for superBlock256, its 32-group) left out. */
  columns: [number, number];
  n: number;
  stored: Spread;
  vsOriginal: ErrorStats | null;
}

/** What a scan saw at a coordinate. */
export interface ActivationSeen {
  /** The rule found this coordinate. */
  found: boolean;
  class: WeightClass | null;
  inputActivation: number | null;
  outputActivation: number | null;
  token: number | null;
  /** The layer's largest |down_proj input| / |output| on the first input (full model), with its channel. */
  layerMax: { input: number; inputChannel: number; output: number; outputChannel: number };
}

export interface AuditedWeight extends Coordinate {
  sources: WeightSource[];
  /** Hugging Face tensor and the GGUF tensor, row and element holding it. */
  tensor: string;
  ggufTensor: string;
  ggufElement: number;
  ggmlType: string;
  blockSize: number;
  /** HF columns [first, last] of its stored block. */
  block: [number, number];
  /** The tensor is stored without block quantization (F32, F16, BF16). */
  unquantized: boolean;
  stored: number;
  original: number | null;
  originalFrom: "reference" | "gguf metadata" | null;
  error: number | null;
  relativeError: number | null;
  /** The exporter's record of it: listed in superweight.super_weights, and the value it recorded. */
  recorded: { original: number | null } | null;
  /** Its 31 block-mates: the rest of its 32-group. */
  block32: Mates;
  /** K-quants and IQ4_XS: the other 224 weights of its 256-super-block. */
  superBlock256: Mates | null;
  /** The rest of its row outside its block (32, or 256 for the K-quants): rms error, for scale. */
  restOfRowRmsError: number | null;
  activation: { gguf: ActivationSeen; reference: ActivationSeen | null };
}

export interface NllCost {
  /** What was scored: "text" (--text) or "inputs" (the scan's inputs). */
  on: "text" | "inputs";
  tokens: number;
  /** Tokens of the text left out beyond maxTokens. */
  truncated: number;
  predictions: number;
  gguf: { meanNll: number; perplexity: number } | null;
  reference: { meanNll: number; perplexity: number } | null;
  /** (gguf − reference) / reference mean NLL. */
  change: number | null;
}

export interface ScanSummary {
  candidates: (Coordinate & { class: WeightClass; inputActivation: number; outputActivation: number; token: number })[];
  forwardPasses: number;
  seconds: number;
}

export interface AuditReport {
  version: typeof AUDIT_REPORT_VERSION;
  model: string;
  label: string;
  architecture: string;
  /** general.file_type, by llama.cpp's name when known. */
  fileType: string | null;
  /** Tensors per ggml type. */
  tensorTypes: Record<string, number>;
  modelId: { id: string; from: string; published: boolean } | null;
  reference: { path: string; label: string; modelType: string } | null;
  /** The exporter's superweight.* keys, when present. */
  exporter: { superWeights: string[]; recipe: string | null } | null;
  superWeights: AuditedWeight[];
  /** Published coordinates left out: outside this model's shapes. */
  skipped: (Coordinate & { why: string })[];
  inputs: { label: string; ids: number[] }[];
  nll: NllCost;
  scans: { gguf: ScanSummary; reference: ScanSummary | null };
  /** What cannot be known without a reference. */
  unknown: string[];
  verdict: string;
  seconds: number;
}

export interface AuditOptions {
  /** The scans' inputs (and the NLL's, without `text`). */
  inputs: ScanInput[];
  /** A text for the model-level NLL, tokenized. */
  text?: ScanInput;
  /** Most tokens of `text` scored (one window). */
  maxTokens: number;
  threshold: number;
  maxIterations: number;
  /** --model-id, then the reference's id (cache path or config.json), after the file's own metadata. */
  modelId?: string;
  referenceModelId?: string;
  label?: string;
  referenceLabel?: string;
  onProgress?: (message: string) => void;
}

export async function audit(model: Model, reference: Model | undefined, o: AuditOptions): Promise<AuditReport> {
  const t0 = performance.now();
  const source = model.source;
  if (!(source instanceof GgufCheckpoint))
    throw new UserError("is not a GGUF file: audit looks at a GGUF file's quantized super weights", model.path);
  if (reference) sameShape(model, reference);
  const { layers, hidden, intermediate } = model.spec;
  const fits = (c: Coordinate) => c.layer < layers && c.row < hidden && c.column < intermediate;
  const exporter = readSuperWeightMetadata(source.metadata, source.path);
  for (const r of exporter?.superWeights ?? [])
    if (!fits(r))
      throw new UserError(
        `metadata "${SUPERWEIGHT_KEYS.superWeights}" lists ${r.layer}:${r.row}:${r.column}, outside the model ` +
          `(${layers} layers, hidden ${hidden}, intermediate ${intermediate})`,
        source.path,
      );
  const modelId = knownModelId(source.metadata, o);

  o.onProgress?.("scanning the GGUF file");
  const scanOptions = { threshold: o.threshold, maxIterations: o.maxIterations };
  const ggufScan = await scan(model, o.inputs, { ...scanOptions, label: o.label });
  o.onProgress?.(reference ? "scanning the reference" : "no reference: the file's own scan stands in for it");
  const refScan = reference ? await scan(reference, o.inputs, { ...scanOptions, label: o.referenceLabel }) : null;

  // The super weights to audit, each with where it came from.
  const found = new Map<string, Coordinate & { sources: WeightSource[] }>();
  const add = (c: Coordinate, from: WeightSource) => {
    const k = `${c.layer}:${c.row}:${c.column}`;
    const seen = found.get(k) ?? { layer: c.layer, row: c.row, column: c.column, sources: [] };
    if (!seen.sources.includes(from)) seen.sources.push(from);
    found.set(k, seen);
  };
  const skipped: AuditReport["skipped"] = [];
  const published = modelId?.published ? lookupPublished(modelId.id)!.coordinates : [];
  for (const p of published) {
    if (fits(p)) add(p, "directory");
    else skipped.push({ layer: p.layer, row: p.row, column: p.column, why: "outside this model's shapes" });
  }
  for (const r of exporter?.superWeights ?? []) add(r, "gguf metadata");
  for (const w of refScan?.superWeights ?? []) if (w.class === "super") add(w, "reference scan");
  if (!found.size) for (const w of ggufScan.superWeights) if (w.class === "super") add(w, "gguf scan");

  const coords = [...found.values()].sort((a, b) => a.layer - b.layer || a.row - b.row || a.column - b.column);
  const same = (a: Coordinate, b: Coordinate) => a.layer === b.layer && a.row === b.row && a.column === b.column;
  const superWeights = coords.map((c) => {
    const recorded = exporter?.superWeights.find((r) => same(r, c));
    return auditWeight(model, source, reference, c, recorded, ggufScan, refScan);
  });

  o.onProgress?.("scoring the NLL");
  const nll = await nllCost(model, reference, o, ggufScan, refScan);
  const report: AuditReport = {
    version: AUDIT_REPORT_VERSION,
    model: model.path,
    label: o.label ?? model.path,
    architecture: source.architecture,
    fileType: fileTypeOf(source),
    tensorTypes: tensorTypes(source),
    modelId,
    reference: reference
      ? { path: reference.path, label: o.referenceLabel ?? reference.path, modelType: reference.spec.modelType }
      : null,
    exporter: exporter
      ? { superWeights: exporter.superWeights.map((r) => `${r.layer}:${r.row}:${r.column}`), recipe: exporter.recipe }
      : null,
    superWeights,
    skipped,
    inputs: o.inputs.map((i) => ({ label: i.label, ids: i.ids })),
    nll,
    scans: { gguf: summary(ggufScan), reference: refScan ? summary(refScan) : null },
    unknown: reference ? [] : unknowns(superWeights),
    verdict: "",
    seconds: 0,
  };
  report.verdict = verdict(report);
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

function sameShape(model: Model, reference: Model): void {
  const a = model.spec,
    b = reference.spec;
  const dims = (s: typeof a) =>
    `${s.layers} layers, hidden ${s.hidden}, intermediate ${s.intermediate}, vocab ${s.vocab}`;
  if (dims(a) !== dims(b))
    throw new UserError(
      `is not the model of ${model.path}: the reference has ${dims(b)}, the GGUF file ${dims(a)}`,
      reference.path,
    );
  if (a.experts || b.experts) throw new UserError("audit covers dense models (no Mixture-of-Experts layers)");
}

// ---- which model ----

/** Metadata keys that may name the model, in order: Hugging Face URLs and repositories, then names. */
const ID_KEYS = [
  "general.source.repo_url",
  "general.source.url",
  "general.source.huggingface.repository",
  "general.source.hugginface.repository",
  "general.repo_url",
  "general.url",
  "general.name",
  "general.basename",
];

/** The model id: --model-id, else the first the directory knows among the file's metadata, then the reference's. */
function knownModelId(meta: Map<string, GgufKv>, o: AuditOptions): AuditReport["modelId"] {
  if (o.modelId) return { id: o.modelId, from: "--model-id", published: !!lookupPublished(o.modelId) };
  const text = (key: string) => {
    const kv = meta.get(key);
    return kv?.type === "STRING" ? (kv.value as string).trim() : undefined;
  };
  const guesses: { id: string; from: string }[] = [];
  for (const key of ID_KEYS) {
    const v = text(key);
    if (!v) continue;
    const hub = /huggingface\.co\/([\w.-]+\/[\w.-]+)/.exec(v);
    guesses.push({ id: hub ? hub[1] : v, from: key });
  }
  const base = text("general.basename");
  const size = text("general.size_label");
  if (base && size) guesses.push({ id: `${base}-${size}`, from: "general.basename + general.size_label" });
  if (o.referenceModelId) guesses.push({ id: o.referenceModelId, from: "the reference" });
  const known = guesses.find((g) => lookupPublished(g.id));
  if (known) return { ...known, published: true };
  return guesses.length ? { ...guesses[0], published: false } : null;
}

// ---- one super weight ----

function auditWeight(
  model: Model,
  source: GgufCheckpoint,
  reference: Model | undefined,
  c: Coordinate & { sources: WeightSource[] },
  recorded: { original: number | null } | undefined,
  ggufScan: ScanReport,
  refScan: ScanReport | null,
): AuditedWeight {
  const tensor = model.arch.downProjections(model.spec, c.layer)[0].tensor;
  const cols = model.shape(tensor)[1];
  const block = source.blockOf(tensor, c.row, c.column);
  const stored = rowOf(model, tensor, c.row);
  const original = reference ? rowOf(reference, tensor, c.row) : null;
  const value = stored[c.column];
  const orig = original ? original[c.column] : (recorded?.original ?? null);
  const g0 = Math.floor(c.column / GROUP) * GROUP;
  const inGroup = (k: number) => k >= g0 && k < g0 + GROUP;
  const s0 = Math.floor(c.column / 256) * 256;
  const outer = block.blockSize === 256;
  const own = Math.max(GROUP, block.blockSize);
  const b0 = Math.floor(c.column / own) * own;
  return {
    layer: c.layer,
    row: c.row,
    column: c.column,
    sources: c.sources,
    tensor,
    ggufTensor: block.ggufTensor,
    ggufElement: block.ggufRow * cols + c.column,
    ggmlType: block.ggmlType,
    blockSize: block.blockSize,
    block: [block.firstColumn, block.firstColumn + block.blockSize - 1],
    unquantized: block.blockSize === 1,
    stored: value,
    original: orig,
    originalFrom: original ? "reference" : recorded?.original != null ? "gguf metadata" : null,
    error: orig === null ? null : value - orig,
    relativeError: orig === null || orig === 0 ? null : (value - orig) / Math.abs(orig),
    recorded: recorded ? { original: recorded.original } : null,
    block32: mates(stored, original, g0, g0 + GROUP - 1, (k) => k !== c.column),
    superBlock256: outer ? mates(stored, original, s0, s0 + 255, (k) => !inGroup(k)) : null,
    restOfRowRmsError: original
      ? mates(stored, original, 0, cols - 1, (k) => k < b0 || k >= b0 + own).vsOriginal!.rmsError
      : null,
    activation: { gguf: seen(ggufScan, c), reference: refScan ? seen(refScan, c) : null },
  };
}

/** Row `row` of a 2-D weight in [out, in] terms, whichever way the checkpoint stores it. */
function rowOf(model: Model, tensor: string, row: number): Float32Array {
  const [a, b] = model.shape(tensor);
  if (model.layout(tensor) === "nk") return model.readRows(tensor, row, row + 1, new Float32Array(b));
  // [in, out] (GPT-2's Conv1D): column `row` of the stored matrix.
  const all = model.readRows(tensor, 0, a, new Float32Array(a * b));
  return Float32Array.from({ length: a }, (_, i) => all[i * b + row]);
}

function mates(
  stored: Float32Array,
  original: Float32Array | null,
  first: number,
  last: number,
  keep: (k: number) => boolean,
): Mates {
  const s: number[] = [];
  const o: number[] = [];
  for (let k = first; k <= last; k++)
    if (keep(k)) {
      s.push(stored[k]);
      if (original) o.push(original[k]);
    }
  const rms = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + x * x, 0) / xs.length);
  const spread: Spread = {
    rms: rms(s),
    maxAbs: Math.max(...s.map(Math.abs)),
    min: Math.min(...s),
    max: Math.max(...s),
    exactZeros: s.filter((x) => x === 0).length,
    distinctValues: new Set(s).size,
  };
  let vsOriginal: ErrorStats | null = null;
  if (original) {
    const err = s.map((x, i) => x - o[i]);
    vsOriginal = {
      rmsOriginal: rms(o),
      rmsError: rms(err),
      maxAbsError: Math.max(...err.map(Math.abs)),
      zeroed: s.filter((x, i) => x === 0 && o[i] !== 0).length,
      distinctOriginal: new Set(o).size,
    };
  }
  return { columns: [first, last], n: s.length, stored: spread, vsOriginal };
}

function seen(r: ScanReport, c: Coordinate): ActivationSeen {
  const w = r.superWeights.find((x) => x.layer === c.layer && x.row === c.row && x.column === c.column);
  const l = r.layers[c.layer];
  return {
    found: !!w,
    class: w?.class ?? null,
    inputActivation: w?.inputActivation ?? null,
    outputActivation: w?.outputActivation ?? null,
    token: w?.token ?? null,
    layerMax: {
      input: l.downProjInput.value,
      inputChannel: l.downProjInput.channel,
      output: l.downProjOutput.value,
      outputChannel: l.downProjOutput.channel,
    },
  };
}

// ---- the model-level cost ----

async function nllCost(
  model: Model,
  reference: Model | undefined,
  o: AuditOptions,
  ggufScan: ScanReport,
  refScan: ScanReport | null,
): Promise<NllCost> {
  if (!o.text) {
    // The scans scored their inputs already.
    const score = (r: ScanReport) => {
      const scored = r.prompts.filter((p) => p.meanNll !== null);
      const n = scored.reduce((a, p) => a + p.ids.length - 1, 0);
      return n ? scored.reduce((a, p) => a + p.meanNll! * (p.ids.length - 1), 0) / n : null;
    };
    const predictions = o.inputs.reduce((a, i) => a + i.ids.length - 1, 0);
    const tokens = o.inputs.reduce((a, i) => a + i.ids.length, 0);
    return cost("inputs", tokens, 0, predictions, score(ggufScan), refScan ? score(refScan) : null);
  }
  const ids = o.text.ids.slice(0, o.maxTokens);
  if (ids.length < 2) throw new UserError(`the text ${o.text.label} has ${ids.length} token: nothing to score`);
  const meanNll = async (m: Model) => {
    const targets = ids.map((_, t) => (t + 1 < ids.length ? ids[t + 1] : -1));
    const out = await forward(m, ids, { head: { targets } });
    return mean([...out.nll![0].subarray(0, ids.length - 1)]);
  };
  const ref = reference ? await meanNll(reference) : null;
  return cost("text", ids.length, o.text.ids.length - ids.length, ids.length - 1, await meanNll(model), ref);
}

function cost(
  on: NllCost["on"],
  tokens: number,
  truncated: number,
  predictions: number,
  gguf: number | null,
  ref: number | null,
): NllCost {
  const side = (v: number | null) => (v === null ? null : { meanNll: v, perplexity: Math.exp(v) });
  return {
    on,
    tokens,
    truncated,
    predictions,
    gguf: side(gguf),
    reference: side(ref),
    change: gguf !== null && ref !== null && ref !== 0 ? (gguf - ref) / ref : null,
  };
}

// ---- the file ----

function fileTypeOf(source: GgufCheckpoint): string | null {
  const kv = source.metadata.get("general.file_type");
  if (!kv || kv.type === "ARRAY" || typeof kv.value !== "number") return null;
  const id = kv.value;
  return Object.entries(FTYPES).find(([, f]) => f.id === id)?.[0] ?? `file type ${id}`;
}

function tensorTypes(source: GgufCheckpoint): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of source.names()) {
    const type = source.info(name).dtype;
    counts[type] = (counts[type] ?? 0) + 1;
  }
  return counts;
}

function summary(r: ScanReport): ScanSummary {
  return {
    candidates: r.superWeights.map((w) => ({
      layer: w.layer,
      row: w.row,
      column: w.column,
      class: w.class,
      inputActivation: w.inputActivation,
      outputActivation: w.outputActivation,
      token: w.token,
    })),
    forwardPasses: r.forwardPasses,
    seconds: r.seconds,
  };
}

function unknowns(weights: AuditedWeight[]): string[] {
  const out = [
    "the block-mates' original values, hence their error (only the stored values' spread is shown)",
    "the super activation and the NLL of the original model (only this file's are shown)",
  ];
  if (weights.some((w) => w.original === null)) out.unshift("the super weights' original values (give --reference)");
  return out;
}

// ---- the verdict ----

const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(1) : x.toPrecision(3));
/** A weight's value: enough digits to tell a quantized one from its original. */
const val = (x: number) => String(Number(x.toPrecision(6)));
const pct = (x: number) => `${signed(100 * x, Math.abs(x) < 0.001 ? 2 : 1)}%`;
const where = (w: Coordinate) => `[${w.layer}, ${w.row}, ${w.column}]`;

/** One sentence: per super weight its value, its block-mates, its activation; then the NLL. */
export function verdict(r: AuditReport): string {
  if (!r.superWeights.length) {
    const nll = r.nll.gguf ? `; mean NLL ${r.nll.gguf.meanNll.toFixed(4)}` : "";
    return (
      "no super weight found (no published coordinates, no superweight.* metadata, and the scan classified no " +
      `candidate as super)${nll}`
    );
  }
  const one = r.superWeights.length === 1;
  const parts = r.superWeights.map((w) => {
    const notSuper = w.activation.reference !== null && !w.activation.reference.found;
    const name = notSuper
      ? `the ${w.sources.includes("directory") ? "published" : "listed"} weight ${where(w)}`
      : one
        ? "the super weight"
        : `the super weight ${where(w)}`;
    const weight = weightClause(w, name);
    const mates = matesClause(w);
    // "survived Q4_K but its block-mates collapsed": the contrast reads as one clause.
    const joined = !mates
      ? weight.text
      : `${weight.text}${mates.damaged && weight.survived ? " but " : "; "}${mates.text}`;
    return `${joined}; ${activationClause(w)}`;
  });
  const n = r.nll;
  const nll =
    n.change !== null
      ? `NLL ${pct(n.change)}`
      : n.gguf
        ? `mean NLL ${n.gguf.meanNll.toFixed(4)} (no reference to compare)`
        : "";
  return [...parts, nll].filter(Boolean).join("; ");
}

function weightClause(w: AuditedWeight, name: string): { text: string; survived: boolean } {
  if (w.unquantized) {
    const exact = w.error === 0 && w.block32.vsOriginal?.rmsError === 0;
    const how = exact
      ? `, so it and its ${w.block32.n} block-mates are exact (error 0)`
      : w.error === null
        ? " (not block-quantized)"
        : `, error ${w.error.toExponential(1)}`;
    return { text: `${name} is kept: its tensor is stored ${w.ggmlType}${how}`, survived: true };
  }
  if (w.original === null) {
    const text = `${name} is stored as ${w.ggmlType} (${val(w.stored)}; its original is unknown without --reference)`;
    return { text, survived: false };
  }
  const rel = w.relativeError;
  const change = `${val(w.stored)} vs ${val(w.original)}${rel === null ? "" : ` (${pct(rel)})`}`;
  // A coordinate the reference makes no super activation with is reported, not judged.
  if (w.activation.reference && !w.activation.reference.found)
    return { text: `${name} is stored as ${w.ggmlType}: ${change}`, survived: false };
  if (rel !== null && Math.abs(rel) <= SURVIVES_WITHIN)
    return { text: `${name} survived ${w.ggmlType} (${val(w.stored)} vs ${val(w.original)})`, survived: true };
  return { text: `${name} did not survive ${w.ggmlType}: ${change}`, survived: false };
}

function matesClause(w: AuditedWeight): { text: string; damaged: boolean } | null {
  const m = w.block32;
  const mates = `its ${m.n} block-mates`;
  const e = m.vsOriginal;
  if (!e) {
    if (w.unquantized) return null;
    if (m.stored.exactZeros === m.n) return { text: `${mates} are all stored as 0`, damaged: true };
    const zeros = m.stored.exactZeros ? ` (${m.stored.exactZeros} of them 0)` : "";
    return { text: `${mates} are stored as ${m.stored.distinctValues} distinct values${zeros}`, damaged: false };
  }
  if (e.rmsError === 0) return w.unquantized ? null : { text: `${mates} are intact`, damaged: false };
  if (e.zeroed === m.n) return { text: `all ${m.n} of its block-mates became 0`, damaged: true };
  const zeroed = e.zeroed ? `, ${e.zeroed} of them 0` : "";
  if (m.stored.distinctValues <= 4)
    return { text: `${mates} collapsed onto ${m.stored.distinctValues} values${zeroed}`, damaged: true };
  const scale = w.restOfRowRmsError ? `, ${fmt(e.rmsError / w.restOfRowRmsError)}× that of the rest of its row` : "";
  const text =
    `${mates} kept ${m.stored.distinctValues} of ${e.distinctOriginal} distinct values${zeroed} ` +
    `(rms error ${fmt(e.rmsError)}${scale})`;
  return { text, damaged: true };
}

function activationClause(w: AuditedWeight): string {
  const g = w.activation.gguf;
  const r = w.activation.reference;
  const vs = r?.found ? ` vs ${fmt(r.outputActivation!)}` : "";
  const largest = (s: ActivationSeen) =>
    `layer ${w.layer}'s largest down_proj output is ${fmt(s.layerMax.output)} at channel ${s.layerMax.outputChannel}`;
  if (r && !r.found) {
    if (!g.found)
      return (
        `its activation forms in neither this file nor the reference (${largest(r)} there): ` +
        "not a super weight of this model"
      );
    return `the rule finds it in this file (${fmt(g.outputActivation!)}) but not in the reference`;
  }
  if (g.found && g.class === "super") return `the super activation still forms (${fmt(g.outputActivation!)}${vs})`;
  if (g.found)
    return `the rule still finds it, but as an outlier, not a super weight (${fmt(g.outputActivation!)}${vs})`;
  return `the super activation ${r ? "no longer forms" : "does not form"} (${largest(g)}${vs})`;
}
