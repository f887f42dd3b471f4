// An audit report as terminal tables (the super weights, their block-mates, the super activation, the NLL) with
// the verdict last; or as one JSON object.
import type { AuditedWeight, AuditReport, Mates } from "../superweight/audit.js";
import { shortestFloat32 } from "../gguf/source.js";
import { signed } from "../signed.js";
import { formatTable } from "./table.js";

const where = (w: AuditedWeight) => `[${w.layer}, ${w.row}, ${w.column}]`;
/** A figure to 3 significant digits ("" for none). */
const g = (x: number | null, digits = 3) => (x === null ? "" : Number(x.toPrecision(digits)).toString());
const act = (x: number | null) => (x === null ? "" : Math.abs(x) >= 1000 ? x.toFixed(0) : x.toFixed(1));
const span = ([a, b]: [number, number]) => (a === b ? String(a) : `${a}-${b}`);

export function renderAudit(r: AuditReport): string {
  const out: string[] = [];
  const types = Object.entries(r.tensorTypes)
    .sort((a, b) => b[1] - a[1])
    .map(([t, n]) => `${t} ×${n}`)
    .join(", ");
  out.push(`${r.label}: ${r.architecture}${r.fileType ? `, ${r.fileType}` : ""} (${types})`);
  const ref = r.reference
    ? `${r.reference.label} (${r.reference.modelType})`
    : "none (give --reference to compare with the original)";
  out.push(`reference: ${ref}`);
  if (r.modelId) {
    const known = r.modelId.published ? "published coordinates checked" : "not in the directory";
    out.push(`model id: ${r.modelId.id} (from ${r.modelId.from}): ${known}`);
  }
  if (r.exporter) {
    const kept = r.exporter.superWeights.length ? r.exporter.superWeights.join(", ") : "none";
    const recipe = JSON.stringify(r.exporter.recipe ?? "(none)");
    out.push(`written by superweight's exporter: kept super weights ${kept}; recipe ${recipe}`);
  }
  for (const s of r.skipped) out.push(`published [${s.layer}, ${s.row}, ${s.column}] left out: ${s.why}`);
  out.push("");
  if (!r.superWeights.length) out.push("no super weight to audit.");
  else {
    out.push("super weights (row = output channel, column = input channel of the layer's down_proj):");
    out.push(
      formatTable(
        ["weight", "from", "GGUF tensor", "type", "block", "stored", "original", "error", "rel. error"],
        r.superWeights.map((w) => [
          where(w),
          w.sources.join(", "),
          w.ggufTensor,
          w.ggmlType,
          span(w.block),
          String(shortestFloat32(w.stored)),
          w.original === null
            ? "unknown"
            : `${shortestFloat32(w.original)}${w.originalFrom === "gguf metadata" ? " (metadata)" : ""}`,
          w.error === null ? "" : g(w.error),
          w.relativeError === null ? "" : `${g(100 * w.relativeError, 2)}%`,
        ]),
      ),
    );
    out.push("", ...matesSection(r));
    out.push("", ...activationSection(r));
  }
  out.push("", nllLine(r));
  if (r.unknown.length) out.push("", "without a reference this cannot be known:", ...r.unknown.map((u) => `  - ${u}`));
  out.push("", `verdict: ${r.verdict}`);
  return out.join("\n");
}

function matesSection(r: AuditReport): string[] {
  const rows: string[][] = [];
  const withRef = r.superWeights.some((w) => w.block32.vsOriginal);
  const row = (w: AuditedWeight | null, m: Mates, what: string) => {
    const e = m.vsOriginal;
    const cells = [w ? where(w) : "", what, span(m.columns), String(m.n)];
    const s = m.stored;
    if (withRef && e)
      cells.push(
        g(e.rmsOriginal),
        g(e.rmsError),
        g(e.maxAbsError),
        String(e.zeroed),
        `${e.distinctOriginal} → ${s.distinctValues}`,
      );
    else cells.push(g(s.rms), g(s.min), g(s.max), String(s.exactZeros), String(s.distinctValues));
    rows.push(cells);
  };
  for (const w of r.superWeights) {
    row(w, w.block32, "32-group");
    if (w.superBlock256) row(null, w.superBlock256, "rest of 256");
  }
  const headers = withRef
    ? ["weight", "mates", "columns", "n", "rms orig", "rms error", "max |error|", "became 0", "distinct orig → stored"]
    : ["weight", "mates", "columns", "n", "rms", "min", "max", "zeros", "distinct"];
  const lines = [
    "block-mates (the other weights of the super weight's row in its 32-group: its Q4_0/Q8_0 block, its K-quant " +
      "sub-block; and the rest of a 256-super-block):",
    formatTable(headers, rows),
  ];
  for (const w of r.superWeights)
    if (w.restOfRowRmsError !== null)
      lines.push(`${where(w)}: the rest of its row (outside its block) has rms error ${g(w.restOfRowRmsError)}`);
  return lines;
}

function activationSection(r: AuditReport): string[] {
  const ref = r.reference !== null;
  // Not found: the layer's largest output instead, whichever channel it is at.
  const seen = (s: AuditedWeight["activation"]["gguf"] | null) =>
    s === null
      ? []
      : s.found
        ? [s.class!, act(s.inputActivation), act(s.outputActivation)]
        : ["not found", "", `layer max ${act(s.layerMax.output)}`];
  const headers = ["weight", "GGUF scan", "in", "out", ...(ref ? ["reference scan", "in", "out"] : [])];
  const rows = r.superWeights.map((w) => [where(w), ...seen(w.activation.gguf), ...seen(w.activation.reference)]);
  const title = "super activation (down_proj input at its column, output at its row, on the first input):";
  return [title, formatTable(headers, rows)];
}

function nllLine(r: AuditReport): string {
  const n = r.nll;
  const left = n.truncated ? `, ${n.truncated} more left out` : "";
  const what = n.on === "text" ? `the text (${n.tokens} tokens${left})` : `the inputs (${n.tokens} tokens)`;
  const side = (s: { meanNll: number; perplexity: number }) =>
    `${s.meanNll.toFixed(4)} (perplexity ${s.perplexity.toFixed(4)})`;
  if (!n.gguf) return `NLL on ${what}: not measured (one token)`;
  if (!n.reference) return `mean NLL on ${what}: GGUF ${side(n.gguf)}; no reference to compare`;
  const change = n.change === null ? "" : `: ${signed(100 * n.change, 2)}%`;
  return `mean NLL on ${what}: GGUF ${side(n.gguf)}, reference ${side(n.reference)}${change}`;
}

/** The report as one JSON object (the `--json` output). */
export function auditJson(r: AuditReport): string {
  return JSON.stringify(r);
}
