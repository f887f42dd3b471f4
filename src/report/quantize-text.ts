// `superweight quantize --format rtn | nf4 | dequantized` as text and JSON: the super weights held out, the checkpoint
// written, and the comparison of configurations — one row each (perplexity, its change, KL from the unquantized
// model, size, what became of the super weights), then perplexity as a grid of method × block size per width.
import type { ComparedConfig, QuantizeComparison } from "../compress/compare.js";
import type { QuantizeReport, WrittenCheckpoint } from "../compress/write.js";
import type { HeldWeight } from "../compress/tensors.js";
import { formatBlock, type Block } from "../quant/scheme.js";
import { formatTable } from "./table.js";

const mb = (bytes: number) => (bytes / 1e6).toFixed(2);
const site = (w: { layer: number; row: number; column: number }) => `[${w.layer}, ${w.row}, ${w.column}]`;

export function quantizeJson(r: QuantizeReport): string {
  return JSON.stringify(r, null, 2);
}

export function renderQuantize(r: QuantizeReport): string {
  const lines = [heldLine(r.superWeights)];
  if (r.written) lines.push(...renderWritten(r.written));
  if (r.comparison) lines.push("", ...renderComparison(r.comparison));
  return lines.join("\n");
}

function heldLine({ source, held }: QuantizeReport["superWeights"]): string {
  const list = (ws: HeldWeight[]) => ws.map((w) => `${site(w)} ${w.value}`).join(", ");
  if (source === "keep") return `super weights given with --keep: ${list(held)}`;
  if (source === "none") return "super weights: none asked for (--keep-super, --keep, --clip or --compare scan)";
  return held.length ? `super weights (scan): ${list(held)}` : "super weights (scan): none found";
}

function renderWritten(w: WrittenCheckpoint): string[] {
  const what = w.format === "packed" ? w.scheme : `${w.scheme}, dequantized to ${w.dtype}`;
  return [
    `wrote ${w.folder}: ${what}; ${w.tensors.length} tensors quantized (${w.elements.toLocaleString("en-US")} ` +
      `weights, ${w.size.bitsPerWeight.toFixed(2)} bits per weight in the packed layout); tensors ` +
      `${mb(w.sourceBytes)} MB → ${mb(w.writtenBytes)} MB in ${w.seconds.toFixed(1)} s`,
    ...w.kept.map((k) => `  held out exactly: ${k.tensor} [${k.coordinates.join(", ")}] = ${k.value}`),
  ];
}

/** "rtn4 + clip zscore:9 + hold-out", "nf4", "unquantized weights"; " · A8" with down_proj inputs quantized,
 * " · A8 all linear" with every linear input. */
export function configLabel(c: ComparedConfig): string {
  const w = c.weights;
  let label = "unquantized weights";
  if (w) {
    label = w.scheme === "rtn" ? `rtn${w.bits}` : `nf4${w.nf4Range === "minmax" ? " minmax" : ""}`;
    if (w.method.startsWith("clip")) label += ` + clip ${w.clip}`;
    if (w.method.endsWith("hold-out")) label += " + hold-out";
  }
  const a = c.activations;
  if (a) {
    label += ` · A${a.bits}${a.inputs === "linear" ? " all linear" : ""}`;
    if (a.keepSuperActivation) label += " + super act.";
  }
  return label;
}

function superWeightCell(c: ComparedConfig): string {
  if (!c.superWeights.length) return "";
  if (c.superWeights.every((s) => Object.is(s.reconstructed, s.value))) return "exact";
  return c.superWeights.map((s) => s.reconstructed.toPrecision(4)).join(" ");
}

function renderComparison(c: QuantizeComparison): string[] {
  const t = c.text;
  const base = c.baseline;
  const lines = [
    `comparison on ${t.name}: ${t.tokensScored} tokens scored in ${t.windows} window(s) of ${t.ctx} positions ` +
      `(stride ${t.stride}${t.bos === null ? "" : `, BOS ${t.bos}`}); ${c.quantized.tensors.length} tensors ` +
      `(${c.quantized.elements.toLocaleString("en-US")} weights) quantized; clip rows: ${c.clip}`,
    `unquantized: perplexity ${base.perplexity.toFixed(4)}, ${base.size.bitsPerWeight.toFixed(2)} bits per weight, ` +
      `${mb(base.size.totalBytes)} MB`,
    ...(c.superActivations.length
      ? [
          `super activations held out: ${c.superActivations
            .map((s) => `layer ${s.layer} token ${s.token} channel ` + `${s.channel}`)
            .join("; ")}`,
        ]
      : []),
    "",
    formatTable(
      ["configuration", "block", "perplexity", "Δ ppl", "KL mean", "KL max", "bits/w", "MB", "super weights"],
      c.configs.map((x) => [
        configLabel(x),
        x.weights ? formatBlock(x.weights.block) : "-",
        x.perplexity.toFixed(4),
        (x.perplexity - base.perplexity).toFixed(4),
        x.kl.mean.toExponential(2),
        x.kl.max.toExponential(2),
        x.size.bitsPerWeight.toFixed(2),
        mb(x.size.totalBytes),
        superWeightCell(x),
      ]),
    ),
  ];
  const grids = perplexityGrids(c);
  if (grids.length) lines.push("", "perplexity by block size:", ...grids);
  lines.push(
    "",
    `${c.run.passes} passes in ${c.run.batches} batch(es) of at most ${c.run.maxVariants} variants, ` +
      `${mb(c.run.bytesRead)} MB of weights read, ${c.run.seconds.toFixed(1)} s`,
  );
  return lines;
}

/** Weight-only configurations: one grid per width, a row per method, a column per block. */
function perplexityGrids(c: QuantizeComparison): string[] {
  const rows = c.configs.filter((x) => x.weights && !x.activations);
  const blocks: Block[] = [...new Set(rows.map((x) => x.weights!.block))];
  if (blocks.length < 2) return [];
  const out: string[] = [];
  for (const bits of [...new Set(rows.map((x) => x.weights!.bits))]) {
    const labels = [...new Set(rows.filter((x) => x.weights!.bits === bits).map(configLabel))];
    out.push(
      "",
      formatTable(
        [`${bits}-bit`, ...blocks.map(formatBlock)],
        labels.map((label) => [
          label,
          ...blocks.map((b) => {
            const x = rows.find((r) => configLabel(r) === label && r.weights!.block === b);
            return x ? x.perplexity.toFixed(4) : "";
          }),
        ]),
      ),
    );
  }
  return out;
}
