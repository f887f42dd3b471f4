// `npm run mutate [-- GROUP ...]`: run StrykerJS over each group of stryker.config.mjs in turn (all of them when
// none is named), then add up every group's latest report into one table: mutants, killed, timed out, survived, not
// covered, and the score per folder and overall. `npm run mutate -- --report` prints the table without running.
// Each group keeps its own incremental file in mutation/ (committed), so a run re-tests only what changed since that
// group's last run, and the table can be printed from a fresh checkout.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { groups } from "./stryker.config.mjs";

const args = process.argv.slice(2);
const reportOnly = args.includes("--report");
const named = args.filter((a) => !a.startsWith("--"));
for (const g of named) if (!(g in groups)) fail(`unknown group ${g}: one of ${Object.keys(groups).join(", ")}`);

if (!reportOnly)
  for (const group of named.length ? named : Object.keys(groups)) {
    console.log(`\n== ${group}`);
    const run = spawnSync("npx", ["stryker", "run"], {
      stdio: "inherit",
      env: { ...process.env, STRYKER_GROUP: group },
    });
    if (run.status !== 0) fail(`stryker run for ${group} exited with ${run.status}`);
  }

// Stryker's statuses: Killed and Timeout are detected; Survived and NoCoverage are not; Ignored (equivalent mutants
// disabled in the source, with their reason) and CompileError / RuntimeError (mutants that cannot run) are outside
// the score, as Stryker itself counts them.
const totals = new Map();
const add = (key, status) => {
  const t = totals.get(key) ?? { Killed: 0, Timeout: 0, Survived: 0, NoCoverage: 0, Ignored: 0, Other: 0 };
  t[status in t ? status : "Other"]++;
  totals.set(key, t);
};
const missing = [];
for (const group of Object.keys(groups)) {
  // The incremental file holds every mutant's last status, in the report's own schema.
  const path = `mutation/${group}.incremental.json`;
  if (!existsSync(path)) {
    missing.push(group);
    continue;
  }
  const report = JSON.parse(readFileSync(path, "utf8"));
  for (const [file, { mutants }] of Object.entries(report.files))
    for (const m of mutants) {
      add(file.split("/").slice(0, 2).join("/"), m.status);
      add("all four folders", m.status);
    }
}

const rows = [["scope", "mutants", "killed", "timeout", "survived", "no coverage", "equivalent", "score"]];
for (const [scope, t] of [...totals].sort(([a], [b]) => (a === "all four folders") - (b === "all four folders"))) {
  const detected = t.Killed + t.Timeout;
  const valid = detected + t.Survived + t.NoCoverage;
  const score = valid ? `${((100 * detected) / valid).toFixed(1)}%` : "-";
  rows.push([scope, valid, t.Killed, t.Timeout, t.Survived, t.NoCoverage, t.Ignored, score].map(String));
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
console.log();
for (const r of rows)
  console.log(r.map((cell, c) => (c ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join("  "));
if (missing.length) console.log(`\nnot run yet (no report): ${missing.join(", ")}`);

function fail(message) {
  console.error(`mutate: ${message}`);
  process.exit(2);
}
