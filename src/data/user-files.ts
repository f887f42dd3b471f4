// A user's own data: a JSONL multiple-choice task, a text file or a file of token ids for perplexity.
// Each fault is a DataError naming the file and, where it has one, the line.
import { basename } from "node:path";
import { DataError } from "./errors.js";
import { PAPER_WINDOW_TOKENS, sharedContextChoices } from "./requests.js";
import type { McItem, McTask, PerplexityCorpus } from "./requests.js";
import { readUtf8File, splitLines } from "./textfile.js";
import { checkLimit, type LoadOptions } from "./limit.js";

const TASK_FIELDS = ["id", "context", "choices", "answer"];

/**
 * One JSON object per line: {"context": string, "choices": [string, ...], "answer": index, "id"?: string}.
 * Each choice continues the context after the harness's " " delimiter (as arc/piqa/sciq do); acc and
 * acc_norm are both reported. Blank lines are skipped. Every line is checked; `limit` keeps the first N items.
 */
export function readTaskFile(file: string, { limit }: LoadOptions = {}): McTask {
  checkLimit(limit);
  const items: McItem[] = [];
  splitLines(readUtf8File(file)).forEach((line, i) => {
    if (line.trim() !== "") items.push(parseTaskLine(file, i + 1, line));
  });
  if (items.length === 0) throw new DataError(file, "holds no items (one JSON object per line expected)", "EMPTY_FILE");
  return {
    kind: "multiple_choice",
    name: basename(file),
    metrics: ["acc", "acc_norm"],
    items: items.slice(0, limit),
    source: { file },
  };
}

function parseTaskLine(file: string, line: number, text: string): McItem {
  const fail = (code: string, msg: string) => new DataError(file, `line ${line}: ${msg}`, code);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw fail("BAD_JSON", `not valid JSON (${(e as Error).message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw fail("NOT_AN_OBJECT", 'expected a JSON object {"context", "choices", "answer"}');
  }
  const o = value as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !TASK_FIELDS.includes(k));
  if (unknown.length) throw fail("UNKNOWN_FIELD", `unknown field "${unknown[0]}" (fields: ${TASK_FIELDS.join(", ")})`);
  for (const k of ["context", "choices", "answer"]) if (!(k in o)) throw fail("MISSING_FIELD", `field "${k}" missing`);
  if (o.id !== undefined && typeof o.id !== "string") throw fail("BAD_FIELD_TYPE", `"id" must be a string`);
  if (typeof o.context !== "string") throw fail("BAD_FIELD_TYPE", `"context" must be a string`);
  if (!Array.isArray(o.choices)) throw fail("BAD_FIELD_TYPE", `"choices" must be an array of strings`);
  const bad = o.choices.findIndex((c) => typeof c !== "string");
  if (bad >= 0) throw fail("BAD_FIELD_TYPE", `"choices"[${bad}] must be a string`);
  if (o.choices.length < 2) throw fail("TOO_FEW_CHOICES", `"choices" holds ${o.choices.length}; at least 2 needed`);
  if (typeof o.answer !== "number" || !Number.isInteger(o.answer)) {
    throw fail("BAD_FIELD_TYPE", `"answer" must be an integer index into "choices"`);
  }
  if (o.answer < 0 || o.answer >= o.choices.length) {
    throw fail("ANSWER_OUT_OF_RANGE", `"answer" ${o.answer} is not an index of the ${o.choices.length} choices`);
  }
  return {
    id: o.id ?? `${basename(file)}:${line}`,
    choices: sharedContextChoices(o.context, o.choices as string[]),
    answer: o.answer,
  };
}

/** A UTF-8 text file scored whole in the GPTQ window protocol; `limit` caps the number of windows. */
export function readTextCorpus(file: string, { limit }: LoadOptions = {}): PerplexityCorpus {
  checkLimit(limit);
  const text = readUtf8File(file);
  if (text.trim() === "") throw new DataError(file, "holds no text", "EMPTY_FILE");
  return {
    kind: "text",
    name: basename(file),
    text,
    windowTokens: PAPER_WINDOW_TOKENS,
    maxWindows: limit,
    source: { file },
  };
}

/** Token ids separated by whitespace and/or commas, e.g. "1, 15043 3186"; each bad entry is named by line. */
export function readTokenIds(file: string, { limit }: LoadOptions = {}): PerplexityCorpus {
  checkLimit(limit);
  const ids: number[] = [];
  splitLines(readUtf8File(file)).forEach((line, i) => {
    for (const entry of line.match(/[^\s,]+/g) ?? []) {
      const id = Number(entry);
      if (!/^\d+$/.test(entry) || id > 0x7fffffff) {
        const message = `line ${i + 1}: "${entry}" is not a token id (a non-negative integer below 2^31)`;
        throw new DataError(file, message, "BAD_TOKEN_ID");
      }
      ids.push(id);
    }
  });
  if (ids.length === 0) throw new DataError(file, "holds no token ids", "EMPTY_FILE");
  return {
    kind: "ids",
    name: basename(file),
    ids,
    windowTokens: PAPER_WINDOW_TOKENS,
    maxWindows: limit,
    source: { file },
  };
}
