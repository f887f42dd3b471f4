// StrykerJS over the numeric core (src/engine, src/checkpoint, src/superweight, src/eval): `npm run mutate`, not part
// of npm test. The TypeScript is instrumented once (mutant schemata) and compiled by tsc in Stryker's sandbox; each
// compiled test file runs as its own `node --test-reporter=tap` process, and a mutant runs only the test files that
// reach it (per-file coverage), stopping at the first failure. See docs/mutation.md.
//
// The four folders are cut into groups of a few files, each run on its own (STRYKER_GROUP) with the test files
// that exercise those files in their own process, its own report and its own incremental file: a run of a group
// re-tests only the mutants whose code or covering tests changed since that group's last run. mutate.mjs runs the
// groups one after another and adds their reports up.
//   STRYKER_GROUP: a group below (default: every file of the four folders at once, with every test file listed).
//   STRYKER_TESTS: comma-separated globs of compiled test files to use instead of the group's.

// Test files that start the CLI in a child process are left out: Stryker cannot see what a child covers, so they
// would only run for mutants the in-process files already reach, and each costs half a minute or more.
// The quick, direct files come first: a mutant stops at the first file that fails.
const unit = ["engine-checks", "attention", "kernels", "overrides-unit", "nonfinite", "linear-checks", "survivors"];
const engine = [
  "model-open",
  "forward-options",
  "forward",
  "architecture",
  "hooks",
  "overrides",
  "moe-reference",
  "newer-config",
  "eval-kvcache",
];
const files = [
  "safetensors",
  "safetensors-messages",
  "checkpoint-files",
  "checkpoint-open",
  "checkpoint-writer",
  "checkpoint-errors",
  "resolve",
  "hub-download",
];
const evals = [
  "eval-parts",
  "eval-units",
  "eval-windows",
  "eval-arms",
  "eval-plan",
  "eval-interventions",
  "eval-fixtures",
  "eval-generate",
  "eval-report",
  "eval-report-fields",
  "eval-choice",
  "chat-gguf",
  "signed",
];

export const groups = {
  "engine-kernels": {
    mutate: ["kernels", "matmul", "attention", "rope", "finite", "nll", "kv-cache", "hooks"].map(
      (f) => `src/engine/${f}.ts`,
    ),
    tests: [...unit, "matmul", ...engine],
  },
  "engine-pass": {
    mutate: ["linear", "lanes", "lane", "lane-worker", "head", "pass"].map((f) => `src/engine/${f}.ts`),
    tests: [
      "lane-job",
      "head-unit",
      "model-gguf",
      ...unit,
      ...engine,
      "lanes",
      "blocks",
      "scan",
      "compress-weights",
      "compress-activations",
    ],
  },
  "engine-model": {
    mutate: ["ops", "forward", "model", "variants", "onnx-model"].map((f) => `src/engine/${f}.ts`),
    tests: [
      ...unit,
      "head-unit",
      "model-gguf",
      ...engine,
      "checkpoint-errors",
      "lanes",
      "blocks",
      "scan",
      "compress-weights",
      "compress-activations",
    ],
  },
  checkpoint: {
    mutate: ["src/checkpoint/**/*.ts"],
    tests: [...files, "survivors", "quant-packed", "gguf-source", "forward", "blocks", "lanes", "overrides"],
  },
  "superweight-classify": {
    mutate: ["classify", "directory"].map((f) => `src/superweight/${f}.ts`),
    tests: ["survivors", "classify", "directory", "scan", "moe-scan"],
  },
  "superweight-scan": {
    mutate: ["detect", "scan"].map((f) => `src/superweight/${f}.ts`),
    tests: ["scan-merge", "survivors", "classify", "detect-progress", "scan", "moe-scan", "gguf-source"],
  },
  "superweight-audit": { mutate: ["src/superweight/audit.ts"], tests: ["audit-verdict", "audit"] },
  // src/eval in three groups, so that a change re-tests one of them (each is 20–40 minutes here).
  "eval-arms": {
    mutate: ["arms", "random", "interventions", "null-stats"].map((f) => `src/eval/${f}.ts`),
    tests: [...evals, "survivors", "data-tasks", "report-html"],
  },
  "eval-measure": {
    mutate: ["eval", "prompts", "runner", "shift", "generate"].map((f) => `src/eval/${f}.ts`),
    tests: ["eval-prompts", ...evals, "survivors", "data-tasks", "report-html"],
  },
  "eval-choice": {
    mutate: ["choice", "tokens", "perplexity"].map((f) => `src/eval/${f}.ts`),
    tests: [...evals, "survivors", "data-tasks", "report-html"],
  },
};

const group = process.env.STRYKER_GROUP;
if (group !== undefined && !(group in groups))
  throw new Error(`STRYKER_GROUP ${group}: one of ${Object.keys(groups).join(", ")}`);
const chosen = group ? [groups[group]] : Object.values(groups);
const testNames = [...new Set(chosen.flatMap((g) => g.tests))];
const tests = process.env.STRYKER_TESTS
  ? process.env.STRYKER_TESTS.split(",")
  : testNames.map((name) => `dist/test/${name}.test.js`);
const name = group ?? "all";

export default {
  mutate: chosen.flatMap((g) => g.mutate),
  testRunner: "tap",
  tap: { testFiles: tests, nodeArgs: ["--test-reporter=tap", "-r", "{{hookFile}}", "{{testFile}}"], forceBail: true },
  buildCommand: "npx tsc -p tsconfig.json",
  coverageAnalysis: "perTest",
  concurrency: 2,
  incremental: true,
  // Kept in the repository (mutation/): a fresh checkout re-tests only the mutants whose code or covering test files
  // changed since the last run, and `npm run mutate -- --report` gives the table from them.
  incrementalFile: `mutation/${name}.incremental.json`,
  // A mutant that makes a loop run forever is a timeout, which counts as detected. Each test file takes seconds,
  // so 10 s over twice the measured time is ample and does not spend a minute on every such mutant.
  timeoutMS: 10000,
  timeoutFactor: 2,
  dryRunTimeoutMinutes: 60,
  ignorePatterns: ["dist", "reports", "mutation", ".stryker-tmp"],
  plugins: ["@stryker-mutator/*", "./stryker-live.mjs"],
  reporters: ["clear-text", "progress-append-only", "html", "json", "live-survivors"],
  htmlReporter: { fileName: `reports/mutation/${name}.html` },
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  thresholds: { high: 90, low: 80, break: null },
};
