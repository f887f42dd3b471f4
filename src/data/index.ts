// The data side of `superweight eval`: files and data set names → scored requests (docs/datasets.md).
export * from "./requests.js";
export { accuracy, accuracyStderr, lastWordPerplexity, mcOutcome, type McOutcome } from "./metrics.js";
export { CORPORA, CORPUS_NAMES, loadCorpus, loadTask, TASK_NAMES, TASKS } from "./datasets.js";
export type { FetchFile, HubFile } from "./datasets.js";
export type { LoadOptions } from "./limit.js";
export { readTaskFile, readTextCorpus, readTokenIds } from "./user-files.js";
export { DataError } from "./errors.js";
