// Every named task and corpus, read from small files written here in the Hub files' own layout (parquet
// with the real column names and types, LAMBADA's JSON Lines, C4's json.gz) through a fake fetchFile.
// The expected strings were worked out by hand from the harness's task YAMLs and utils.py (and checked
// against those Python functions), never produced by the code under test.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { parquetWriteBuffer } from "hyparquet-writer";
import { UserError } from "../src/errors.js";
import { DataError } from "../src/data/errors.js";
import { loadCorpus, loadTask, type FetchFile } from "../src/data/datasets.js";
import type { LastWordTask, McItem, McTask } from "../src/data/requests.js";

const dir = mkdtempSync(join(tmpdir(), "sw-data-tasks-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// ---- files in the Hub layout ----

/** The writer's own schema type (it bundles its own hyparquet). */
type SchemaElement = NonNullable<Parameters<typeof parquetWriteBuffer>[0]["schema"]>[number];

const STRING = (name: string): SchemaElement => ({
  name,
  type: "BYTE_ARRAY",
  converted_type: "UTF8",
  repetition_type: "OPTIONAL",
});
const INT64 = (name: string): SchemaElement => ({ name, type: "INT64", repetition_type: "OPTIONAL" });
const INT32 = (name: string): SchemaElement => ({ name, type: "INT32", repetition_type: "OPTIONAL" });
/** pyarrow's list<string>: optional LIST group › repeated "list" › optional "element". */
const STRING_LIST = (name: string): SchemaElement[] => [
  { name, repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
  { name: "list", repetition_type: "REPEATED", num_children: 1 },
  STRING("element"),
];

let counter = 0;
function parquetFile(columns: (SchemaElement | SchemaElement[])[], data: Record<string, unknown[]>): string {
  const top = columns.map((c) => (Array.isArray(c) ? c[0] : c));
  const schema: SchemaElement[] = [{ name: "schema", num_children: top.length }, ...columns.flat()];
  const buffer = parquetWriteBuffer({ schema, columnData: top.map((c) => ({ name: c.name, data: data[c.name] })) });
  const path = join(dir, `f${counter++}.parquet`);
  writeFileSync(path, new Uint8Array(buffer));
  return path;
}

function bytesFile(bytes: Uint8Array | string, ext: string): string {
  const path = join(dir, `f${counter++}.${ext}`);
  writeFileSync(path, bytes);
  return path;
}

/** Serves exactly one Hub file (repo, path, revision) from a local path; anything else is an error. */
function serve(repo: string, path: string, revision: string, local: string): FetchFile & { calls: number } {
  const fetch = async (r: string, p: string, rev?: string) => {
    fetch.calls++;
    assert.deepEqual([r, p, rev], [repo, path, revision], "fetchFile called for another file");
    return local;
  };
  fetch.calls = 0;
  return fetch;
}

async function mcTask(name: string, fetch: FetchFile, limit?: number): Promise<McTask> {
  const task = await loadTask(name, fetch, { limit });
  assert.equal(task.kind, "multiple_choice");
  return task as McTask;
}

/** One context shared by every choice; continuations " " + choice; normLength = Python len(choice). */
function shared(context: string, choices: [string, number][], answer: number): Omit<McItem, "id"> {
  return { answer, choices: choices.map(([c, normLength]) => ({ context, continuation: " " + c, normLength })) };
}

function withoutIds(items: McItem[]): Omit<McItem, "id">[] {
  return items.map(({ id: _, ...rest }) => rest);
}

// ---- ARC ----

const ARC = ["allenai/ai2_arc", "210d026faf9955653af8916fad021475a3f00453"] as const;
const ARC_COLUMNS = [
  STRING("id"),
  STRING("question"),
  [{ name: "choices", repetition_type: "OPTIONAL", num_children: 2 }, ...STRING_LIST("text"), ...STRING_LIST("label")],
  STRING("answerKey"),
] as (SchemaElement | SchemaElement[])[];

function arcFile(rows: { id: string; question: string; text: string[]; label: string[]; answerKey: string }[]) {
  return parquetFile(ARC_COLUMNS, {
    id: rows.map((r) => r.id),
    question: rows.map((r) => r.question),
    choices: rows.map((r) => ({ text: r.text, label: r.label })),
    answerKey: rows.map((r) => r.answerKey),
  });
}

test("arc_easy: Question/Answer prompt, choices.text, answer = choices.label.index(answerKey)", async () => {
  const local = arcFile([
    {
      id: "Q-1",
      question: "A planet starts to rotate faster. What is the most likely effect?",
      text: [
        "Planetary density will decrease.",
        "Planetary years will become longer.",
        "Planetary days will become shorter.",
        "Planetary gravity will become stronger.",
      ],
      label: ["A", "B", "C", "D"],
      answerKey: "C",
    },
    {
      id: "Q-2",
      question: "Which unit goes with the symbol Ω?",
      text: ["volt", "ohm (Ω)", "a 😀 face", "watt"],
      label: ["1", "2", "3", "4"],
      answerKey: "2",
    },
  ]);
  const fetch = serve(ARC[0], "ARC-Easy/test-00000-of-00001.parquet", ARC[1], local);
  const task = await mcTask("arc_easy", fetch);
  assert.equal(fetch.calls, 1);
  assert.deepEqual(task.metrics, ["acc", "acc_norm"]);
  assert.deepEqual(task.source, { repo: ARC[0], revision: ARC[1], path: "ARC-Easy/test-00000-of-00001.parquet" });
  assert.deepEqual(
    task.items.map((i) => i.id),
    ["Q-1", "Q-2"],
  );
  assert.deepEqual(withoutIds(task.items), [
    shared(
      "Question: A planet starts to rotate faster. What is the most likely effect?\nAnswer:",
      [
        ["Planetary density will decrease.", 32],
        ["Planetary years will become longer.", 35],
        ["Planetary days will become shorter.", 35],
        ["Planetary gravity will become stronger.", 39],
      ],
      2,
    ),
    // lengths in code points: "ohm (Ω)" is 8 bytes, "a 😀 face" 11 bytes and 9 UTF-16 units
    shared(
      "Question: Which unit goes with the symbol Ω?\nAnswer:",
      [
        ["volt", 4],
        ["ohm (Ω)", 7],
        ["a 😀 face", 8],
        ["watt", 4],
      ],
      1,
    ),
  ]);
});

test("arc_challenge reads the ARC-Challenge test file, formatted as arc_easy", async () => {
  const local = arcFile([{ id: "C-1", question: "Why?", text: ["because", "so"], label: ["A", "B"], answerKey: "B" }]);
  const fetch = serve(ARC[0], "ARC-Challenge/test-00000-of-00001.parquet", ARC[1], local);
  const task = await mcTask("arc_challenge", fetch);
  assert.deepEqual(task.items, [
    {
      id: "C-1",
      ...shared(
        "Question: Why?\nAnswer:",
        [
          ["because", 7],
          ["so", 2],
        ],
        1,
      ),
    },
  ]);
});

test("arc: an answerKey that is not a label is BAD_ANSWER naming the row", async () => {
  const local = arcFile([
    { id: "ok", question: "q", text: ["a", "b"], label: ["A", "B"], answerKey: "A" },
    { id: "bad", question: "q", text: ["a", "b"], label: ["A", "B"], answerKey: "E" },
  ]);
  await rejectsData(
    loadTask("arc_easy", async () => local),
    "BAD_ANSWER",
    local,
    "row 1",
    '"E"',
  );
});

// ---- PIQA ----

test("piqa: Question/Answer prompt on goal, [sol1, sol2], int64 label", async () => {
  const local = parquetFile([STRING("goal"), STRING("sol1"), STRING("sol2"), INT64("label")], {
    goal: ["How do I cool a drink quickly?", "Keep bread fresh"],
    sol1: ["Pour it into a bowl of ice water and stir.", "Leave it in the sun."],
    sol2: ["Wrap it in a warm towel and wait.", "Store it in a closed bag."],
    label: [0n, 1n],
  });
  const task = await mcTask(
    "piqa",
    serve("baber/piqa", "piqa_validation.parquet", "142f6d7367fd9877f0fb3b5734ea6a545f54cdd1", local),
  );
  assert.deepEqual(task.metrics, ["acc", "acc_norm"]);
  assert.deepEqual(withoutIds(task.items), [
    shared(
      "Question: How do I cool a drink quickly?\nAnswer:",
      [
        ["Pour it into a bowl of ice water and stir.", 42],
        ["Wrap it in a warm towel and wait.", 33],
      ],
      0,
    ),
    shared(
      "Question: Keep bread fresh\nAnswer:",
      [
        ["Leave it in the sun.", 20],
        ["Store it in a closed bag.", 25],
      ],
      1,
    ),
  ]);
});

// ---- HellaSwag ----

test('hellaswag: preprocess (strip, " [title]" → ". ", [..] removed, double spaces) and ctx_b.capitalize()', async () => {
  const local = parquetFile(
    [
      INT32("ind"),
      STRING("activity_label"),
      STRING("ctx_a"),
      STRING("ctx_b"),
      STRING("ctx"),
      STRING_LIST("endings"),
      STRING("source_id"),
      STRING("split"),
      STRING("split_type"),
      STRING("label"),
    ],
    {
      ind: [4, 9],
      activity_label: ["Home and Garden", "Sailing"],
      ctx_a: ["[header] How to plant tulips [title] Choose a sunny spot.", "A man is standing on a boat."],
      ctx_b: ["DIG a hole  twice as deep as the bulb.", ""],
      ctx: ["(not read)", "(not read)"],
      endings: [
        [
          " [step] Set the bulb in the hole, pointed end up.  [substeps] Cover it with soil.",
          "Water the bulbs [title] well.",
          "Plant them in the spring.",
          "Wait until the ground has frozen solid, then plant.",
        ],
        ["He pulls the rope.", "She waves to the shore.", "They sail into a storm.", "It sinks."],
      ],
      source_id: ["wikihow~1", "activitynet~v_1"],
      split: ["val", "val"],
      split_type: ["indomain", "zeroshot"],
      label: ["2", "0"],
    },
  );
  const task = await mcTask(
    "hellaswag",
    serve(
      "Rowan/hellaswag",
      "data/validation-00000-of-00001.parquet",
      "218ec52e09a7e7462a5400043bb9a69a41d06b76",
      local,
    ),
  );
  assert.deepEqual(task.metrics, ["acc", "acc_norm"]);
  assert.deepEqual(withoutIds(task.items), [
    shared(
      "Home and Garden: How to plant tulips. Choose a sunny spot. Dig a hole twice as deep as the bulb.",
      [
        // "[step]" leaves a leading space after strip(); "   " (three) becomes "  " (replace is not repeated)
        [" Set the bulb in the hole, pointed end up.  Cover it with soil.", 63],
        ["Water the bulbs. well.", 22],
        ["Plant them in the spring.", 25],
        ["Wait until the ground has frozen solid, then plant.", 51],
      ],
      2,
    ),
    shared(
      "Sailing: A man is standing on a boat.",
      [
        ["He pulls the rope.", 18],
        ["She waves to the shore.", 23],
        ["They sail into a storm.", 23],
        ["It sinks.", 9],
      ],
      0,
    ),
  ]);
});

test("hellaswag: a label that names no ending is BAD_ANSWER; an integer label column is read as int(label)", async () => {
  const columns = [STRING("activity_label"), STRING("ctx_a"), STRING("ctx_b"), STRING_LIST("endings")];
  const rows = { activity_label: ["A"], ctx_a: ["b"], ctx_b: ["c"], endings: [["d", "e"]] };
  const bad = parquetFile([...columns, STRING("label")], { ...rows, label: ["2"] });
  await rejectsData(
    loadTask("hellaswag", async () => bad),
    "BAD_ANSWER",
    bad,
    "row 0",
    "label 2",
  );
  const empty = parquetFile([...columns, STRING("label")], { ...rows, label: [""] });
  await rejectsData(
    loadTask("hellaswag", async () => empty),
    "BAD_ANSWER",
    empty,
    "row 0",
  );
  const integer = parquetFile([...columns, INT64("label")], { ...rows, label: [1n] });
  assert.equal((await mcTask("hellaswag", async () => integer)).items[0].answer, 1);
});

// ---- WinoGrande ----

test("winogrande: partial evaluation, the option ends the context and the rest is the continuation", async () => {
  const local = parquetFile([STRING("sentence"), STRING("option1"), STRING("option2"), STRING("answer")], {
    sentence: [
      "The trophy doesn't fit into the brown suitcase because the _ is too large.",
      "_ was happier than Kim because she won.",
    ],
    option1: ["trophy", "Anna"],
    option2: ["suitcase", "Kim"],
    answer: ["1", "2"],
  });
  const task = await mcTask(
    "winogrande",
    serve(
      "allenai/winogrande",
      "winogrande_xl/validation-00000-of-00001.parquet",
      "01e74176c63542e6b0bcb004dcdea22d94fb67b5",
      local,
    ),
  );
  assert.deepEqual(task.metrics, ["acc"]);
  assert.deepEqual(withoutIds(task.items), [
    {
      answer: 0,
      choices: [
        {
          context: "The trophy doesn't fit into the brown suitcase because the trophy",
          continuation: " is too large.",
          normLength: 65,
        },
        {
          context: "The trophy doesn't fit into the brown suitcase because the suitcase",
          continuation: " is too large.",
          normLength: 67,
        },
      ],
    },
    {
      answer: 1,
      choices: [
        { context: "Anna", continuation: " was happier than Kim because she won.", normLength: 4 },
        { context: "Kim", continuation: " was happier than Kim because she won.", normLength: 3 },
      ],
    },
  ]);
});

test('winogrande: a sentence without "_" is NO_BLANK, an answer other than "1"/"2" BAD_ANSWER', async () => {
  const columns = [STRING("sentence"), STRING("option1"), STRING("option2"), STRING("answer")];
  const noBlank = parquetFile(columns, { sentence: ["No blank here."], option1: ["a"], option2: ["b"], answer: ["1"] });
  await rejectsData(
    loadTask("winogrande", async () => noBlank),
    "NO_BLANK",
    noBlank,
    "row 0",
  );
  const badAnswer = parquetFile(columns, { sentence: ["A _."], option1: ["a"], option2: ["b"], answer: ["0"] });
  await rejectsData(
    loadTask("winogrande", async () => badAnswer),
    "BAD_ANSWER",
    badAnswer,
    "row 0",
    '"0"',
  );
});

// ---- SciQ ----

test("sciq: support.lstrip() + Question/Answer, [distractor1, distractor2, distractor3, correct_answer], answer 3", async () => {
  const local = parquetFile(
    ["question", "distractor3", "distractor1", "distractor2", "correct_answer", "support"].map(STRING),
    {
      question: ["What process do plants use to make food?", "What is 2 + 2?"],
      distractor3: ["fermentation", "five"],
      distractor1: ["respiration", "three"],
      distractor2: ["digestion", "22"],
      correct_answer: ["photosynthesis", "four"],
      support: ["  \tPlants make food by photosynthesis, which uses light energy.", ""],
    },
  );
  const task = await mcTask(
    "sciq",
    serve("allenai/sciq", "data/test-00000-of-00001.parquet", "2c94ad3e1aafab77146f384e23536f97a4849815", local),
  );
  assert.deepEqual(task.metrics, ["acc", "acc_norm"]);
  assert.deepEqual(withoutIds(task.items), [
    shared(
      "Plants make food by photosynthesis, which uses light energy.\n" +
        "Question: What process do plants use to make food?\nAnswer:",
      [
        ["respiration", 11],
        ["digestion", 9],
        ["fermentation", 12],
        ["photosynthesis", 14],
      ],
      3,
    ),
    shared(
      "\nQuestion: What is 2 + 2?\nAnswer:",
      [
        ["three", 5],
        ["22", 2],
        ["five", 4],
        ["four", 4],
      ],
      3,
    ),
  ]);
});

// ---- LAMBADA ----

const LAMBADA = ["EleutherAI/lambada_openai", "data/lambada_test.jsonl", "900124bf3b8235c6daf21033af9948b3f07346c4"];

test("lambada_openai (and its alias lambada): context = text.split(' ')[:-1] joined, continuation = ' ' + last", async () => {
  const local = bytesFile(
    [
      { text: "She opened the old wooden box and found a letter from her grandmother" },
      { text: "He said  hello" },
      { text: "The cat sat.\nThen it slept" },
    ]
      .map((r) => JSON.stringify(r))
      .join("\n") + "\n",
    "jsonl",
  );
  for (const name of ["lambada_openai", "lambada"]) {
    const task = (await loadTask(name, serve(LAMBADA[0], LAMBADA[1], LAMBADA[2], local))) as LastWordTask;
    assert.equal(task.kind, "last_word");
    assert.equal(task.name, "lambada_openai");
    assert.deepEqual(task.metrics, ["acc", "perplexity"]);
    assert.deepEqual(
      task.items.map(({ context, continuation }) => [context, continuation]),
      [
        ["She opened the old wooden box and found a letter from her", " grandmother"],
        ["He said ", " hello"], // split(" ") keeps the empty word between two spaces
        ["The cat sat.\nThen it", " slept"], // only " " separates words
      ],
    );
  }
});

test("lambada: a line that is not JSON is BAD_JSON naming the line; a record without text is BAD_ROW", async () => {
  const badJson = bytesFile('{"text": "a b"}\n{"text": \n', "jsonl");
  await rejectsData(
    loadTask("lambada", async () => badJson),
    "BAD_JSON",
    badJson,
    "line 2",
  );
  const noText = bytesFile('{"text": "a b"}\n{"txt": "a b"}', "jsonl"); // no final newline
  await rejectsData(
    loadTask("lambada", async () => noText),
    "BAD_ROW",
    noText,
    "row 1",
    '"text" is missing',
  );
});

// ---- --limit ----

test("--limit N keeps the first N items in file order; a bad limit is a UserError", async () => {
  const rows = Array.from({ length: 5 }, (_, i) => ({
    id: `Q${i}`,
    question: `q${i}`,
    text: ["a", "b"],
    label: ["A", "B"],
    answerKey: "A",
  }));
  const local = arcFile(rows);
  const task = await mcTask("arc_easy", async () => local, 3);
  assert.deepEqual(
    task.items.map((i) => i.id),
    ["Q0", "Q1", "Q2"],
  );
  assert.equal((await mcTask("arc_easy", async () => local, 50)).items.length, 5);
  for (const limit of [0, -1, 1.5, Number.NaN]) {
    await assert.rejects(
      loadTask("arc_easy", async () => local, { limit }),
      UserError,
    );
  }
});

// ---- faults of the files themselves ----

test("a missing column is MISSING_COLUMN, a wrongly typed field BAD_ROW, a non-parquet file BAD_PARQUET", async () => {
  const noLabel = parquetFile([STRING("goal"), STRING("sol1"), STRING("sol2")], {
    goal: ["g"],
    sol1: ["a"],
    sol2: ["b"],
  });
  await rejectsData(
    loadTask("piqa", async () => noLabel),
    "MISSING_COLUMN",
    noLabel,
    '"label"',
  );
  const stringLabel = parquetFile([STRING("goal"), STRING("sol1"), STRING("sol2"), STRING("label")], {
    goal: ["g", "g"],
    sol1: ["a", "a"],
    sol2: ["b", "b"],
    label: [null, "1"],
  });
  await rejectsData(
    loadTask("piqa", async () => stringLabel),
    "BAD_ROW",
    stringLabel,
    "row 0",
    '"label"',
  );
  const junk = bytesFile("not parquet at all", "parquet");
  await rejectsData(
    loadTask("piqa", async () => junk),
    "BAD_PARQUET",
    junk,
  );
});

test("an unknown task or corpus name is a UserError listing the known names", async () => {
  for (const name of ["mmlu", "constructor", "__proto__"]) {
    await assert.rejects(
      loadTask(name, async () => "x"),
      (e: unknown) => e instanceof UserError && e.message.includes("arc_easy") && e.message.includes("lambada"),
    );
  }
  await assert.rejects(
    loadCorpus("ptb", async () => "x"),
    (e: unknown) => e instanceof UserError && e.message.includes("wikitext-2") && e.message.includes("c4"),
  );
});

// ---- perplexity corpora ----

test('wikitext-2 (alias wikitext2): every test line joined with "\\n\\n", 2048-token windows, no cap', async () => {
  const local = parquetFile([STRING("text")], { text: [" = Tulips = \n", "", " Tulips flower in spring . \n"] });
  for (const name of ["wikitext-2", "wikitext2"]) {
    const corpus = await loadCorpus(
      name,
      serve(
        "Salesforce/wikitext",
        "wikitext-2-raw-v1/test-00000-of-00001.parquet",
        "b08601e04326c79dfdd32d625aee71d232d685c3",
        local,
      ),
    );
    assert.deepEqual(corpus, {
      kind: "text",
      name: "wikitext-2",
      text: " = Tulips = \n\n\n\n\n Tulips flower in spring . \n",
      windowTokens: 2048,
      maxWindows: undefined,
      source: {
        repo: "Salesforce/wikitext",
        revision: "b08601e04326c79dfdd32d625aee71d232d685c3",
        path: "wikitext-2-raw-v1/test-00000-of-00001.parquet",
      },
    });
  }
  const limited = await loadCorpus("wikitext-2", async () => local, { limit: 3 });
  assert.equal(limited.maxWindows, 3);
});

test('c4: the first 1100 validation documents joined with " ", at most 256 windows (GPTQ\'s c4-new)', async () => {
  const docs = Array.from({ length: 1103 }, (_, i) =>
    JSON.stringify({ text: `doc ${i}`, timestamp: "2019-04-25T12:57:54Z", url: `https://example.org/${i}` }),
  );
  const local = bytesFile(gzipSync(docs.join("\n") + "\n"), "json.gz");
  const fetch = serve(
    "allenai/c4",
    "en/c4-validation.00000-of-00008.json.gz",
    "607bd4c8450a42878aa9ddc051a65a055450ef87",
    local,
  );
  const corpus = await loadCorpus("c4", fetch);
  assert.equal(corpus.kind, "text");
  const text = corpus.kind === "text" ? corpus.text : "";
  assert.ok(text.startsWith("doc 0 doc 1 doc 2 "));
  assert.ok(text.endsWith(" doc 1098 doc 1099"), text.slice(-30));
  assert.equal(text.split(" ").length, 2 * 1100);
  assert.equal(corpus.maxWindows, 256);
  assert.equal((await loadCorpus("c4", async () => local, { limit: 10 })).maxWindows, 10);
  assert.equal((await loadCorpus("c4", async () => local, { limit: 1000 })).maxWindows, 256);
});

test("c4: a corrupt gzip file is BAD_GZIP; invalid UTF-8 inside is NOT_UTF8 naming the line", async () => {
  const corrupt = gzipSync('{"text": "a"}\n'.repeat(100));
  corrupt[20] ^= 0xff;
  const bad = bytesFile(corrupt, "json.gz");
  await rejectsData(
    loadCorpus("c4", async () => bad),
    "BAD_GZIP",
    bad,
  );
  const latin1 = bytesFile(
    gzipSync(Buffer.concat([Buffer.from('{"text": "ok"}\n{"text": "caf'), Buffer.from([0xe9]), Buffer.from('"}\n')])),
    "json.gz",
  );
  await rejectsData(
    loadCorpus("c4", async () => latin1),
    "NOT_UTF8",
    latin1,
    "line 2",
  );
});

async function rejectsData(promise: Promise<unknown>, code: string, file: string, ...mentions: string[]) {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof DataError, `expected a DataError, got ${e}`);
    assert.equal(e.code, code, `code (message: ${e.message})`);
    assert.ok(e.message.startsWith(`${file}: `), `message should name the file: ${e.message}`);
    for (const m of mentions) assert.ok(e.message.includes(m), `message should mention ${m}: ${e.message}`);
    return true;
  });
}
