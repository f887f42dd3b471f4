// `superweight scan`: find super weights and super activations from forward passes, no data set.
import { Command, Option } from "commander";
import { scan, DEFAULT_PROMPT, type ScanResult, type ScannedWeight } from "../superweight/scan.js";
import { formatTable } from "../report/table.js";
import { sparkline } from "../report/sparkline.js";
import { progress, type Progress } from "../report/progress.js";
import { collect, inputs, numberOption, openModel, type OpenedModel } from "./common.js";

interface ScanOptions {
  prompt: string[]; ids: string[]; threshold: number; maxIterations: number;
  json?: boolean; demo?: boolean; download?: boolean; modelId?: string;
}

export function scanCommand(): Command {
  return new Command("scan")
    .description("find super weights: the paper's rule on down_proj spikes, iterated, each candidate classified by its activation and a causal check")
    .argument("[model]", "checkpoint folder or Hugging Face model id (in the local cache)")
    .option("--demo", "use the embedded demo model (built on first use, no download)")
    .option("-p, --prompt <text>", `prompt (repeatable; default "${DEFAULT_PROMPT}")`, collect, [])
    .option("--ids <ids>", "token ids instead of text, e.g. 1,2,3 (repeatable)", collect, [])
    .addOption(new Option("--threshold <x>", "spike threshold on max |activation|").default(50).argParser(numberOption("--threshold", (n) => n > 0, "a positive number")))
    .addOption(new Option("--max-iterations <n>", "zero what was found and rerun at most this many times").default(10).argParser(numberOption("--max-iterations", (n) => Number.isInteger(n) && n >= 1, "an integer ≥ 1")))
    .option("--model-id <id>", "the Hugging Face model id, to check the published coordinates (default: from the cache path or config.json)")
    .option("--download", "download the model from the Hugging Face Hub when it is not in the local cache")
    .option("--json", "print one JSON object")
    .action(async (ref: string | undefined, o: ScanOptions) => {
      const opened = await openModel(ref, o);
      try {
        const list = inputs(opened, o.prompt, o.ids, DEFAULT_PROMPT);
        const quiet = (o.json && !process.stderr.isTTY) || process.env.SUPERWEIGHT_PROGRESS === "0";
        // A bar per sweep over the layers (on a terminal), and a line per pass.
        const layers = opened.model.spec.layers;
        let bar: Progress | undefined;
        const result = await scan(opened.model, list, {
          threshold: o.threshold, maxIterations: o.maxIterations, modelId: opened.modelId,
          tokenText: opened.tokenizer ? (id) => opened.tokenizer!.tokenText(id) : undefined,
          onProgress: quiet ? undefined : (m) => process.stderr.write(`scan: ${m}\n`),
          onLayer: quiet ? undefined : (layer, from) => {
            if (layer === from) bar = progress(`layers ${from}-${layers - 1}`, layers - from);
            bar!.tick(`layer ${layer}`);
            if (layer === layers - 1) bar!.stop();
          },
        });
        process.stdout.write((o.json ? JSON.stringify(toJson(opened, result)) : render(opened, result)) + "\n");
      } finally {
        opened.model.close();
      }
    });
}

function toJson(opened: OpenedModel, r: ScanResult) {
  const { model } = opened;
  return {
    model: model.folder,
    modelId: opened.modelId ?? null,
    modelType: model.spec.modelType,
    prompts: r.prompts,
    threshold: r.threshold,
    maxIterations: r.maxIterations,
    coordinates: model.arch.layout === "nk"
      ? "row = output channel, column = input channel; weight[row, column]"
      : "row = output channel, column = input channel; Conv1D stored [in, out], so the weight is tensor[column, row] (see index)",
    forwardPasses: r.forwardRuns,
    layerPasses: r.layerPasses,
    weightPasses: r.weightPasses,
    bytesRead: r.bytesRead,
    seconds: r.seconds,
    superWeights: r.superWeights,
    layers: r.layers,
    iterations: r.detections.map((d) => d.iterations),
    published: r.published ?? null,
  };
}

const short = (label: string) => JSON.stringify(label.length > 60 ? `${label.slice(0, 57)}...` : label);
const num = (x: number, digits = 1) => (Math.abs(x) >= 1000 ? x.toFixed(0) : x.toFixed(digits));

function render(opened: OpenedModel, r: ScanResult): string {
  const { model } = opened;
  const s = model.spec;
  const out: string[] = [];
  out.push(`${opened.label}${opened.modelId && opened.modelId !== opened.label ? ` (${opened.modelId})` : ""}: ${s.modelType}, ${s.layers} layers, hidden ${s.hidden}, intermediate ${s.intermediate}`);
  out.push(`threshold ${r.threshold}; ${r.prompts.length} prompt${r.prompts.length > 1 ? "s" : ""}: ${r.prompts.map((p) => short(p.label)).join(", ")}`);
  out.push("");
  if (!r.superWeights.length) out.push(`no layer has both down_proj spikes above ${r.threshold}: no super weight candidates.`);
  else {
    const idx = model.arch.layout === "kn" ? " (stored [in, out]: tensor[column, row])" : "";
    out.push(`candidates (row = output channel, column = input channel${idx}):`);
    const rows = r.superWeights.map((w) => [
      w.tensor, `[${w.row}, ${w.column}]`, w.value.toPrecision(4),
      `${num(w.inputActivation)} @${w.inputToken}`, `${num(w.outputActivation)} @${w.token}${w.tokenText ? ` ${JSON.stringify(w.tokenText)}` : ""}`,
      String(w.iteration), w.class, `${w.prompts.length}/${r.prompts.length}`, shortEvidence(w),
    ]);
    const headers = ["tensor", "[row, column]", "weight", "input @token", "output @token", "iter", "class", "prompts", "evidence"];
    // The prompts column only says something when there are several.
    const keep = (_: string, i: number) => r.prompts.length > 1 || i !== 7;
    out.push(formatTable(headers.filter(keep), rows.map((row) => row.filter(keep))));
    out.push("");
    for (const w of r.superWeights) {
      out.push(`${w.class === "super" ? "SUPER  " : "outlier"} layer ${w.layer} [${w.row}, ${w.column}]:`);
      for (const reason of w.reasons) out.push(`  - ${reason}`);
      out.push(`  - ${w.nllNote}`);
      const res = w.evidence.residual.map((v) => (v === null ? "·" : num(v)));
      out.push(`  residual[${w.row}] at token ${w.token} after each layer: ${res.join(" ")}`);
      const zeroed = w.evidence.residualZeroed.map((v) => (v === null ? "·" : num(v)));
      out.push(`  ...with it zeroed:${" ".repeat(Math.max(1, String(w.row).length + String(w.token).length + 22))}${zeroed.join(" ")}`);
    }
  }
  out.push("");
  out.push("max |down_proj input| / |output| per layer (log scale), full model, first prompt:");
  const ins = r.layers.map((l) => l.downProjInput.max), outs = r.layers.map((l) => l.downProjOutput.max);
  out.push(`  input  ${sparkline(ins)}  max ${num(Math.max(...ins))} (layer ${ins.indexOf(Math.max(...ins))})`);
  out.push(`  output ${sparkline(outs)}  max ${num(Math.max(...outs))} (layer ${outs.indexOf(Math.max(...outs))})`);
  const spikes = r.layers.filter((l) => l.downProjInput.max > r.threshold || l.downProjOutput.max > r.threshold);
  if (spikes.length)
    out.push(formatTable(["layer", "max |in|", "token", "channel", "max |out|", "token", "channel"], spikes.map((l) => [
      String(l.layer), num(l.downProjInput.max), String(l.downProjInput.token), String(l.downProjInput.channel),
      num(l.downProjOutput.max), String(l.downProjOutput.token), String(l.downProjOutput.channel)])).replace(/^/gm, "  "));

  if (r.published) {
    out.push("", `published super weights of ${r.published.modelId} (${r.published.source}):`);
    for (const p of r.published.coordinates)
      out.push(`  [${p.layer}, ${p.row}, ${p.column}]  ${p.found ? `found (${p.class})` : "NOT FOUND by this scan"}`);
  } else if (opened.modelId) out.push("", `no published coordinates for ${opened.modelId} (see \`superweight directory\`)`);

  out.push("");
  for (const p of r.prompts)
    if (p.meanNll !== null && p.meanNllCandidatesZeroed !== null && r.superWeights.length)
      out.push(`prompt ${short(p.label)}: mean NLL ${p.meanNll.toFixed(4)} → ${p.meanNllCandidatesZeroed.toFixed(4)} with every candidate zeroed (${p.iterations} passes)`);
  out.push(`${r.forwardRuns} forward runs (${r.layerPasses.toFixed(2)} layer-passes, weights read ${r.weightPasses.toFixed(2)}× = ${(r.bytesRead / 1e9).toFixed(2)} GB) in ${r.seconds.toFixed(2)} s`);
  return out.join("\n");
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
