// A scan report as the terminal table and the reasons behind each class.
import type { ScanReport, ScannedWeight } from "../superweight/scan.js";
import type { LayerSpikes } from "../superweight/detect.js";
import { formatTable } from "./table.js";
import { sparkline } from "./sparkline.js";

const short = (label: string) => JSON.stringify(label.length > 60 ? `${label.slice(0, 57)}...` : label);
/** x to `digits` decimals (none from 1000 up); a value that rounds to zero prints without a minus sign. */
const num = (x: number, digits = 1) => {
  const text = Math.abs(x) >= 1000 ? x.toFixed(0) : x.toFixed(digits);
  return Number(text) === 0 ? text.replace("-", "") : text;
};
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : word.endsWith("s") ? "es" : "s"}`;
const where = (w: ScannedWeight) =>
  `layer ${w.layer}${w.expert !== undefined ? ` expert ${w.expert}` : ""} [${w.row}, ${w.column}]`;

export function renderScan(r: ScanReport): string {
  const out: string[] = [];
  const id = r.modelId && r.modelId !== r.label ? ` (${r.modelId})` : "";
  const { experts, expertIntermediate, topK, sparseLayers } = r.shape;
  const sparse = plural(sparseLayers?.length ?? 0, "sparse layer");
  const moe = experts ? `; ${experts} experts of ${expertIntermediate}, top-${topK}, in ${sparse}` : "";
  const { layers, hidden, intermediate } = r.shape;
  out.push(`${r.label}${id}: ${r.modelType}, ${layers} layers, hidden ${hidden}, intermediate ${intermediate}${moe}`);
  out.push(
    `threshold ${r.threshold}; ${plural(r.prompts.length, "prompt")}: ${r.prompts.map((p) => short(p.label)).join(", ")}`,
  );
  out.push("");
  if (!r.superWeights.length)
    out.push(`no down projection has both spikes above ${r.threshold}: no super weight candidates.`);
  else {
    const idx = r.storedTransposed ? " (stored [in, out]: tensor[column, row])" : "";
    out.push(`candidates (row = output channel, column = input channel${idx}):`);
    const rows = r.superWeights.map((w) => [
      w.tensor,
      `[${w.row}, ${w.column}]`,
      w.value.toPrecision(4),
      `${num(w.inputActivation)} @${w.inputToken}`,
      `${num(w.outputActivation)} @${w.token}${w.tokenText ? ` ${JSON.stringify(w.tokenText)}` : ""}`,
      String(w.iteration),
      w.class,
      `${w.prompts.length}/${r.prompts.length}`,
      shortEvidence(w),
    ]);
    const headers = [
      "tensor",
      "[row, column]",
      "weight",
      "input @token",
      "output @token",
      "iter",
      "class",
      "prompts",
      "evidence",
    ];
    // The prompts column only says something when there are several.
    const keep = (_: string, i: number) => r.prompts.length > 1 || i !== 7;
    out.push(
      formatTable(
        headers.filter(keep),
        rows.map((row) => row.filter(keep)),
      ),
    );
    out.push("");
    for (const w of r.superWeights) {
      const onPrompt =
        r.prompts.length > 1
          ? ` (evidence from prompt ${(w.perPrompt.find((p) => p.class === w.class) ?? w.perPrompt[0]).prompt + 1})`
          : "";
      out.push(`${w.class === "super" ? "SUPER  " : "outlier"} ${where(w)}${onPrompt}:`);
      if (w.routingWeight !== undefined) {
        const weight = `${w.routingWeight.toFixed(3)} (the output above is before it)`;
        out.push(
          w.expert === "shared"
            ? `  - the shared expert's gate at token ${w.token} is ${weight}`
            : `  - token ${w.token} is routed to expert ${w.expert} with weight ${weight}`,
        );
      }
      for (const reason of w.reasons) out.push(`  - ${reason}`);
      out.push(`  - ${w.nllNote}`);
      if (w.iteration > 1)
        out.push(
          `  - found in pass ${w.iteration}: its baseline is the model with the earlier passes' candidates zeroed`,
        );
      const res = w.evidence.residual.map((v) => (v === null ? "·" : num(v)));
      out.push(`  residual[${w.row}] at token ${w.token} after each layer: ${res.join(" ")}`);
      const zeroed = w.evidence.residualZeroed.map((v) => (v === null ? "·" : num(v)));
      out.push(
        `  ...with it zeroed:${" ".repeat(Math.max(1, String(w.row).length + String(w.token).length + 22))}${zeroed.join(" ")}`,
      );
    }
  }
  out.push("");
  out.push("max |down_proj input| / |output| per layer (log scale), full model, first prompt:");
  const ins = r.layers.map((l) => l.downProjInput.max),
    outs = r.layers.map((l) => l.downProjOutput.max);
  out.push(`  input  ${sparkline(ins)}  max ${num(Math.max(...ins))} (layer ${ins.indexOf(Math.max(...ins))})`);
  out.push(`  output ${sparkline(outs)}  max ${num(Math.max(...outs))} (layer ${outs.indexOf(Math.max(...outs))})`);
  const spikes = r.layers.filter((l) => l.downProjInput.max > r.threshold || l.downProjOutput.max > r.threshold);
  if (spikes.length) {
    out.push(`  layers with a spike above ${r.threshold} (the others stay below it):`);
    out.push(
      formatTable(
        ["layer", "max |in|", "token", "channel", "max |out|", "token", "channel"],
        spikes.map((l) => [
          String(l.layer),
          num(l.downProjInput.max),
          String(l.downProjInput.token),
          String(l.downProjInput.channel),
          num(l.downProjOutput.max),
          String(l.downProjOutput.token),
          String(l.downProjOutput.channel),
        ]),
      ).replace(/^/gm, "  "),
    );
  }

  if (r.shape.experts) out.push(...expertsSection(r));

  if (r.published) {
    out.push("", `published super weights of ${r.published.modelId} (${r.published.source}):`);
    for (const p of r.published.coordinates) {
      const status = p.found
        ? `found (${p.class})`
        : p.fits
          ? "NOT FOUND by this scan"
          : "cannot exist in this model (outside its shapes: wrong model id?)";
      out.push(`  [${p.layer}, ${p.row}, ${p.column}]  ${status}`);
    }
  } else if (r.modelId) out.push("", `no published coordinates for ${r.modelId} (see \`superweight directory\`)`);

  out.push("");
  for (const [i, p] of r.prompts.entries())
    if (p.meanNll !== null && p.meanNllCandidatesZeroed !== null && r.superWeights.length) {
      const which = r.prompts.length > 1 ? `prompt ${i + 1} ` : "prompt ";
      out.push(
        `${which}${short(p.label)}: mean NLL ${p.meanNll.toFixed(4)} → ${p.meanNllCandidatesZeroed.toFixed(4)} with every candidate zeroed (${plural(p.iterations, "pass")})`,
      );
    }
  const read = `${r.layerPasses.toFixed(2)} layer-passes, weights read ${r.weightPasses.toFixed(2)}× = ${(r.bytesRead / 1e9).toFixed(2)} GB`;
  out.push(`${plural(r.forwardPasses, "forward run")} (${read}) in ${r.seconds.toFixed(2)} s`);
  return out.join("\n");
}

/** Most expert rows shown before the table keeps only the experts that matter. */
const ALL_EXPERTS_UP_TO = 48;

/** Per sparse layer and expert, the maxima of its down projection over its routed tokens (before the routing
 * weight), marking an expert where both spikes pass the threshold; and how many experts each pass read. */
function expertsSection(r: ScanReport): string[] {
  const out = ["", "experts routed to per pass (only their weights are read):"];
  r.iterations.forEach((passes, p) => {
    const counts = passes.map((i) => (i.experts ? `${i.experts.touched}/${i.experts.total}` : "-")).join(", ");
    out.push(`  ${r.prompts.length > 1 ? `prompt ${p + 1}: ` : ""}${counts} (passes 1..${passes.length})`);
  });
  const sparse = r.layers.filter((l): l is LayerSpikes & Required<Pick<LayerSpikes, "experts">> => !!l.experts);
  const rows = sparse.reduce((n, l) => n + l.experts.length, 0);
  const over = (v: number) => v > r.threshold;
  const shown = (l: LayerSpikes, e: NonNullable<LayerSpikes["experts"]>[number]) =>
    rows <= ALL_EXPERTS_UP_TO ||
    over(e.downProjInput.max) ||
    over(e.downProjOutput.max) ||
    e === l.experts!.reduce((a, b) => (b.downProjOutput.max > a.downProjOutput.max ? b : a));
  const table: string[][] = [];
  let hidden = 0;
  for (const l of sparse) {
    for (const e of l.experts) {
      if (!shown(l, e)) {
        hidden++;
        continue;
      }
      const mark = over(e.downProjInput.max) && over(e.downProjOutput.max) ? " *" : "";
      table.push([
        String(l.layer),
        `${e.expert}${mark}`,
        String(e.tokens),
        num(e.downProjInput.max),
        String(e.downProjInput.token),
        String(e.downProjInput.channel),
        num(e.downProjOutput.max),
        String(e.downProjOutput.token),
        String(e.downProjOutput.channel),
      ]);
    }
    const b = l.blockOutput;
    if (b) table.push([String(l.layer), "block", "", "", "", "", num(b.max), String(b.token), String(b.channel)]);
  }
  out.push("per-expert max |down_proj input| / |output| over its routed tokens, before the routing weight");
  out.push(`(full model, first prompt; * = both above ${r.threshold}; block = the layer's whole sparse output):`);
  const headers = ["layer", "expert", "tokens", "max |in|", "token", "channel", "max |out|", "token", "row"];
  out.push(formatTable(headers, table).replace(/^/gm, "  "));
  if (hidden) out.push(`  (${hidden} more experts stay below ${r.threshold}: not shown; --json has them all)`);
  return out;
}

function shortEvidence(w: ScannedWeight): string {
  const e = w.evidence;
  const parts: string[] = [];
  if (!e.sameToken) parts.push("spikes on different tokens");
  if (e.residualAfter !== null) parts.push(`resid ${num(e.residualBefore)}→${num(e.residualAfter)}`);
  if (e.laterLayers > 0) parts.push(`persists ${e.persistsLayers}/${e.laterLayers}`);
  else parts.push("last layer");
  if (e.shrink !== null) parts.push(`zeroed: act ${e.shrink >= 0 ? "−" : "+"}${Math.abs(Math.round(100 * e.shrink))}%`);
  if (e.nllChange !== null) parts.push(`NLL ${e.nllChange >= 0 ? "+" : ""}${(100 * e.nllChange).toFixed(1)}%`);
  return parts.join(", ");
}

/** The report as one JSON object (the `--json` output). */
export function scanJson(r: ScanReport): string {
  return JSON.stringify(r);
}
