// An eval report as terminal text: the arms and exactly what each changes, then each measurement with the
// baseline beside every arm, and where each real effect falls among its nulls. Null arms appear only in
// their summaries.
import type { EvalReport } from "../eval/eval.js";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";
import { signed } from "../signed.js";
import { formatTable } from "./table.js";

const coord = (w: { layer: number; expert?: number | "shared"; row: number; column: number }) =>
  `[${[w.layer, ...(w.expert !== undefined ? [w.expert] : []), w.row, w.column].join(", ")}]`;
const fixed = (x: number | null, digits = 4) => (x === null || !Number.isFinite(x) ? "—" : x.toFixed(digits));
const pct = (x: number) => `${(100 * x).toPrecision(3)}%`;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : word.endsWith("h") ? "es" : "s"}`;
const num = (x: number) => (Math.abs(x) >= 1000 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));

export function renderEval(r: EvalReport, tokenizer?: TextTokenizer): string {
  const out: string[] = [];
  const shown = r.arms.filter((a) => a.role !== "null");
  const name = (id: number) => r.arms[id].label;
  const token = (id: number) => (tokenizer ? JSON.stringify(tokenizer.tokenText(id)) : String(id));
  out.push(
    `${r.model}: ${r.modelType}, ${r.shape.layers} layers, hidden ${r.shape.hidden}, ` +
      `intermediate ${r.shape.intermediate}, vocab ${r.shape.vocab}`,
  );
  if (r.scan) {
    const found = r.scan.found.map((w) => `${coord(w)} ${w.class} (token ${w.token})`);
    out.push(`scan (threshold ${r.scan.threshold}): ${found.length ? found.join(", ") : "no candidates"}`);
  }
  const nullCount = r.arms.length - shown.length;
  out.push(
    `${r.arms.length} arms (${r.variants.models} distinct models, ${plural(r.variants.batches, "batch")} ` +
      `of ≤ ${r.variants.maxVariants} variants)${nullCount ? `, ${nullCount} of them null draws` : ""}`,
    "",
  );

  out.push("arms (every change in memory only; the checkpoint is untouched):");
  for (const a of shown) {
    const twin = r.arms.findIndex((b) => b.model === a.model);
    out.push(`  ${a.id}  ${a.label}${twin !== a.id ? ` (same model as arm ${twin})` : ""}`);
    for (const w of a.applied.weights)
      out.push(`       ${coord(w)} is ${w.tensor}[${w.index.join(", ")}]: ${w.old} → ${w.new}`);
    const p = a.applied.prune;
    if (p)
      out.push(
        `       ${p.selection}: ${p.zeroed} weights zeroed in ${p.tensors} linear tensors ` +
          `(${pct(p.fraction)} of each)` +
          (p.spared.length ? `, sparing ${p.spared.map(coord).join(" ")}` : ""),
      );
    for (const s of a.applied.restore ?? [])
      out.push(
        `       restore layer ${s.layer} down_proj output at token ${s.token}, channel ${s.channel}: the baseline's`,
      );
  }

  if (r.perplexity) {
    const p = r.perplexity;
    out.push(
      "",
      `perplexity of ${p.name}: ${p.tokens} tokens in ${plural(p.windows, "window")} of ${p.ctx} positions, ` +
        `stride ${p.stride}${p.bos !== null ? `, each window starting with BOS ${p.bos}` : ""}` +
        (p.dropPartial ? ", whole windows only" : ""),
    );
    out.push(
      formatTable(
        ["arm", "tokens", "mean NLL", "Δ NLL", "perplexity"],
        shown.map((a) => {
          const s = p.arms[a.id];
          return [
            name(a.id),
            String(s.tokensScored),
            s.meanNll.toFixed(6),
            a.id === 0 ? "" : signed(s.deltaMeanNll, 6),
            s.perplexity.toFixed(4),
          ];
        }),
      ).replace(/^/gm, "  "),
    );
  }

  for (const t of r.tasks) {
    out.push("", `${t.name} (${t.items} items, ${t.source}):`);
    out.push(
      formatTable(
        t.kind === "multiple_choice"
          ? ["arm", "acc", "± stderr", "Δ acc", "acc_norm", "± stderr", "Δ acc_norm"]
          : ["arm", "acc", "± stderr", "Δ acc", "perplexity", "Δ perplexity"],
        shown.map((a) => {
          const s = t.arms[a.id];
          const head = [name(a.id), s.acc.toFixed(4), fixed(s.accStderr), a.id === 0 ? "" : signed(s.deltaAcc)];
          if ("accNorm" in s)
            return [...head, s.accNorm.toFixed(4), fixed(s.accNormStderr), a.id === 0 ? "" : signed(s.deltaAccNorm)];
          return [...head, s.perplexity.toFixed(4), a.id === 0 ? "" : signed(s.deltaPerplexity)];
        }),
      ).replace(/^/gm, "  "),
    );
    const picks = shown.map((a) => t.arms[a.id]).flatMap((s) => ("accNorm" in s ? [s.items] : []));
    if (picks.length === shown.length && picks[0].length <= 40 && shown.length > 1) {
      out.push("  choice picked per item (✗: not the answer):");
      out.push(
        formatTable(
          ["item", ...shown.map((a) => (a.id === 0 ? "baseline" : `arm ${a.id}`))],
          picks[0].map((item, i) => [item.id, ...picks.map((p) => `${p[i].pred}${p[i].acc ? "" : "✗"}`)]),
        ).replace(/^/gm, "    "),
      );
    }
  }

  if (r.prompts) {
    out.push("", `prompts (mean NLL of each next token):`);
    out.push(
      formatTable(
        ["prompt", ...shown.map((a) => (a.id === 0 ? "baseline" : `arm ${a.id}`))],
        r.prompts.items.map((p) => [
          JSON.stringify(p.label.length > 40 ? `${p.label.slice(0, 37)}...` : p.label),
          ...shown.map((a) => fixed(p.arms[a.id].meanNll)),
        ]),
      ).replace(/^/gm, "  "),
    );
    const first = r.prompts.items[0];
    if (first.arms[0].traces.length) {
      out.push("  residual stream at the super activations (first prompt), after each layer:");
      // Super weights of several layers can feed one activation: one trace per (token, channel).
      const sites = new Map<string, { i: number; layers: number[] }>();
      for (const [i, t] of first.arms[0].traces.entries()) {
        const key = `${t.token}:${t.channel}`;
        const site = sites.get(key) ?? sites.set(key, { i, layers: [] }).get(key)!;
        site.layers.push(t.layer);
      }
      for (const { i, layers } of sites.values()) {
        const t = first.arms[0].traces[i];
        const from = layers.length > 1 ? `from layers ${layers.join(", ")}` : `from layer ${layers[0]}`;
        out.push(`    channel ${t.channel}, token ${t.token} (${from}):`);
        for (const a of shown)
          out.push(
            `      ${(a.id === 0 ? "baseline" : `arm ${a.id}`).padEnd(8)}  ` +
              first.arms[a.id].traces[i].byLayer.map(num).join(" "),
          );
      }
    }
  }

  if (r.shift && shown.length > 1) {
    out.push(
      "",
      `next-token distribution after the last position, averaged over ${plural(r.shift.prompts, "prompt")}:`,
    );
    for (const a of shown.slice(1)) {
      const s = r.shift.arms[a.id]!;
      const sw = s.stopwordMass ? `stopword mass ${pct(s.stopwordMass.before)} → ${pct(s.stopwordMass.after)}, ` : "";
      out.push(`  arm ${a.id} ${a.label}: ${sw}KL ${s.kl.toExponential(3)}`);
      const line = (list: typeof s.rises) =>
        list.map((t) => `${token(t.id)} ${pct(t.before)}→${pct(t.after)}`).join(", ");
      if (s.rises.length) out.push(`    rise: ${line(s.rises)}`);
      if (s.falls.length) out.push(`    fall: ${line(s.falls)}`);
    }
  }

  if (r.generation) {
    out.push("", `greedy continuations (${r.generation.tokens} tokens${r.chat ? ", chat template" : ""}):`);
    for (const p of r.generation.prompts) {
      out.push(`  ${JSON.stringify(p.label)}`);
      for (const a of shown) {
        const g = p.arms[a.id]!;
        const text = g.text !== null ? JSON.stringify(g.text) : g.ids.join(",");
        const stats = [
          `rep-4 ${fixed(g.repetition, 3)}`,
          ...(g.klToBaseline !== null ? [`KL ${fixed(g.klToBaseline, 4)} (first ${fixed(g.klFirst, 4)})`] : []),
          ...(g.stopwordMass !== null ? [`stopword mass ${pct(g.stopwordMass)}`] : []),
        ];
        out.push(
          `    ${(a.id === 0 ? "baseline" : `arm ${a.id}`).padEnd(8)}  ${text}${g.stoppedAtEos ? " [EOS]" : ""}`,
        );
        out.push(`    ${"".padEnd(8)}  ${stats.join(", ")}`);
      }
    }
  }

  for (const g of r.nulls) {
    out.push("", `null: ${g.what}`);
    if (g.neighbourhood)
      out.push(
        `  its |w| rank ${g.neighbourhood.rank} of ${g.neighbourhood.elements}; ` +
          `draws from ranks ${g.neighbourhood.window[0]}..${g.neighbourhood.window[1]}`,
      );
    out.push(
      formatTable(
        ["metric", `Δ ${name(g.real)}`, "null mean", "null sd", "z", "rank by |Δ|"],
        g.stats.map(({ metric, stats: s }) => [
          metric,
          signed(s.real, 5),
          signed(s.nullMean, 5),
          fixed(s.nullSd, 5),
          fixed(s.z, 2),
          `${s.rank} of ${s.of}`,
        ]),
      ).replace(/^/gm, "  "),
    );
  }
  out.push(
    "",
    `${r.passes} forward pass${r.passes === 1 ? "" : "es"}, ${(r.bytesRead / 1e9).toFixed(2)} GB of weights read, ${r.seconds.toFixed(1)} s`,
  );
  return out.join("\n");
}
