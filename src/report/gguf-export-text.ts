// `superweight quantize --format gguf` as text and JSON: what was written (size, types, recipe) and where each
// super weight ended up; the comparison of recipes as a table.
import type { GgufExportResult, StoredSuperWeight } from "../export/gguf.js";
import type { Comparison } from "../export/compare.js";
import type { SuperWeightSet } from "../export/recipe.js";
import { formatTable } from "./table.js";

export const GGUF_EXPORT_REPORT_VERSION = 1;

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(2)} MB`;

function typeList(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([t, n]) => `${t} ×${n}`)
    .join(", ");
}

function superWeightTable(weights: StoredSuperWeight[]): string {
  return formatTable(
    ["layer", "row", "column", "GGUF tensor", "type", "original", "stored", "error"],
    weights.map((w) => [
      String(w.layer),
      String(w.row),
      String(w.column),
      w.ggufTensor,
      w.type,
      w.value.toPrecision(6),
      w.stored.toPrecision(6),
      w.error === 0 ? "0" : w.error.toExponential(2),
    ]),
  );
}

export function renderExport(r: GgufExportResult): string {
  const lines = [
    `wrote ${r.path}: ${mb(r.fileBytes)}, ${r.bitsPerWeight.toFixed(2)} bits per weight, ${r.tensors.length} tensors ` +
      `(${typeList(r.typeCounts)}) in ${r.seconds.toFixed(1)} s`,
    `recipe: ${r.recipe}`,
    `vocabulary: ${r.vocabulary === "stand-in" ? "stand-in byte-level (token ids only)" : `from ${r.vocabulary}`}`,
  ];
  if (r.superWeights.length)
    lines.push("", "super weights, read back from the written file:", superWeightTable(r.superWeights));
  for (const note of r.notes) lines.push(`note: ${note}`);
  return lines.join("\n");
}

export function renderComparison(c: Comparison): string {
  const base = c.checkpoint.perplexity;
  const vs = (ppl: number) => `${ppl >= base ? "+" : ""}${(ppl - base).toFixed(4)}`;
  const stored = (w: StoredSuperWeight) => `${w.type} ${w.error === 0 ? "exact" : w.error.toExponential(1)}`;
  const rows = [
    ["checkpoint", "", "", c.checkpoint.perplexity.toFixed(4), "", c.checkpoint.meanNll.toFixed(4), ""],
    ...c.recipes.map((r) => [
      r.label,
      mb(r.fileBytes),
      r.bitsPerWeight.toFixed(2),
      r.perplexity.toFixed(4),
      vs(r.perplexity),
      r.meanNll.toFixed(4),
      r.superWeights.map(stored).join(", "),
    ]),
  ];
  return [
    `${c.model}, ${c.ftype}: perplexity of this project's float32 forward pass on each file's dequantized weights ` +
      `(${c.tokens} tokens, windows of ${c.window})`,
    "",
    formatTable(
      ["recipe", "file", "bits/weight", "perplexity", "vs checkpoint", "mean NLL", "super weights (error)"],
      rows,
    ),
    "",
    ...c.recipes.map((r) => `${r.label}: ${r.recipe}`),
  ].join("\n");
}

export interface GgufQuantizeReport {
  found: SuperWeightSet;
  comparison?: Comparison;
  exported?: GgufExportResult;
}

function foundLine(f: SuperWeightSet): string | undefined {
  if (f.source === "none") return undefined;
  const where = f.source === "keep" ? "given with --keep" : "found by the scan";
  const list = f.weights.map((w) => `[${w.layer}, ${w.row}, ${w.column}]`).join(", ") || "none";
  const outliers = f.outliers.length
    ? `; left out, classed outlier: ${f.outliers.map((w) => `[${w.layer}, ${w.row}, ${w.column}]`).join(", ")}`
    : "";
  return `super weights ${where}: ${list}${outliers}`;
}

export function renderGgufQuantize(r: GgufQuantizeReport): string {
  const parts = [
    foundLine(r.found),
    r.comparison && renderComparison(r.comparison),
    r.exported && renderExport(r.exported),
  ];
  return parts.filter((p) => p !== undefined).join("\n\n");
}

export function ggufQuantizeJson(r: GgufQuantizeReport): string {
  return JSON.stringify({ version: GGUF_EXPORT_REPORT_VERSION, kind: "gguf-quantize", ...r });
}
