// A report as one self-contained HTML page: no script, font, image or style from anywhere else (it opens
// offline), the figures as inline SVG, light and dark themes from prefers-color-scheme, a print stylesheet, and
// the report's data embedded as JSON. Written atomically.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, isAbsolute, join } from "node:path";
import type { ScannedWeight } from "../superweight/scan.js";
import type { ReportData } from "./html-data.js";
import {
  PALETTE,
  REFERENCE,
  activationSpec,
  blockText,
  quantizationPoints,
  quantizationSpec,
  renderSvg,
  shiftSpec,
  spikesSpec,
  sweepSpec,
} from "./figures.js";

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const num = (x: number | null, digits = 4) =>
  x === null || !Number.isFinite(x) ? "—" : Math.abs(x) >= 1000 ? x.toFixed(0) : x.toFixed(digits);
const act = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(1) : x.toFixed(2));
const signed = (x: number, digits = 4) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(digits)}`;
const pct = (p: number) => `${(100 * p).toPrecision(3)}%`;
const plural = (n: number, word: string, many = `${word}s`) => `${n} ${n === 1 ? word : many}`;
const coord = (w: { layer: number; expert?: number | "shared"; row: number; column: number }) =>
  `[${[w.layer, ...(w.expert !== undefined ? [w.expert] : []), w.row, w.column].join(", ")}]`;

function table(headers: string[], rows: string[][], numeric: boolean[] = []): string {
  const cell = (tag: string, c: string, i: number) => `<${tag}${numeric[i] ? ' class="n"' : ""}>${c}</${tag}>`;
  return (
    `<table><thead><tr>${headers.map((h, i) => cell("th", h, i)).join("")}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((c, i) => cell("td", c, i)).join("")}</tr>`).join("") +
    "</tbody></table>"
  );
}

function figure(id: string, n: string, svg: string, caption: string, data: string): string {
  return (
    `<figure id="${id}"><div class="chart">${svg}</div><figcaption><b>Figure ${n}.</b> ${caption}` +
    `</figcaption><details class="data"><summary>Numbers</summary>${data}</details></figure>`
  );
}

/** The page for a report: renders the figures, then lays out the sections. */
export async function renderReportHtml(r: ReportData): Promise<string> {
  const { scan, eval: e, figures: f } = r;
  const supers = scan.superWeights.filter((w) => w.class === "super");
  const sections: { id: string; title: string; body: string }[] = [];
  const L = scan.shape.layers;

  sections.push({ id: "super-weights", title: "Super weights", body: superWeightSection(r) });

  const spikes = f.spikes.layers;
  sections.push({
    id: "fig3",
    title: "Massive activations per layer",
    body: figure(
      "figure-3",
      "3",
      await renderSvg(spikesSpec(spikes, f.spikes.threshold)),
      `The largest |down_proj input| and |down_proj output| in each of the ${L} layers, in the full model on the ` +
        `first prompt${
          scan.shape.experts ? " (in a sparse layer the largest over its experts, before the routing " + "weight)" : ""
        }; the dashed line is the detection threshold (${f.spikes.threshold}). A super weight sits ` +
        "in a layer where both spike: its input channel is the input spike's channel, its row the output spike's.",
      table(
        ["layer", "max |input|", "token", "channel", "max |output|", "token", "channel"],
        spikes.map((l) =>
          [l.layer, act(l.input), l.inputToken, l.inputChannel, act(l.output), l.outputToken, l.outputChannel].map(
            String,
          ),
        ),
        [true, true, true, true, true, true, true],
      ),
    ),
  });

  if (f.superActivation.length) {
    const traces = f.superActivation;
    sections.push({
      id: "fig4",
      title: "The super activation through the layers",
      body: figure(
        "figure-4",
        "2 and 4",
        await renderSvg(activationSpec(traces)),
        "The residual stream at each super weight's output channel, at the token where its activation peaks, " +
          "after every layer — in the original model and with the super weights zeroed " +
          `(${supers.map(coord).join(", ")}), on the first prompt. In the paper a super activation appears at its ` +
          "layer, is carried by the skip connections to the last layer, and does not form without its super weight. " +
          `Here, after the last layer: ${traces
            .map(
              (t) =>
                `channel ${t.channel} is ${num(t.full[L - 1], 1)} in the ` +
                `original model and ${num(t.zeroed[L - 1], 1)} with the super weights zeroed`,
            )
            .join("; ")}.` +
          (traces.some((t) => t.atDetection)
            ? " A weight found in a later scan pass makes its activation once the earlier finds are zeroed: the " +
              "third line is the residual in the model that pass ran."
            : ""),
        traces
          .map(
            (t) =>
              `<p>channel ${t.channel}, token ${t.token}:</p>` +
              table(
                ["after layer", ...t.full.map((_, l) => String(l))],
                [
                  ["original", ...t.full.map((v) => num(v, 2))],
                  ["zeroed", ...t.zeroed.map((v) => num(v, 2))],
                  ...(t.atDetection
                    ? [[`pass ${t.atDetection.pass}`, ...t.atDetection.byLayer.map((v) => num(v, 2))]]
                    : []),
                ],
                [false, ...t.full.map(() => true)],
              ),
          )
          .join(""),
      ),
    });
  }

  if (f.shift) {
    const s = f.shift;
    const mass = s.stopwordMass
      ? ` The English stopwords' share of the probability goes from ${pct(s.stopwordMass.before)} to ` +
        `${pct(s.stopwordMass.after)}.`
      : " The model has no tokenizer, so tokens are shown by id and stopwords are not marked.";
    sections.push({
      id: "fig5",
      title: "Next-token probabilities with the super weights zeroed",
      body: figure(
        "figure-5",
        "5",
        await renderSvg(shiftSpec(s)),
        `The tokens whose average next-token probability (after the last position of ${plural(s.prompts, "prompt")})` +
          ` rises and falls most when the super weights are zeroed${
            s.stopwordMass ? " (stopwords in bold, " + "their bars in the stopword colour)" : ""
          }; ` +
          "KL(original ‖ zeroed) = " +
          `${s.kl.toFixed(4)} nats.${mass}`,
        table(
          ["token", "id", "", "original", "zeroed", "change", "stopword"],
          s.tokens.map((t) => [
            esc(t.label),
            String(t.id),
            t.direction,
            pct(t.before),
            pct(t.after),
            signed(100 * (t.after - t.before), 2) + " pp",
            t.stopword === null ? "—" : t.stopword ? "yes" : "no",
          ]),
          [false, true, false, true, true, true, false],
        ),
      ),
    });
  }

  if (f.sweep) {
    const s = f.sweep;
    sections.push({
      id: "fig6",
      title: "Scaling the super weights",
      body: figure(
        "figure-6",
        "6",
        await renderSvg(sweepSpec(s)),
        `Perplexity of ${s.scored === "prompts" ? "the prompts" : esc(s.scored)} (${plural(s.tokens, "token")} ` +
          "scored) with the super weights multiplied by each factor; the dashed line is the original model (×1).",
        table(
          ["factor", "mean NLL", "perplexity"],
          s.points.map((p) => [`×${p.factor}`, p.meanNll.toFixed(4), num(p.perplexity)]),
          [true, true, true],
        ),
      ),
    });
  }

  if (f.quantization) {
    const q = f.quantization;
    const { byBlock, drawn } = quantizationPoints(q);
    const left = q.configurations.length - drawn.length;
    sections.push({
      id: "fig7",
      title: "Quantization",
      body: figure(
        "figure-7",
        "7",
        await renderSvg(quantizationSpec(q)),
        `Perplexity of each quantized configuration against ${byBlock ? "its block size" : "its bits per weight"}` +
          `, from ${q.files.map((file) => `<code>${esc(basename(file))}</code>`).join(", ")}; the dashed line is ` +
          "the unquantized model." +
          (left ? ` (${plural(left, "configuration")} without a block size: in the ` + "numbers only.)" : ""),
        table(
          ["configuration", "bits", "block", "bits/weight", "size", "perplexity", "mean NLL", "KL"],
          q.configurations.map((c) => [
            esc(c.label),
            c.bits === null ? "—" : String(c.bits),
            c.block === null ? "—" : blockText(c.block),
            c.bitsPerWeight.toFixed(2),
            `${(c.bytes / 1e6).toFixed(2)} MB`,
            num(c.perplexity),
            num(c.meanNll),
            num(c.kl),
          ]),
          [false, true, true, true, true, true, true, true],
        ),
      ),
    });
  }

  if (e.perplexity) sections.push({ id: "perplexity", title: "Perplexity", body: perplexitySection(r) });
  if (scan.superWeights.length)
    sections.push({ id: "evidence", title: "Evidence per candidate", body: evidenceSection(r) });
  sections.push({ id: "run", title: "This run", body: runSection(r) });

  // A folder or file the user named: its last part (the full path is in "This run").
  const name = isAbsolute(r.model.label) || r.model.label.startsWith(".") ? basename(r.model.label) : r.model.label;
  const title = `Super weights of ${name}`;
  const nav = sections.map((s) => `<a href="#${s.id}">${esc(s.title)}</a>`).join("");
  const body = sections.map((s) => `<section id="${s.id}"><h2>${esc(s.title)}</h2>${s.body}</section>`).join("\n");
  const data = JSON.stringify(r).replace(/</g, "\\u003c");
  return (
    `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>${esc(title)}</h1><p class="sub">${esc(modelLine(r))}</p><p class="lead">${headline(r)}</p></header>
<nav>${nav}</nav>
<main>
${body}
</main>
<footer>Made by superweight ${esc(r.tool.version)} on ${esc(r.created)} — the figures follow Yu et al., ` +
    `“The Super Weight in Large Language Models” (arXiv 2411.07191). The data behind this page is in the ` +
    `<code>report-data</code> element of its source.</footer>
<script type="application/json" id="report-data">${data}</script>
</body>
</html>
`
  );
}

function modelLine(r: ReportData): string {
  const { shape } = r.scan;
  const moe = shape.experts ? `, ${shape.experts} experts of ${shape.expertIntermediate} (top-${shape.topK})` : "";
  const id = r.model.modelId && r.model.modelId !== r.model.label ? `${r.model.modelId} · ` : "";
  return (
    `${id}${r.model.modelType}: ${shape.layers} layers, hidden ${shape.hidden}, intermediate ` +
    `${shape.intermediate}${moe}`
  );
}

function headline(r: ReportData): string {
  const supers = r.scan.superWeights.filter((w) => w.class === "super");
  const outliers = r.scan.superWeights.length - supers.length;
  const more = outliers ? `; ${plural(outliers, "other candidate")} classified outlier` : "";
  if (!supers.length) return `No super weight found at threshold ${r.scan.threshold}${more}.`;
  const list = supers.map((w) => `<b>${coord(w)}</b>`).join(", ");
  const nll = r.eval.prompts?.meanNll;
  const a = r.zeroedArm;
  const effect =
    nll && a !== null && nll[0] !== null && nll[a] !== null
      ? ` Zeroing ${supers.length === 1 ? "it" : "them"} moves the prompts' mean NLL from ${nll[0].toFixed(4)} to ` +
        `${nll[a]!.toFixed(4)}.`
      : "";
  return `${plural(supers.length, "super weight")} ([layer, row, column] of down_proj): ${list}${more}.${effect}`;
}

function superWeightSection(r: ReportData): string {
  const { scan } = r;
  const parts: string[] = [];
  if (!scan.superWeights.length)
    parts.push(`<p>No down projection has both spikes above ${scan.threshold}: no candidates.</p>`);
  else {
    const many = scan.prompts.length > 1;
    const headers = [
      "class",
      "layer",
      "row",
      "column",
      "weight",
      "input @token",
      "output @token",
      "pass",
      ...(many ? ["prompts"] : []),
      "NLL with it zeroed",
    ];
    const rows = scan.superWeights.map((w) => [
      `<span class="badge ${w.class}">${w.class}</span>`,
      String(w.layer) + (w.expert !== undefined ? ` <small>expert ${w.expert}</small>` : ""),
      String(w.row),
      String(w.column),
      w.value.toPrecision(4),
      `${act(w.inputActivation)} @${w.inputToken}`,
      `${act(w.outputActivation)} @${w.token}` +
        (w.tokenText !== undefined ? ` <code>${esc(JSON.stringify(w.tokenText))}</code>` : ""),
      String(w.iteration),
      ...(many ? [`${w.prompts.length}/${scan.prompts.length}`] : []),
      nllChange(w),
    ]);
    parts.push(
      table(
        headers,
        rows,
        headers.map((h) => ["layer", "row", "column", "weight", "pass"].includes(h)),
      ),
    );
    parts.push(
      `<p class="note">row = output channel, column = input channel of <code>down_proj</code>` +
        `${scan.storedTransposed ? " (stored [in, out]: the tensor index is [column, row])" : ""}; “pass” is the ` +
        "scan iteration that found it (a later pass runs with the earlier finds zeroed).</p>",
    );
  }
  parts.push("<h3>Published coordinates</h3>", directoryCheck(r));
  for (const note of r.notes) parts.push(`<p class="note">Note: ${esc(note)}.</p>`);
  return parts.join("");
}

function nllChange(w: ScannedWeight): string {
  const c = w.evidence.nllChange;
  return c === null ? "—" : `${c >= 0 ? "+" : "−"}${Math.abs(100 * c).toFixed(1)}% (${w.evidence.nllEffect})`;
}

function directoryCheck(r: ReportData): string {
  const p = r.scan.published;
  if (!p) {
    return r.model.modelId
      ? `<p>No published coordinates for <code>${esc(r.model.modelId)}</code> (see <code>superweight directory` +
          "</code>).</p>"
      : "<p>The model's Hugging Face id is unknown (give <code>--model-id</code>), so no published coordinates " +
          "were checked.</p>";
  }
  const rows = p.coordinates.map((c) => [
    coord(c),
    c.found
      ? `found (${c.class})`
      : c.fits
        ? "not found by this scan"
        : "cannot exist in this model (outside its shapes: wrong model id?)",
  ]);
  return `<p>${esc(p.modelId)}, from ${esc(p.source)}:</p>` + table(["[layer, row, column]", "this scan"], rows);
}

function perplexitySection(r: ReportData): string {
  const p = r.eval.perplexity!;
  const shown = r.eval.arms.filter((a) => a.role !== "null");
  const rows = shown.map((a) => {
    const s = p.arms[a.id];
    const name = a.role === "baseline" ? "original" : a.role === "intervention" ? "super weights zeroed" : a.label;
    return [esc(name), s.meanNll.toFixed(4), num(s.perplexity), a.id ? signed(s.deltaMeanNll) : ""];
  });
  return (
    `<p>${esc(p.name)}: ${plural(p.tokens, "token")} in ${plural(p.windows, "window")} of ${p.ctx} positions ` +
    `(stride ${p.stride}${p.bos !== null ? `, each window starting with BOS ${p.bos}` : ""}).</p>` +
    table(["model", "mean NLL", "perplexity", "Δ mean NLL"], rows, [false, true, true, true])
  );
}

function evidenceSection(r: ReportData): string {
  const { scan } = r;
  return scan.superWeights
    .map((w) => {
      const p =
        scan.prompts.length > 1
          ? ` (evidence from prompt ${(w.perPrompt.find((v) => v.class === w.class) ?? w.perPrompt[0]).prompt + 1})`
          : "";
      const items = [...w.reasons, w.nllNote];
      if (w.iteration > 1)
        items.push(
          `found in pass ${w.iteration}: its baseline is the model with the earlier passes' candidates zeroed`,
        );
      const trace = table(
        ["after layer", ...w.evidence.residual.map((_, l) => String(l))],
        [
          ["residual", ...w.evidence.residual.map((v) => num(v, 2))],
          ["it alone zeroed", ...w.evidence.residualZeroed.map((v) => num(v, 2))],
        ],
        [false, ...w.evidence.residual.map(() => true)],
      );
      return (
        `<div class="candidate"><h3><span class="badge ${w.class}">${w.class}</span> layer ${w.layer}` +
        `${w.expert !== undefined ? ` expert ${w.expert}` : ""} [${w.row}, ${w.column}]${p}</h3>` +
        `<p class="note"><code>${esc(w.tensor)}</code>[${w.index.join(", ")}] = ${w.value}</p>` +
        `<ul>${items.map((i) => `<li>${esc(i)}</li>`).join("")}</ul>` +
        `<p class="note">residual[${w.row}] at token ${w.token}, in the model as pass ${w.iteration} sees it:</p>` +
        `${trace}</div>`
      );
    })
    .join("");
}

function runSection(r: ReportData): string {
  const { scan, eval: e } = r;
  const prompts = table(
    ["#", "prompt", "tokens", "mean NLL"],
    scan.prompts.map((p, i) => [String(i + 1), esc(p.label), String(p.ids.length), num(p.meanNll)]),
    [true, false, true, true],
  );
  const size = (b: number) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : `${(b / 1e6).toFixed(1)} MB`);
  return (
    prompts +
    "<ul>" +
    `<li>scan: threshold ${scan.threshold}, at most ${scan.maxIterations} passes; ${plural(
      scan.forwardPasses,
      "forward run",
    )}, weights read ${scan.weightPasses.toFixed(2)}× (${size(scan.bytesRead)}) in ` +
    `${scan.seconds.toFixed(2)} s</li>` +
    `<li>eval: ${plural(e.arms.length, "arm")} (${e.arms.map((a) => esc(a.label)).join("; ")}), ` +
    `${plural(e.passes, "pass", "passes")}, ${size(e.bytesRead)} read in ${e.seconds.toFixed(2)} s</li>` +
    `<li>checkpoint: <code>${esc(r.model.path)}</code></li></ul>`
  );
}

/** The palette's light / dark values (the SVG holds the light ones as written by figures.ts). */
const DARK = ["#58a6ff", "#ff7b72", "#56d364", "#bc8cff", "#ffa657", "#d8a47f"];
const themeVars = (values: readonly string[]) => values.map((c, i) => `--c${i + 1}:${c};`).join("");
const paletteRules = PALETTE.map(
  (c, i) => `.chart [fill="${c}"]{fill:var(--c${i + 1})}.chart [stroke="${c}"]{stroke:var(--c${i + 1})}`,
).join("");

const LIGHT =
  `--bg:#ffffff;--fg:#1f2328;--muted:#59636e;--border:#d1d9e0;--panel:#f6f8fa;--grid:#e6e8eb;` +
  `--axis:#8c959f;--ref:${REFERENCE};--super:#cf222e;--outlier:#6e7781;${themeVars(PALETTE)}`;

const STYLE =
  `
:root{color-scheme:light dark;${LIGHT}}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--border:#3d444d;--panel:#151b23;` +
  `--grid:#262c36;--axis:#656c76;--ref:#8b949e;--super:#ff7b72;--outlier:#9198a1;${themeVars(DARK)}}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:980px;padding:24px 20px 48px;background:var(--bg);color:var(--fg);` +
  `font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.6rem;margin:0 0 4px}h2{font-size:1.25rem;margin:36px 0 12px;padding-bottom:4px;` +
  `border-bottom:1px solid var(--border)}h3{font-size:1rem;margin:20px 0 8px}
.sub,.note,footer,figcaption{color:var(--muted)}.sub{margin:0}.lead{font-size:1.05rem}
nav{display:flex;flex-wrap:wrap;gap:6px 16px;padding:8px 0;border-top:1px solid var(--border);` +
  `border-bottom:1px solid var(--border);font-size:.9rem}
a{color:var(--c1)}code{font:.85em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
table{border-collapse:collapse;margin:8px 0;font-size:.85rem;font-variant-numeric:tabular-nums;display:block;` +
  `overflow-x:auto;max-width:100%}
th,td{padding:3px 10px;border-bottom:1px solid var(--border);text-align:left;white-space:nowrap}
th{font-weight:600}.n{text-align:right}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:.8rem;font-weight:600;color:var(--bg)}
.badge.super{background:var(--super)}.badge.outlier{background:var(--outlier)}
figure{margin:12px 0 24px}.chart svg{max-width:100%;height:auto;display:block}
figcaption{font-size:.9rem;margin-top:6px}
details.data{margin-top:6px;font-size:.9rem}summary{cursor:pointer;color:var(--muted)}
.candidate{padding:2px 14px 8px;margin:10px 0;border:1px solid var(--border);border-radius:6px;background:var(--panel)}
.candidate ul{margin:4px 0;padding-left:20px}
.chart text{fill:var(--fg)}.chart .role-axis-grid line{stroke:var(--grid)}
.chart .role-axis-domain line,.chart .role-axis-tick line{stroke:var(--axis)}
.chart [stroke="${REFERENCE}"]{stroke:var(--ref)}${paletteRules}
footer{margin-top:48px;font-size:.8rem;border-top:1px solid var(--border);padding-top:8px}
@media print{:root{${LIGHT}}body{max-width:none;padding:0;font-size:11pt}nav,details.data{display:none}` +
  `figure,table,.candidate{break-inside:avoid}h2{break-after:avoid}a{color:inherit;text-decoration:none}}
`;

/** Write the page next to `path` under a temporary name, then rename it into place. */
export function writeReportHtml(path: string, html: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, "w");
    try {
      writeSync(fd, html);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
