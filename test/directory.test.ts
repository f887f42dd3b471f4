import { test } from "node:test";
import assert from "node:assert/strict";
import { DIRECTORY, lookupPublished, type DirectoryEntry } from "../src/superweight/directory.js";
import { directoryCommand, renderDirectory } from "../src/cli/directory.js";
import { formatTable } from "../src/report/table.js";
import { UserError } from "../src/errors.js";

type Triple = [number, number, number];

// Transcribed from docs/design.md, "Published coordinates" and the community-reported list.
const PAPER: Record<string, Triple[]> = {
  "huggyllama/llama-7b": [[2, 3968, 7003]],
  "huggyllama/llama-13b": [
    [2, 2231, 2278],
    [2, 2231, 6939],
  ],
  "huggyllama/llama-30b": [
    [3, 5633, 12817],
    [3, 5633, 17439],
    [10, 5633, 14386],
  ],
  "meta-llama/Llama-2-7b-hf": [[1, 2533, 7890]],
  "meta-llama/Llama-2-13b-hf": [[3, 4743, 7678]],
  "mistralai/Mistral-7B-v0.1": [[1, 2070, 7310]],
  "allenai/OLMo-1B-0724-hf": [
    [1, 1764, 1710],
    [2, 1764, 8041],
  ],
  "allenai/OLMo-7B-0724-hf": [
    [1, 269, 7467],
    [2, 269, 8275],
    [7, 269, 453],
    [24, 269, 2300],
  ],
  "microsoft/Phi-3-mini-4k-instruct": [
    [2, 525, 808],
    [2, 1693, 808],
    [2, 1113, 808],
    [4, 525, 2723],
    [4, 1113, 2723],
    [4, 1693, 2723],
  ],
  "meta-llama/Meta-Llama-3-8B": [
    [1, 788, 2427],
    [1, 1384, 2427],
    [1, 4062, 2427],
  ],
};
const COMMUNITY: Record<string, Triple[]> = {
  "meta-llama/Llama-3.1-8B": [
    [1, 788, 2427],
    [1, 1384, 2427],
    [1, 4062, 2427],
  ],
  "HuggingFaceTB/SmolLM2-1.7B": [[1, 749, 4987]],
  "Qwen/Qwen2.5-3B": [[2, 318, 3189]],
  "openai-community/gpt2": [[2, 447, 666]], // [layer, row = output channel, column = input channel]
};

const triples = (e: DirectoryEntry): Triple[] => e.coordinates.map((w) => [w.layer, w.row, w.column]);

function entry(id: string): DirectoryEntry {
  const e = lookupPublished(id);
  assert.ok(e, `no entry for ${id}`);
  return e;
}

test("every published coordinate, per model, in order", () => {
  for (const [id, want] of Object.entries({ ...PAPER, ...COMMUNITY })) {
    assert.equal(entry(id).modelId, id);
    assert.deepEqual(triples(entry(id)), want, id);
  }
  assert.equal(DIRECTORY.length, Object.keys(PAPER).length + Object.keys(COMMUNITY).length);
});

test("counts per model", () => {
  const counts = Object.fromEntries(DIRECTORY.map((e) => [e.name, e.coordinates.length]));
  assert.deepEqual(counts, {
    "Llama-7B": 1,
    "Llama-13B": 2,
    "Llama-30B": 3,
    "Llama-2-7B": 1,
    "Llama-2-13B": 1,
    "Mistral-7B-v0.1": 1,
    "OLMo-1B-0724": 2,
    "OLMo-7B-0724": 4,
    "Phi-3-mini-4k-instruct": 6,
    "Llama-3-8B": 3,
    "Llama-3.1-8B": 3,
    "SmolLM2-1.7B": 1,
    "Qwen2.5-3B": 1,
    "GPT-2 124M": 1,
  });
});

test("Llama-7B: [2, 3968, 7003] of model.layers.2.mlp.down_proj.weight, stored [out, in]", () => {
  const [w] = entry("huggyllama/llama-7b").coordinates;
  assert.deepEqual([w.layer, w.row, w.column], [2, 3968, 7003]);
  assert.equal(w.tensor, "model.layers.2.mlp.down_proj.weight");
  assert.equal(w.layout, "nk");
  assert.deepEqual(w.index, [3968, 7003]);
});

test("every coordinate names its layer's tensor, indexes it by its layout, and fits the model's sizes", () => {
  for (const e of DIRECTORY) {
    for (const w of e.coordinates) {
      const where = `${e.modelId} ${w.tensor}`;
      assert.ok(w.tensor.includes(`.${w.layer}.`), where);
      assert.deepEqual(w.index, w.layout === "nk" ? [w.row, w.column] : [w.column, w.row], where);
      assert.ok(w.layer >= 0 && w.layer < e.dims.layers, where);
      assert.ok(w.row >= 0 && w.row < e.dims.hidden, `${where}: row ${w.row} ≥ hidden ${e.dims.hidden}`);
      assert.ok(w.column >= 0 && w.column < e.dims.intermediate, `${where}: column ${w.column}`);
    }
  }
});

test("GPT-2: Conv1D c_proj is [in, out], so input 666 → output 447 is weight[666, 447]", () => {
  const e = entry("gpt2");
  assert.equal(e.modelId, "openai-community/gpt2");
  assert.equal(e.modelType, "gpt2");
  const [w] = e.coordinates;
  assert.equal(w.tensor, "h.2.mlp.c_proj.weight");
  assert.equal(w.layout, "kn");
  assert.equal(w.layer, 2);
  assert.equal(w.row, 447); // output channel, < 768
  assert.equal(w.column, 666); // input channel, < 3072
  assert.deepEqual(w.index, [666, 447]);
  assert.match(w.note ?? "", /unchanged/);
});

test("lookup: aliases, any case, a trailing @revision; never chat/instruct variants", () => {
  assert.equal(lookupPublished("HUGGYLLAMA/LLAMA-7B")?.modelId, "huggyllama/llama-7b");
  assert.equal(lookupPublished("openai-community/GPT2@main")?.modelId, "openai-community/gpt2");
  assert.equal(lookupPublished("GPT2")?.modelId, "openai-community/gpt2");
  assert.equal(
    lookupPublished(" meta-llama/llama-2-7b-hf@01c7f73d771dfac7d292323805ebc428287df4f9 ")?.name,
    "Llama-2-7B",
  );
  assert.equal(lookupPublished("meta-llama/Meta-Llama-3.1-8B")?.modelId, "meta-llama/Llama-3.1-8B");
  assert.equal(lookupPublished("meta-llama/Llama-3.1-8B")?.modelId, "meta-llama/Llama-3.1-8B");
  for (const other of [
    "meta-llama/Llama-2-7b-chat-hf",
    "meta-llama/Meta-Llama-3-8B-Instruct",
    "meta-llama/Llama-3.1-8B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.1",
    "microsoft/Phi-3-mini-128k-instruct",
    "allenai/OLMo-1B-hf",
    "HuggingFaceTB/SmolLM2-1.7B-Instruct",
    "Qwen/Qwen2.5-3B-Instruct",
    "",
    "@main",
  ]) {
    assert.equal(lookupPublished(other), undefined, other);
  }
});

test("provenance: the paper's ten models vs the four community reports, kept apart", () => {
  const bySource = (s: string) => DIRECTORY.filter((e) => e.source === s).map((e) => e.modelId);
  assert.deepEqual(bySource("paper"), Object.keys(PAPER));
  assert.deepEqual(bySource("community"), Object.keys(COMMUNITY));
  for (const e of DIRECTORY) {
    for (const w of e.coordinates) assert.equal(w.source, e.source, e.modelId);
    assert.equal(/2411\.07191/.test(e.reference), e.source === "paper", e.reference);
  }
});

test("reported activations and ablation notes", () => {
  const act = (id: string) => entry(id).coordinates.map((w) => w.activation);
  assert.deepEqual(act("meta-llama/Llama-2-7b-hf"), [{ input: 1390, output: 2242, source: "community" }]);
  assert.deepEqual(act("mistralai/Mistral-7B-v0.1"), [{ input: 950, output: -263, source: "community" }]);
  assert.deepEqual(
    act("meta-llama/Llama-3.1-8B").map((a) => [a?.input, a?.output]),
    [
      [-443, 300],
      [-443, -275],
      [-443, -273],
    ],
  );
  assert.match(entry("HuggingFaceTB/SmolLM2-1.7B").coordinates[0].note ?? "", /6\.93 → 9e7/);
  assert.match(entry("Qwen/Qwen2.5-3B").coordinates[0].note ?? "", /7\.22 → 9\.19.*not catastrophic/);
  assert.match(entry("allenai/OLMo-1B-0724-hf").coordinates[1].note ?? "", /code.*layer 2/);
  assert.match(entry("meta-llama/Llama-2-7b-hf").notes ?? "", /layer 30/);
});

test("the directory cannot be changed by a caller", () => {
  const w = DIRECTORY[0].coordinates[0] as { row: number };
  assert.throws(() => {
    w.row = 0;
  }, TypeError);
  assert.throws(() => (DIRECTORY as DirectoryEntry[]).push(DIRECTORY[0]), TypeError);
});

/** Run the `directory` command on `args`, returning what it wrote to stdout. */
async function runDirectory(...args: string[]): Promise<string> {
  const chunks: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
    return true;
  }) as typeof process.stdout.write;
  try {
    await directoryCommand().parseAsync(["node", "x", ...args]);
  } finally {
    process.stdout.write = write;
  }
  return chunks.join("");
}

test("directory --json prints one object { models } with every entry", async () => {
  const out = await runDirectory("--json");
  const parsed = JSON.parse(out) as { models: DirectoryEntry[] };
  assert.deepEqual(Object.keys(parsed), ["models"]);
  assert.deepEqual(parsed.models, JSON.parse(JSON.stringify(DIRECTORY)));
});

test("directory --json <alias> prints just that model", async () => {
  const parsed = JSON.parse(await runDirectory("--json", "GPT2@main")) as { models: DirectoryEntry[] };
  assert.equal(parsed.models.length, 1);
  assert.equal(parsed.models[0].modelId, "openai-community/gpt2");
  assert.deepEqual(parsed.models[0].coordinates[0].index, [666, 447]);
});

test("directory prints a table of every coordinate", async () => {
  const out = await runDirectory();
  assert.equal(out, renderDirectory(DIRECTORY));
  const total = DIRECTORY.reduce((n, e) => n + e.coordinates.length, 0);
  assert.equal(
    out.split("\n").filter((l) => /^\S.*\.weight\s+\[\d+, \d+\]/.test(l) || /^\s+\S+\.weight/.test(l)).length,
    total,
  );
  assert.match(out, /^huggyllama\/llama-7b\s+paper\s+model\.layers\.2\.mlp\.down_proj\.weight\s+\[3968, 7003\]/m);
  assert.match(out, /^openai-community\/gpt2\s+community\s+h\.2\.mlp\.c_proj\.weight\s+\[447, 666\]\s+Conv1D/m);
  assert.match(out, /down_proj input 950, output −263 \(community run\)/);
});

test("directory <id> prints that model's header, aliases, coordinates and notes", async () => {
  const out = await runDirectory("microsoft/phi-3-mini-4k-instruct");
  assert.match(out, /^Phi-3-mini-4k-instruct \(microsoft\/Phi-3-mini-4k-instruct\), model_type phi3, paper: /);
  assert.equal((out.match(/model\.layers\.\d+\.mlp\.down_proj\.weight/g) ?? []).length, 6);
  assert.doesNotMatch(out, /llama-7b/);
});

test("directory <unknown id> fails naming the id and the known ids", async () => {
  await assert.rejects(runDirectory("meta-llama/Llama-2-7b-chat-hf"), (err: unknown) => {
    assert.ok(err instanceof UserError);
    assert.match(err.message, /"meta-llama\/Llama-2-7b-chat-hf"/);
    for (const e of DIRECTORY) assert.ok(err.message.includes(e.modelId), e.modelId);
    return true;
  });
});

test("formatTable: padded columns, numeric columns right-aligned, header rule", () => {
  const table = formatTable(
    ["name", "value", "note"],
    [
      ["a", "1390", "x"],
      ["longer", "−263", ""],
      ["b", "9e7"],
    ],
  );
  assert.equal(
    table,
    ["name    value  note", "------  -----  ----", "a        1390  x", "longer   −263", "b         9e7"].join("\n"),
  );
  // One non-number makes the column left-aligned; empty cells do not count.
  assert.equal(formatTable(["k"], [["12"], ["n/a"]]), ["k", "---", "12", "n/a"].join("\n"));
  assert.equal(formatTable(["n"], [["5"], [""], ["12"]]), [" n", "--", " 5", "", "12"].join("\n"));
  assert.throws(() => formatTable(["one"], [["a", "b"]]), /row 0 has 2 cells/);
});
