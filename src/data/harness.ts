// One data set row → one request, exactly as lm-evaluation-harness v0.4 renders it zero-shot
// (EleutherAI/lm-evaluation-harness, lm_eval/tasks/<task>/; commits in docs/datasets.md):
// context = doc_to_text, continuation = " " + choice (target_delimiter), answer = doc_to_target.
import { DataError } from "./errors.js";
import { pyCapitalize, pyLstrip, pyStrip } from "./pytext.js";
import { codePointLength, sharedContextChoices, TARGET_DELIMITER, type LastWordItem, type McItem } from "./requests.js";

/** Where a row sits, for errors: rows count from 0, as `datasets` indexes them. */
export interface RowAt {
  file: string;
  row: number;
}

type Row = Record<string, unknown>;

function fail(at: RowAt, code: string, message: string): DataError {
  return new DataError(at.file, `row ${at.row}: ${message}`, code);
}

function str(at: RowAt, value: unknown, name: string): string {
  if (typeof value !== "string") throw fail(at, "BAD_ROW", `"${name}" is ${describe(value)}, not a string`);
  return value;
}

function strList(at: RowAt, value: unknown, name: string): string[] {
  if (!Array.isArray(value)) throw fail(at, "BAD_ROW", `"${name}" is ${describe(value)}, not a list of strings`);
  return value.map((v, i) => str(at, v, `${name}[${i}]`));
}

function int(at: RowAt, value: unknown, name: string): number {
  const n = typeof value === "bigint" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n)) {
    throw fail(at, "BAD_ROW", `"${name}" is ${describe(value)}, not an integer`);
  }
  return n;
}

function describe(value: unknown): string {
  return value === null || value === undefined ? "missing" : `a ${Array.isArray(value) ? "list" : typeof value}`;
}

function answerIndex(at: RowAt, answer: number, count: number, what: string): number {
  if (answer < 0 || answer >= count) {
    throw fail(at, "BAD_ANSWER", `${what} ${answer} is not an index of ${count} choices`);
  }
  return answer;
}

/** arc_easy, arc_challenge: "Question: {{question}}\nAnswer:", choices.text, choices.label.index(answerKey). */
export function formatArc(row: Row, at: RowAt): McItem {
  const question = str(at, row.question, "question");
  const choices = (row.choices ?? {}) as Row;
  const text = strList(at, choices.text, "choices.text");
  const labels = strList(at, choices.label, "choices.label");
  if (labels.length !== text.length) throw fail(at, "BAD_ROW", `${labels.length} labels for ${text.length} choices`);
  const answerKey = str(at, row.answerKey, "answerKey");
  const answer = labels.indexOf(answerKey);
  if (answer < 0) throw fail(at, "BAD_ANSWER", `answerKey "${answerKey}" is not among the labels ${labels.join(", ")}`);
  return { id: str(at, row.id, "id"), choices: sharedContextChoices(`Question: ${question}\nAnswer:`, text), answer };
}

/** piqa: "Question: {{goal}}\nAnswer:", [sol1, sol2], label. */
export function formatPiqa(row: Row, at: RowAt): McItem {
  const context = `Question: ${str(at, row.goal, "goal")}\nAnswer:`;
  const choices = [str(at, row.sol1, "sol1"), str(at, row.sol2, "sol2")];
  return {
    id: `piqa/${at.row}`,
    choices: sharedContextChoices(context, choices),
    answer: answerIndex(at, int(at, row.label, "label"), 2, "label"),
  };
}

/** sciq: "{{support.lstrip()}}\nQuestion: {{question}}\nAnswer:", [distractor1..3, correct_answer], 3. */
export function formatSciq(row: Row, at: RowAt): McItem {
  const support = pyLstrip(str(at, row.support, "support"));
  const context = `${support}\nQuestion: ${str(at, row.question, "question")}\nAnswer:`;
  const choices = ["distractor1", "distractor2", "distractor3", "correct_answer"].map((k) => str(at, row[k], k));
  return { id: `sciq/${at.row}`, choices: sharedContextChoices(context, choices), answer: 3 };
}

/** hellaswag/utils.py preprocess: WikiHow's bracketed artefacts out, " [title]" → ". ", double spaces once. */
export function hellaswagPreprocess(text: string): string {
  return pyStrip(text)
    .replaceAll(" [title]", ". ")
    .replace(/\[[^\n]*?\]/g, "")
    .replaceAll("  ", " ");
}

/** hellaswag: query = preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()), endings, label. */
export function formatHellaswag(row: Row, at: RowAt): McItem {
  const ctx = `${str(at, row.ctx_a, "ctx_a")} ${pyCapitalize(str(at, row.ctx_b, "ctx_b"))}`;
  const query = hellaswagPreprocess(`${str(at, row.activity_label, "activity_label")}: ${ctx}`);
  const endings = strList(at, row.endings, "endings").map(hellaswagPreprocess);
  // int(doc["label"]): the Hub file stores a string; an integer column would do as well
  const label = typeof row.label === "string" ? row.label : String(int(at, row.label, "label"));
  if (!/^\d+$/.test(label)) throw fail(at, "BAD_ANSWER", `label "${label}" is not a choice index`);
  return {
    id: `hellaswag/${at.row}`,
    choices: sharedContextChoices(query, endings),
    answer: answerIndex(at, Number(label), endings.length, "label"),
  };
}

/**
 * winogrande (partial evaluation): the sentence up to "_" with each option is the context, the rest of
 * the sentence after "_", stripped, is the shared continuation; answer "1" → 0, "2" → 1. The harness's
 * choices are the contexts, so acc_norm (not reported for winogrande) would divide by their length.
 */
export function formatWinogrande(row: Row, at: RowAt): McItem {
  const sentence = str(at, row.sentence, "sentence");
  const blank = sentence.indexOf("_");
  if (blank < 0) throw fail(at, "NO_BLANK", `sentence has no "_" to fill`);
  const continuation = TARGET_DELIMITER + pyStrip(sentence.slice(blank + 1));
  const contexts = [str(at, row.option1, "option1"), str(at, row.option2, "option2")].map(
    (option) => sentence.slice(0, blank) + option,
  );
  const answer = str(at, row.answer, "answer");
  if (answer !== "1" && answer !== "2") throw fail(at, "BAD_ANSWER", `answer "${answer}" is neither "1" nor "2"`);
  return {
    id: `winogrande/${at.row}`,
    answer: answer === "1" ? 0 : 1,
    choices: contexts.map((context) => ({ context, continuation, normLength: codePointLength(context) })),
  };
}

/** lambada_openai: context = every word but the last (split on " "), continuation = " " + the last word. */
export function formatLambada(row: Row, at: RowAt): LastWordItem {
  const words = str(at, row.text, "text").split(" ");
  return { id: `lambada_openai/${at.row}`, context: words.slice(0, -1).join(" "), continuation: ` ${words.at(-1)}` };
}
