// A user's own files: the JSONL multiple-choice task (the shipped example first), a text file and a
// token-id file for perplexity. One test per fault: the code, and a message naming the file and line.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../src/errors.js";
import { DataError } from "../src/data/errors.js";
import { readTaskFile, readTextCorpus, readTokenIds } from "../src/data/user-files.js";
import { MAX_FILE_BYTES } from "../src/data/textfile.js";
import { repoRoot } from "./fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "sw-data-files-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function file(content: string | Uint8Array, ext = "jsonl"): string {
  const path = join(dir, `u${counter++}.${ext}`);
  writeFileSync(path, content);
  return path;
}

function throwsData(fn: () => unknown, code: string, path: string, ...mentions: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DataError, `expected a DataError, got ${e}`);
    assert.equal(e.code, code, `code (message: ${e.message})`);
    assert.equal(e.file, path);
    assert.ok(e.message.startsWith(`${path}: `), `message should name the file: ${e.message}`);
    for (const m of mentions) assert.ok(e.message.includes(m), `message should mention ${m}: ${e.message}`);
    return true;
  });
}

const line = (o: unknown) => JSON.stringify(o);
const ok = line({ context: "Question: 2 + 2?\nAnswer:", choices: ["3", "4"], answer: 1 });

// ---- the shipped example ----

test("examples/tasks/general-knowledge.jsonl parses: 36 items, 4 choices each, answers in range", () => {
  const path = join(repoRoot, "examples", "tasks", "general-knowledge.jsonl");
  const task = readTaskFile(path);
  assert.equal(task.kind, "multiple_choice");
  assert.equal(task.name, "general-knowledge.jsonl");
  assert.deepEqual(task.metrics, ["acc", "acc_norm"]);
  assert.deepEqual(task.source, { file: path });
  assert.equal(task.items.length, 36);
  for (const item of task.items) assert.equal(item.choices.length, 4);
  // the first line, rendered as the harness renders arc: " " + choice continues the shared context
  assert.deepEqual(task.items[0], {
    id: "general-knowledge.jsonl:1",
    answer: 0,
    choices: [
      { context: "Question: What is the chemical symbol for gold?\nAnswer:", continuation: " Au", normLength: 2 },
      { context: "Question: What is the chemical symbol for gold?\nAnswer:", continuation: " Ag", normLength: 2 },
      { context: "Question: What is the chemical symbol for gold?\nAnswer:", continuation: " Gd", normLength: 2 },
      { context: "Question: What is the chemical symbol for gold?\nAnswer:", continuation: " Go", normLength: 2 },
    ],
  });
  // every answer position is used, so always picking one position cannot score well
  assert.deepEqual(new Set(task.items.map((i) => i.answer)), new Set([0, 1, 2, 3]));
});

// ---- JSONL task files ----

test("JSONL: ids, blank lines, CRLF, a BOM and --limit", () => {
  const path = file(
    "\uFEFF" + [line({ id: "q1", context: "", choices: ["é", "😀x"], answer: 0 }), "", "  ", ok].join("\r\n") + "\r\n",
  );
  const task = readTaskFile(path);
  assert.deepEqual(
    task.items.map((i) => i.id),
    ["q1", `${path.split("/").at(-1)}:4`],
  );
  assert.deepEqual(task.items[0].choices, [
    { context: "", continuation: " é", normLength: 1 },
    { context: "", continuation: " 😀x", normLength: 2 },
  ]);
  assert.deepEqual(
    readTaskFile(path, { limit: 1 }).items.map((i) => i.id),
    ["q1"],
  );
  assert.throws(() => readTaskFile(path, { limit: 0 }), UserError);
  // --limit does not skip checking the rest of the file
  const laterFault = file([ok, ok, "{"].join("\n"));
  throwsData(() => readTaskFile(laterFault, { limit: 1 }), "BAD_JSON", laterFault, "line 3");
});

test("JSONL: an empty file (or only blank lines) is EMPTY_FILE", () => {
  for (const content of ["", "\n\n  \n"]) {
    const path = file(content);
    throwsData(() => readTaskFile(path), "EMPTY_FILE", path);
  }
});

test("JSONL: a file that is not UTF-8 is NOT_UTF8 naming the line and byte", () => {
  const path = file(
    Buffer.concat([
      Buffer.from(ok + "\n" + ok + '\n{"context": "caf'),
      Buffer.from([0xe9]),
      Buffer.from('", "choices": ["a", "b"], "answer": 0}\n'),
    ]),
  );
  throwsData(() => readTaskFile(path), "NOT_UTF8", path, "line 3", `byte ${2 * (ok.length + 1) + 16}`);
});

test("JSONL: a malformed line is BAD_JSON naming its line", () => {
  const path = file([ok, ok, '{"context": "x", "choices": ["a", "b"], "answer": 0', ok].join("\n"));
  throwsData(() => readTaskFile(path), "BAD_JSON", path, "line 3");
});

test("JSONL: a line that is not an object is NOT_AN_OBJECT", () => {
  const path = file([ok, "[1, 2]"].join("\n"));
  throwsData(() => readTaskFile(path), "NOT_AN_OBJECT", path, "line 2");
});

test("JSONL: a missing field is MISSING_FIELD, an unknown one UNKNOWN_FIELD", () => {
  const missing = file(line({ context: "c", choices: ["a", "b"] }));
  throwsData(() => readTaskFile(missing), "MISSING_FIELD", missing, "line 1", '"answer"');
  const unknown = file([ok, line({ context: "c", choices: ["a", "b"], answer: 0, label: 1 })].join("\n"));
  throwsData(() => readTaskFile(unknown), "UNKNOWN_FIELD", unknown, "line 2", '"label"');
});

test("JSONL: non-string context, choices or id, and a non-integer answer are BAD_FIELD_TYPE", () => {
  const cases: [unknown, string][] = [
    [{ context: 7, choices: ["a", "b"], answer: 0 }, '"context"'],
    [{ context: "c", choices: "a b", answer: 0 }, '"choices"'],
    [{ context: "c", choices: ["a", 2], answer: 0 }, '"choices"[1]'],
    [{ context: "c", choices: ["a", "b"], answer: "1" }, '"answer"'],
    [{ context: "c", choices: ["a", "b"], answer: 0.5 }, '"answer"'],
    [{ id: 3, context: "c", choices: ["a", "b"], answer: 0 }, '"id"'],
  ];
  for (const [o, mention] of cases) {
    const path = file([ok, line(o)].join("\n"));
    throwsData(() => readTaskFile(path), "BAD_FIELD_TYPE", path, "line 2", mention);
  }
});

test("JSONL: empty or single choices are TOO_FEW_CHOICES", () => {
  for (const choices of [[], ["only"]]) {
    const path = file(line({ context: "c", choices, answer: 0 }));
    throwsData(() => readTaskFile(path), "TOO_FEW_CHOICES", path, "line 1");
  }
});

test("JSONL: an answer outside the choices is ANSWER_OUT_OF_RANGE", () => {
  for (const answer of [2, -1]) {
    const path = file([ok, ok, ok, line({ context: "c", choices: ["a", "b"], answer })].join("\n"));
    throwsData(() => readTaskFile(path), "ANSWER_OUT_OF_RANGE", path, "line 4", String(answer));
  }
});

test("a file over the size limit is FILE_TOO_LARGE, refused before it is read", () => {
  const path = file("");
  truncateSync(path, MAX_FILE_BYTES + 1); // sparse: no disk used
  throwsData(() => readTaskFile(path), "FILE_TOO_LARGE", path, String(MAX_FILE_BYTES + 1));
});

test("a missing file or a folder is FILE_UNREADABLE", () => {
  const missing = join(dir, "nope.jsonl");
  throwsData(() => readTaskFile(missing), "FILE_UNREADABLE", missing, "ENOENT");
  const folder = join(dir, "folder.jsonl");
  mkdirSync(folder);
  throwsData(() => readTaskFile(folder), "FILE_UNREADABLE", folder, "folder");
});

// ---- text files for perplexity ----

test("text: read verbatim (less a BOM) into a 2048-token-window corpus; --limit caps the windows", () => {
  const path = file("\uFEFFFirst line.\r\n\nSecond paragraph ✓\n", "txt");
  assert.deepEqual(readTextCorpus(path), {
    kind: "text",
    name: path.split("/").at(-1),
    text: "First line.\r\n\nSecond paragraph ✓\n",
    windowTokens: 2048,
    maxWindows: undefined,
    source: { file: path },
  });
  assert.equal(readTextCorpus(path, { limit: 4 }).maxWindows, 4);
});

test("text: an empty or blank file is EMPTY_FILE; invalid UTF-8 is NOT_UTF8 with its line", () => {
  for (const content of ["", " \n\t\n"]) {
    const path = file(content, "txt");
    throwsData(() => readTextCorpus(path), "EMPTY_FILE", path);
  }
  const path = file(Buffer.from([0x61, 0x0a, 0x62, 0x0a, 0x63, 0xc3, 0x28, 0x0a]), "txt");
  throwsData(() => readTextCorpus(path), "NOT_UTF8", path, "line 3", "byte 5");
});

// ---- token id files ----

test("token ids: whitespace and/or comma separated, over several lines", () => {
  const path = file("1, 15043 3186\n\n  29871,13\t7\n", "txt");
  const corpus = readTokenIds(path);
  assert.deepEqual(corpus, {
    kind: "ids",
    name: path.split("/").at(-1),
    ids: [1, 15043, 3186, 29871, 13, 7],
    windowTokens: 2048,
    maxWindows: undefined,
    source: { file: path },
  });
});

test("token ids: a bad entry is BAD_TOKEN_ID naming its line; no ids is EMPTY_FILE", () => {
  for (const [content, lineNo, entry] of [
    ["1 2\n3 -4\n", 2, "-4"],
    ["1\n2\n3\n1.5", 4, "1.5"],
    ["7 x9\n", 1, "x9"],
    ["2147483648\n", 1, "2147483648"],
  ] as const) {
    const path = file(content, "txt");
    throwsData(() => readTokenIds(path), "BAD_TOKEN_ID", path, `line ${lineNo}`, `"${entry}"`);
  }
  const empty = file(" , \n", "txt");
  throwsData(() => readTokenIds(empty), "EMPTY_FILE", empty);
});
