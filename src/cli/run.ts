// `superweight run`: one forward pass; per-token NLL of each next token, perplexity, top predictions.
import { Command, Option } from "commander";
import { forward } from "../engine/forward.js";
import { perplexity, mean } from "../engine/nll.js";
import { formatTable } from "../report/table.js";
import { progress } from "../report/progress.js";
import { collect, inputs, modelOptions, numberOption, openModel, type OpenedModel, output } from "./common.js";

interface RunOptions {
  prompt?: string[];
  ids?: string[];
  top: number;
  json?: boolean;
  demo?: boolean;
  download?: boolean;
  revision?: string;
  offline?: boolean;
  allowNonFinite?: boolean;
}

export function runCommand(): Command {
  return modelOptions(
    new Command("run")
      .description("run a checkpoint on a prompt: per-token NLL, perplexity and the top next-token predictions")
      .argument("[model]", "checkpoint folder or Hugging Face model id (in the local cache)")
      .option("-p, --prompt <text>", "text to run through the model's tokenizer (repeatable)", collect)
      .option("--ids <ids>", "token ids, e.g. 1,2,3 (repeatable)", collect)
      .addOption(
        new Option("--top <k>", "how many next-token predictions to show")
          .default(5)
          .argParser(numberOption("--top", (n) => Number.isInteger(n) && n >= 1, "a positive integer")),
      )
      .option("--json", "print one JSON object")
      .addHelpText(
        "after",
        `
Examples:
  superweight run ./Llama-2-7b-hf --prompt "The capital of France is" --top 5
  superweight run meta-llama/Llama-2-7b-hf --ids 1,450,7483 --json
  superweight run ~/models/llama-3.2-1b.Q4_K_M.gguf --prompt "Hello"`,
      ),
  ).action(async (ref: string | undefined, o: RunOptions) => {
    const opened = await openModel(ref, o);
    try {
      const all = [];
      for (const input of inputs(opened, o.prompt ?? [], o.ids ?? []))
        all.push(await runOne(opened, input.label, input.ids, o.top));
      if (o.json) output.write(JSON.stringify(all.length === 1 ? all[0] : { runs: all }) + "\n");
      else for (const r of all) output.write(render(opened, r) + "\n");
    } finally {
      opened.model.close();
    }
  });
}

async function runOne(opened: OpenedModel, label: string, ids: number[], k: number) {
  const { model, tokenizer } = opened;
  const bar = progress("forward", model.spec.layers);
  const t0 = performance.now();
  // Only what is printed comes out of the head: each next token's NLL and the top k at the last position.
  const T = ids.length;
  const targets = ids.map((_, t) => (t + 1 < T ? ids[t + 1] : -1));
  const out = await forward(model, ids, {
    head: { targets, top: { k, positions: [T - 1] } },
    onLayer: (l) => bar.tick(`layer ${l}`),
  });
  bar.stop();
  const seconds = (performance.now() - t0) / 1000;
  const nll = [...out.nll![0].subarray(0, T - 1)];
  const text = (id: number) => tokenizer?.tokenText(id) ?? String(id);
  return {
    model: model.path,
    modelType: model.spec.modelType,
    prompt: label,
    ids,
    tokens: ids.map(text),
    nll,
    meanNll: nll.length ? mean(nll) : null,
    perplexity: nll.length ? perplexity(nll) : null,
    top: out.top![0][0].map((p) => ({ ...p, token: text(p.id) })),
    seconds,
  };
}

function render(opened: OpenedModel, r: Awaited<ReturnType<typeof runOne>>): string {
  const s = opened.model.spec;
  const lines = [
    `${opened.label}: ${s.modelType}, ${s.layers} layers, hidden ${s.hidden}, vocab ${s.vocab}; ${r.ids.length} token${r.ids.length === 1 ? "" : "s"} in ${r.seconds.toFixed(2)} s`,
    "",
  ];
  const rows = r.nll.map((v, i) => [
    String(i),
    JSON.stringify(r.tokens[i]),
    JSON.stringify(r.tokens[i + 1]),
    String(r.ids[i + 1]),
    v.toFixed(4),
  ]);
  lines.push(formatTable(["pos", "token", "next token", "next id", "NLL"], rows), "");
  if (r.perplexity !== null)
    lines.push(
      `perplexity ${r.perplexity.toFixed(4)} (mean NLL ${r.meanNll!.toFixed(4)} over ${r.nll.length} predictions)`,
    );
  else lines.push("one token only: no next-token predictions to score");
  lines.push("", `top ${r.top.length} next tokens after the last position:`);
  lines.push(
    formatTable(
      ["rank", "id", "token", "prob"],
      r.top.map((p, i) => [String(i + 1), String(p.id), JSON.stringify(p.token), p.prob.toFixed(4)]),
    ),
  );
  return lines.join("\n");
}
