// StrykerJS over the numeric core (src/engine, src/checkpoint, src/superweight, src/eval): `npm run mutate`, not part
// of npm test. The TypeScript is instrumented once (mutant schemata) and compiled by tsc in Stryker's sandbox; each
// compiled test file runs as its own `node --test-reporter=tap` process, and a mutant runs only the test files that
// reach it (per-file coverage), stopping at the first failure. See docs/mutation.md.
//   STRYKER_TESTS: comma-separated globs of compiled test files to use instead of all (a quicker, partial run).
const tests = process.env.STRYKER_TESTS ? process.env.STRYKER_TESTS.split(",") : ["dist/test/*.test.js"];

export default {
  mutate: ["src/engine/**/*.ts", "src/checkpoint/**/*.ts", "src/superweight/**/*.ts", "src/eval/**/*.ts"],
  testRunner: "tap",
  tap: { testFiles: tests, nodeArgs: ["--test-reporter=tap", "-r", "{{hookFile}}", "{{testFile}}"], forceBail: true },
  buildCommand: "npx tsc -p tsconfig.json",
  coverageAnalysis: "perTest",
  concurrency: 2,
  incremental: true,
  incrementalFile: "reports/mutation/incremental.json",
  timeoutMS: 60000,
  timeoutFactor: 2,
  dryRunTimeoutMinutes: 60,
  ignorePatterns: ["dist", "reports", ".stryker-tmp"],
  reporters: ["clear-text", "progress-append-only", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/mutation.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  thresholds: { high: 90, low: 80, break: null },
};
