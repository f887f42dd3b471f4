// The report's figures as vega-lite specifications, rendered to static SVG at build time (vega's headless
// renderer: no browser, no script in the page). Colours are a fixed palette that the page's stylesheet maps to
// its light, dark and print themes (html.ts), matching on the attribute values written here; each data mark
// carries a native <title> tooltip. Every data mark has a name (MARKS) so that its items can be counted.
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { ActivationTrace, ShiftFigure, SpikePoint, SweepFigure } from "./html-data.js";
import type { QuantComparison } from "./figures-quantize.js";

/** The data colours as written into the SVG; html.ts maps each to a theme variable. */
export const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"] as const;
/** Reference lines (threshold, baseline). */
export const REFERENCE = "#7f7f7f";

/** The name of each figure's data mark; vega writes it as the class `<name>_marks` of the marks' group (Figure 4
 * has a panel per super activation: `activation0_marks`, `activation1_marks`, ...; names must be unique). */
export const MARKS = {
  spikes: "spikes",
  activation: "activation",
  shiftTokens: "shift_tokens",
  stopwordMass: "stopword_mass",
  sweep: "sweep",
  quantization: "quantization",
} as const;

const WIDTH = 560,
  HEIGHT = 240;

const CONFIG = {
  font: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal", titlePadding: 8 },
  legend: { orient: "bottom", labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal", labelLimit: 0 },
  header: { labelFontSize: 12, titleFontSize: 12 },
  point: { filled: true, size: 42 },
} as const;

const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(1) : Math.abs(x) >= 1 ? x.toFixed(3) : x.toPrecision(3));
const colors = (domain: string[]) => ({ domain, range: domain.map((_, i) => PALETTE[i % PALETTE.length]) });

function spec(body: Record<string, unknown>): TopLevelSpec {
  return { background: "transparent", padding: 4, config: CONFIG, ...body } as TopLevelSpec;
}

/** Figure 3: max |down_proj input| and |output| per layer, with the detection threshold. */
export function spikesSpec(layers: SpikePoint[], threshold: number): TopLevelSpec {
  const sides = ["down_proj input", "down_proj output"];
  const values = layers.flatMap((l) => [
    {
      layer: l.layer,
      side: sides[0],
      max: l.input,
      tip: `layer ${l.layer} input: ${fmt(l.input)} at token ` + `${l.inputToken}, channel ${l.inputChannel}`,
    },
    {
      layer: l.layer,
      side: sides[1],
      max: l.output,
      tip: `layer ${l.layer} output: ${fmt(l.output)} at token ` + `${l.outputToken}, channel ${l.outputChannel}`,
    },
  ]);
  const x = { field: "layer", type: "ordinal", title: "layer", axis: { labelAngle: 0 } };
  const color = { field: "side", type: "nominal", title: null, scale: colors(sides) };
  return spec({
    width: WIDTH,
    height: HEIGHT,
    layer: [
      {
        data: { values },
        mark: { type: "line", strokeWidth: 1.5 },
        encoding: { x, y: { field: "max", type: "quantitative" }, color },
      },
      {
        data: { values },
        name: MARKS.spikes,
        mark: { type: "point" },
        encoding: {
          x,
          y: { field: "max", type: "quantitative", title: "max |activation|" },
          color,
          description: { field: "tip" },
        },
      },
      {
        data: { values: [{ threshold }] },
        mark: { type: "rule", strokeDash: [4, 3], color: REFERENCE },
        encoding: { y: { field: "threshold", type: "quantitative" } },
      },
    ],
  });
}

/** Figures 2 and 4: each super activation's |residual| through the layers, with and without the super weights
 * (and, for a weight a later scan pass found, as that pass saw it: the earlier finds zeroed). One panel each. */
export function activationSpec(traces: ActivationTrace[]): TopLevelSpec {
  const series = ["original model", "super weights zeroed", "earlier scan finds zeroed"];
  const used = series.filter((_, s) => s < 2 || traces.some((t) => t.atDetection));
  const panel = (t: ActivationTrace, i: number) => {
    const lines = [t.full, t.zeroed, t.atDetection?.byLayer ?? []];
    const values = lines.flatMap((byLayer, s) =>
      byLayer.flatMap((v, layer) =>
        v === null
          ? []
          : [
              {
                series: series[s],
                layer,
                magnitude: Math.abs(v),
                tip: `${series[s]}, after layer ${layer}: ${fmt(v)}`,
              },
            ],
      ),
    );
    const x = { field: "layer", type: "ordinal", title: "after layer", axis: { labelAngle: 0 } };
    const y = { field: "magnitude", type: "quantitative", title: "|residual|" };
    const color = { field: "series", type: "nominal", title: null, scale: colors(used) };
    return {
      title: {
        text: `channel ${t.channel}, token ${t.token}: ${t.weights.map(where).join(", ")}`,
        fontSize: 12,
        fontWeight: "normal",
      },
      width: traces.length > 1 ? WIDTH / 2 - 40 : WIDTH,
      height: HEIGHT * 0.8,
      data: { values },
      layer: [
        { mark: { type: "line", strokeWidth: 1.5 }, encoding: { x, y, color } },
        {
          name: `${MARKS.activation}${i}`,
          mark: { type: "point" },
          encoding: { x, y, color, description: { field: "tip" } },
        },
      ],
    };
  };
  return spec({ concat: traces.map(panel), columns: 2 });
}

const where = (w: ActivationTrace["weights"][number]) =>
  `[${[w.layer, ...(w.expert !== undefined ? [w.expert] : []), w.row, w.column].join(", ")}]`;

/** Figure 5: the tokens whose probability rises and falls most, stopwords marked; and the stopword mass. */
export function shiftSpec(s: ShiftFigure): TopLevelSpec {
  const kinds = s.stopwordMass ? ["stopword", "other token"] : ["token"];
  const values = s.tokens.map((t) => ({
    label: t.label,
    change: t.after - t.before,
    kind: t.stopword === null ? "token" : t.stopword ? "stopword" : "other token",
    tip: `${t.label} (id ${t.id}): ${pct(t.before)} → ${pct(t.after)}`,
  }));
  const changes = values.map((v) => v.change);
  const tokens = {
    width: s.stopwordMass ? 380 : WIDTH,
    height: { step: 16 },
    data: { values },
    name: MARKS.shiftTokens,
    mark: { type: "bar" },
    encoding: {
      y: {
        field: "label",
        type: "nominal",
        sort: { field: "change", order: "descending" },
        title: null,
        axis: { labelLimit: 160, labelFontSize: 13, ...stopwordLabels(s) },
      },
      x: {
        field: "change",
        type: "quantitative",
        title: "change in average next-token probability",
        axis: { format: `+.${percentDecimals(Math.max(...changes, 0) - Math.min(...changes, 0))}~%`, tickCount: 5 },
      },
      color: {
        field: "kind",
        type: "nominal",
        title: null,
        scale: colors(kinds),
        ...(s.stopwordMass ? {} : { legend: null }),
      },
      description: { field: "tip" },
    },
  };
  if (!s.stopwordMass) return spec(tokens);
  const mass = [
    { when: "original", mass: s.stopwordMass.before },
    { when: "zeroed", mass: s.stopwordMass.after },
  ].map((m) => ({ ...m, tip: `stopword mass, ${m.when}: ${pct(m.mass)}` }));
  return spec({
    hconcat: [
      tokens,
      {
        width: 120,
        height: Math.max(120, 16 * values.length),
        data: { values: mass },
        name: MARKS.stopwordMass,
        mark: { type: "bar", color: PALETTE[0] },
        encoding: {
          x: { field: "when", type: "nominal", title: "super weights", sort: null, axis: { labelAngle: 0 } },
          y: {
            field: "mass",
            type: "quantitative",
            title: "stopword probability mass",
            axis: {
              format: `.${percentDecimals(Math.max(s.stopwordMass.before, s.stopwordMass.after))}~%`,
              tickCount: 5,
            },
          },
          description: { field: "tip" },
        },
      },
    ],
    resolve: { scale: { color: "independent" } },
  });
}

/** Decimals of a percent axis over a range of this width (in probability) so that its ~5 ticks read apart: a
 * small model's changes can be hundredths of a percent. */
function percentDecimals(span: number): number {
  return span > 0 ? Math.max(0, Math.min(6, Math.ceil(-Math.log10((100 * span) / 5)))) : 0;
}

/** A stopword's bar can be too short to see its colour: its axis label is bold, in the stopword colour. */
function stopwordLabels(s: ShiftFigure) {
  if (!s.stopwordMass) return {};
  const test = `indexof(${JSON.stringify(s.tokens.filter((t) => t.stopword).map((t) => t.label))}, datum.value) >= 0`;
  return {
    labelFontWeight: { condition: { test, value: "bold" }, value: "normal" },
    labelColor: { condition: { test, value: PALETTE[0] }, value: "#000000" },
  };
}

const pct = (p: number) => `${(100 * p).toPrecision(3)}%`;

/** Figure 6: perplexity as the super weights are scaled. */
export function sweepSpec(s: SweepFigure): TopLevelSpec {
  const values = s.points.map((p) => ({
    factor: p.factor,
    perplexity: p.perplexity,
    tip: `×${p.factor}: perplexity ${fmt(p.perplexity)}, mean NLL ${p.meanNll.toFixed(4)}`,
  }));
  // Ticks at the factors measured, as the paper's Figure 6 labels them.
  const x = {
    field: "factor",
    type: "quantitative",
    title: "super weights scaled by",
    axis: { values: s.points.map((p) => p.factor), format: "~g", labelOverlap: true },
  };
  const y = { field: "perplexity", type: "quantitative", title: `perplexity (${s.scored})`, scale: { zero: false } };
  return spec({
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    layer: [
      { mark: { type: "line", strokeWidth: 1.5, color: PALETTE[0] }, encoding: { x, y } },
      {
        name: MARKS.sweep,
        mark: { type: "point", color: PALETTE[0] },
        encoding: { x, y, description: { field: "tip" } },
      },
      {
        data: { values: [{ factor: 1 }] },
        mark: { type: "rule", strokeDash: [4, 3], color: REFERENCE },
        encoding: { x: { field: "factor", type: "quantitative" } },
      },
    ],
  });
}

/** Figure 7's points: against the block size when any configuration has one (those without are left out), else
 * against the bits per weight. */
export function quantizationPoints(q: QuantComparison) {
  const byBlock = q.configurations.some((c) => c.block !== null);
  return { byBlock, drawn: q.configurations.filter((c) => !byBlock || c.block !== null) };
}

/** A block size as the quantize options spell it: 65536 → "64K". */
export const blockText = (b: NonNullable<QuantComparison["configurations"][number]["block"]>) =>
  typeof b !== "number" ? b : b % 1048576 === 0 ? `${b / 1048576}M` : b % 1024 === 0 ? `${b / 1024}K` : String(b);

/** Figure 7: perplexity per quantization configuration, a line per method (and bit width): against the block size
 * (coarse to fine: one scale per tensor, per channel, then blocks from large to small) or the bits per weight. */
export function quantizationSpec(q: QuantComparison): TopLevelSpec {
  const { byBlock, drawn } = quantizationPoints(q);
  const values = drawn.map((c) => ({
    series: c.series,
    block: c.block === null ? null : blockText(c.block),
    bitsPerWeight: c.bitsPerWeight,
    perplexity: c.perplexity,
    tip:
      `${c.label}: perplexity ${fmt(c.perplexity)}, ${c.bitsPerWeight.toFixed(2)} bits/weight, ` +
      `${(c.bytes / 1e6).toFixed(2)} MB`,
  }));
  const series = [...new Set(values.map((v) => v.series))];
  const rank = (b: NonNullable<QuantComparison["configurations"][number]["block"]>) =>
    b === "tensor" ? -2 : b === "channel" ? -1 : 1 / b;
  const blocks = [...new Set(drawn.map((c) => c.block!))].sort((a, b) => rank(a) - rank(b)).map(blockText);
  const x = byBlock
    ? {
        field: "block",
        type: "ordinal",
        title: "block size (weights per scale)",
        sort: blocks,
        axis: { labelAngle: 0 },
      }
    : { field: "bitsPerWeight", type: "quantitative", title: "bits per weight", scale: { zero: false, padding: 16 } };
  // Padded so that a baseline at the bottom of the range is not drawn on the axis line.
  const y = { field: "perplexity", type: "quantitative", title: "perplexity", scale: { zero: false, padding: 12 } };
  const color = { field: "series", type: "nominal", title: null, scale: colors(series) };
  const baselines = [...new Set(q.baselines.map((b) => b.perplexity).filter((p) => p !== null))];
  return spec({
    width: WIDTH,
    height: HEIGHT,
    layer: [
      {
        data: { values },
        mark: { type: "line", strokeWidth: 1.5 },
        encoding: { x, y, color, ...(byBlock ? {} : { order: { field: "bitsPerWeight" } }) },
      },
      {
        data: { values },
        name: MARKS.quantization,
        mark: { type: "point" },
        encoding: { x, y, color, description: { field: "tip" } },
      },
      ...(baselines.length
        ? [
            {
              data: { values: baselines.map((perplexity) => ({ perplexity })) },
              mark: { type: "rule", strokeDash: [4, 3], color: REFERENCE },
              encoding: { y },
            },
          ]
        : []),
    ],
  });
}

/** A vega-lite specification as a standalone SVG string, each data mark with a <title> tooltip. */
export async function renderSvg(s: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(s).spec), { renderer: "none" });
  try {
    return withTitles(await view.toSVG());
  } finally {
    view.finalize();
  }
}

/** vega writes each mark's description as aria-label; a <title> child makes it a hover tooltip without script. */
function withTitles(svg: string): string {
  return svg.replace(
    /<(path|rect)(\s[^>]*?aria-label="([^"]*)"[^>]*?role="graphics-symbol"[^>]*?)\/>/g,
    (_, tag: string, attrs: string, label: string) => `<${tag}${attrs}><title>${label}</title></${tag}>`,
  );
}
