// Data sets by name: where each lives on the Hugging Face Hub (pinned revisions), which columns the
// harness reads, and how a row becomes a request. Files are fetched through an injected resolver.
import { UserError } from "../errors.js";
import { DataError } from "./errors.js";
import {
  formatArc,
  formatHellaswag,
  formatLambada,
  formatPiqa,
  formatSciq,
  formatWinogrande,
  type RowAt,
} from "./harness.js";
import { readJsonLines } from "./jsonlines.js";
import { checkLimit, type LoadOptions } from "./limit.js";
import { readParquetRows } from "./parquet.js";
import type { LastWordItem, McItem, McMetric, PerplexityCorpus, Task } from "./requests.js";
import { PAPER_WINDOW_TOKENS } from "./requests.js";

/** Resolves a file of a Hub *dataset* repository to a local path (the lead's downloader and cache). */
export type FetchFile = (repo: string, path: string, revision?: string) => Promise<string>;

export interface HubFile {
  repo: string;
  revision: string;
  path: string;
  format: "parquet" | "jsonl" | "jsonl.gz";
}

type Row = Record<string, unknown>;

interface TaskSpec<Item> {
  file: HubFile;
  columns: readonly string[];
  format: (row: Row, at: RowAt) => Item;
}
type McSpec = TaskSpec<McItem> & { kind: "multiple_choice"; metrics: readonly McMetric[] };
type LastWordSpec = TaskSpec<LastWordItem> & { kind: "last_word" };

const ARC_COLUMNS = ["id", "question", "choices", "answerKey"];
const ARC_REVISION = "210d026faf9955653af8916fad021475a3f00453";
function parquet(repo: string, revision: string, path: string): HubFile {
  return { repo, revision, path, format: "parquet" };
}

/**
 * The tasks of the paper's Table 2. Each comment names the harness's dataset_path, dataset_name and split;
 * the file is that split on the Hub (the harness's own file where it is parquet, else its parquet mirror).
 */
export const TASKS: Record<string, McSpec | LastWordSpec> = {
  // allenai/ai2_arc, ARC-Easy, test (2376 rows)
  arc_easy: {
    kind: "multiple_choice",
    metrics: ["acc", "acc_norm"],
    columns: ARC_COLUMNS,
    format: formatArc,
    file: parquet("allenai/ai2_arc", ARC_REVISION, "ARC-Easy/test-00000-of-00001.parquet"),
  },
  // allenai/ai2_arc, ARC-Challenge, test (1172 rows)
  arc_challenge: {
    kind: "multiple_choice",
    metrics: ["acc", "acc_norm"],
    columns: ARC_COLUMNS,
    format: formatArc,
    file: parquet("allenai/ai2_arc", ARC_REVISION, "ARC-Challenge/test-00000-of-00001.parquet"),
  },
  // piqa (the loading script ybisk/piqa; newer harness versions read this parquet copy), validation (1838 rows)
  piqa: {
    kind: "multiple_choice",
    metrics: ["acc", "acc_norm"],
    columns: ["goal", "sol1", "sol2", "label"],
    format: formatPiqa,
    file: parquet("baber/piqa", "142f6d7367fd9877f0fb3b5734ea6a545f54cdd1", "piqa_validation.parquet"),
  },
  // Rowan/hellaswag, validation (10042 rows)
  hellaswag: {
    kind: "multiple_choice",
    metrics: ["acc", "acc_norm"],
    columns: ["activity_label", "ctx_a", "ctx_b", "endings", "label"],
    format: formatHellaswag,
    file: parquet(
      "Rowan/hellaswag",
      "218ec52e09a7e7462a5400043bb9a69a41d06b76",
      "data/validation-00000-of-00001.parquet",
    ),
  },
  // allenai/winogrande, winogrande_xl, validation (1267 rows); the harness reports acc only
  winogrande: {
    kind: "multiple_choice",
    metrics: ["acc"],
    columns: ["sentence", "option1", "option2", "answer"],
    format: formatWinogrande,
    file: parquet(
      "allenai/winogrande",
      "01e74176c63542e6b0bcb004dcdea22d94fb67b5",
      "winogrande_xl/validation-00000-of-00001.parquet",
    ),
  },
  // allenai/sciq, test (1000 rows)
  sciq: {
    kind: "multiple_choice",
    metrics: ["acc", "acc_norm"],
    format: formatSciq,
    columns: ["question", "distractor1", "distractor2", "distractor3", "correct_answer", "support"],
    file: parquet("allenai/sciq", "2c94ad3e1aafab77146f384e23536f97a4849815", "data/test-00000-of-00001.parquet"),
  },
  // EleutherAI/lambada_openai, default, test (5153 rows): the default config's JSON Lines file
  lambada_openai: {
    kind: "last_word",
    columns: ["text"],
    format: formatLambada,
    file: {
      repo: "EleutherAI/lambada_openai",
      revision: "900124bf3b8235c6daf21033af9948b3f07346c4",
      path: "data/lambada_test.jsonl",
      format: "jsonl",
    },
  },
};

interface CorpusSpec {
  file: HubFile;
  /** Read only the first N documents. */
  documents?: number;
  joiner: string;
  maxWindows?: number;
}

/** Perplexity corpora in the paper's / GPTQ's protocol (docs/datasets.md). */
export const CORPORA: Record<string, CorpusSpec> = {
  // wikitext-2-raw-v1 test, every line joined with "\n\n": GPTQ's get_wikitext2, the paper's evaluate_perplexity
  "wikitext-2": {
    joiner: "\n\n",
    file: parquet(
      "Salesforce/wikitext",
      "b08601e04326c79dfdd32d625aee71d232d685c3",
      "wikitext-2-raw-v1/test-00000-of-00001.parquet",
    ),
  },
  // GPTQ's / SparseGPT's C4: the first 1100 documents of the en validation shard 0 joined with " ",
  // the first 256 windows
  c4: {
    documents: 1100,
    joiner: " ",
    maxWindows: 256,
    file: {
      repo: "allenai/c4",
      revision: "607bd4c8450a42878aa9ddc051a65a055450ef87",
      path: "en/c4-validation.00000-of-00008.json.gz",
      format: "jsonl.gz",
    },
  },
};

const ALIASES: Record<string, string> = { lambada: "lambada_openai", wikitext2: "wikitext-2" };

/** Names `loadTask` accepts, aliases included. */
export const TASK_NAMES = [...Object.keys(TASKS), ...Object.keys(ALIASES).filter((a) => ALIASES[a] in TASKS)];
/** Names `loadCorpus` accepts, aliases included. */
export const CORPUS_NAMES = [...Object.keys(CORPORA), ...Object.keys(ALIASES).filter((a) => ALIASES[a] in CORPORA)];

/** The canonical name and its entry, or undefined (own keys only: "constructor" is no task). */
function lookup<T>(table: Record<string, T>, name: string): [string, T] | undefined {
  const key = Object.hasOwn(ALIASES, name) ? ALIASES[name] : name;
  return Object.hasOwn(table, key) ? [key, table[key]] : undefined;
}

export async function loadTask(name: string, fetchFile: FetchFile, options: LoadOptions = {}): Promise<Task> {
  checkLimit(options.limit);
  const found = lookup(TASKS, name);
  if (!found) throw new UserError(`unknown task "${name}" (known: ${TASK_NAMES.join(", ")})`);
  const [key, spec] = found;
  const { file } = spec;
  const local = await fetchFile(file.repo, file.path, file.revision);
  const rows = await readRows(local, file, spec.columns, options.limit);
  const source = { repo: file.repo, revision: file.revision, path: file.path };
  const at = (row: number): RowAt => ({ file: local, row });
  if (spec.kind === "last_word") {
    return {
      kind: "last_word",
      name: key,
      metrics: ["acc", "perplexity"],
      source,
      items: rows.map((r, i) => spec.format(r, at(i))),
    };
  }
  return {
    kind: "multiple_choice",
    name: key,
    metrics: spec.metrics,
    source,
    items: rows.map((r, i) => spec.format(r, at(i))),
  };
}

export async function loadCorpus(
  name: string,
  fetchFile: FetchFile,
  options: LoadOptions = {},
): Promise<PerplexityCorpus> {
  checkLimit(options.limit);
  const found = lookup(CORPORA, name);
  if (!found) throw new UserError(`unknown perplexity corpus "${name}" (known: ${CORPUS_NAMES.join(", ")})`);
  const [key, spec] = found;
  const { file } = spec;
  const local = await fetchFile(file.repo, file.path, file.revision);
  const rows = await readRows(local, file, ["text"], spec.documents);
  const texts = rows.map((r, i) => {
    if (typeof r.text !== "string") throw new DataError(local, `row ${i}: "text" is not a string`, "BAD_ROW");
    return r.text;
  });
  if (texts.length === 0) throw new DataError(local, "holds no documents", "EMPTY_FILE");
  const caps = [spec.maxWindows, options.limit].filter((n): n is number => n !== undefined);
  return {
    kind: "text",
    name: key,
    text: texts.join(spec.joiner),
    windowTokens: PAPER_WINDOW_TOKENS,
    maxWindows: caps.length ? Math.min(...caps) : undefined,
    source: { repo: file.repo, revision: file.revision, path: file.path },
  };
}

async function readRows(local: string, file: HubFile, columns: readonly string[], limit?: number): Promise<Row[]> {
  if (file.format === "parquet") return readParquetRows(local, columns, limit);
  const records = await readJsonLines(local, { gzip: file.format === "jsonl.gz", max: limit });
  return records.map((r, i) => {
    if (typeof r !== "object" || r === null || Array.isArray(r)) {
      throw new DataError(local, `row ${i}: not a JSON object`, "BAD_ROW");
    }
    return r as Row;
  });
}
