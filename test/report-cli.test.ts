// `superweight report` as a user runs it (the built bin in a child process), and what every command shares: an
// "Examples:" section in each --help, the exit codes in the top-level help, progress on stderr only when it is a
// terminal (or asked for with SUPERWEIGHT_PROGRESS=1).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli, cliJson, expectRefusal } from "./cli-child.js";
import { fixturePath, readReference, repoRoot, skipWithoutFixtures } from "./fixtures.js";
import { cli as run, userEnv } from "./tiny.js";

const scratch = mkdtempSync(join(tmpdir(), "sw-report-cli-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const bin = join(repoRoot, "dist", "src", "cli", "main.js");
const PLANTED = "planted-llama-bf16";
const model = fixturePath(PLANTED);
const ids = () => (readReference(PLANTED).input_ids as number[]).join(",");
const compare = () => {
  const path = join(scratch, "compare.json");
  writeFileSync(
    path,
    JSON.stringify({
      version: 1,
      baseline: { perplexity: 5 },
      configurations: [
        { method: "rtn", bits: 4, block: 64, perplexity: 5.2, bytes: 100, bitsPerWeight: 4.5 },
        { method: "rtn", bits: 4, block: 128, perplexity: 5.4, bytes: 90, bitsPerWeight: 4.25 },
      ],
    }),
  );
  return path;
};

test(
  "report --out writes one HTML file and says what it holds; --json prints the same report's data",
  { skip: skipWithoutFixtures },
  () => {
    const out = join(scratch, "r.html");
    const args = ["report", model, "--ids", ids(), "--sweep-scale", "0,1,2", "--quantize-compare", compare()];
    const r = cli(...args, "--out", out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^wrote .*r\.html \(\d+ KB\): 2 super weights; figures 3, 2\/4, 5, 6, 7\n$/);
    const html = readFileSync(out, "utf8");
    for (const id of ["figure-3", "figure-4", "figure-5", "figure-6", "figure-7"]) assert.ok(html.includes(id), id);

    const both = spawnSync(process.execPath, [bin, ...args, "--out", out, "--json"], {
      env: { ...process.env, SUPERWEIGHT_PROGRESS: "0" },
      encoding: "utf8",
    });
    assert.equal(both.status, 0, both.stderr);
    assert.match(both.stderr, /^wrote /, "the file's line goes to stderr when stdout carries the JSON");
    const data = JSON.parse(both.stdout);
    assert.equal(data.kind, "superweight-report");
    assert.deepEqual(
      data.scan.superWeights.map((w: any) => [w.layer, w.row, w.column]),
      readReference(PLANTED).expectedSuperWeights.map((w: any) => [w.layer, w.row, w.column]),
    );
    assert.deepEqual(
      data.figures.sweep.points.map((p: any) => p.factor),
      [0, 1, 2],
    );
    assert.equal(data.figures.quantization.configurations.length, 2);
    const alone = cliJson("report", model, "--ids", ids());
    assert.equal(alone.figures.sweep, null);
    assert.equal(alone.figures.quantization, null);
  },
);

test(
  "report refuses bad output paths and inputs before it scans, with one line and exit 2",
  { skip: skipWithoutFixtures },
  () => {
    const r = cli("report", model, "--ids", "1,2");
    assert.equal(r.status, 2);
    assert.equal(r.stderr, "superweight: give --out FILE.html (or --json to print the report's data)\n");

    const notes = join(scratch, "notes.txt");
    writeFileSync(notes, "keep me");
    expectRefusal(["report", model, "--ids", "1,2", "--out", notes], notes, "not an .html file");
    assert.equal(readFileSync(notes, "utf8"), "keep me");
    const text = join(scratch, "text.html");
    writeFileSync(text, "a text to score");
    expectRefusal(
      ["report", model, "--ids", "1,2", "--text", text, "--out", text],
      text,
      "one of this report's inputs",
    );
    assert.equal(readFileSync(text, "utf8"), "a text to score");
    const missing = join(scratch, "no-such-folder", "r.html");
    expectRefusal(["report", model, "--ids", "1,2", "--out", missing], missing, "does not exist");
    mkdirSync(join(scratch, "dir.html"));
    expectRefusal(
      ["report", model, "--ids", "1,2", "--out", join(scratch, "dir.html")],
      join(scratch, "dir.html"),
      "is a folder",
    );
    const inModel = join(model, "report.html");
    expectRefusal(["report", model, "--ids", "1,2", "--out", inModel], inModel, "inside the model's folder");
    assert.ok(!existsSync(inModel));
    const bad = join(scratch, "bad.json");
    writeFileSync(bad, JSON.stringify({ version: 1, configurations: [{ method: "rtn" }] }));
    expectRefusal(
      ["report", model, "--ids", "1,2", "--json", "--quantize-compare", bad],
      bad,
      "configurations[0].bits is missing",
    );
    const s = cli("report", model, "--ids", "1,2", "--json", "--sweep-scale", "0,x");
    assert.equal(s.status, 2);
    assert.match(s.stderr, /--sweep-scale x: must be a comma-separated list of numbers/);
  },
);

const COMMANDS = ["run", "scan", "eval", "report", "quantize", "audit", "directory", "doctor"];

test("every command's --help exits 0 with examples; the top-level help states the exit codes", async () => {
  const env = userEnv(join(scratch, "home"));
  const [top, ...helps] = await Promise.all([[], ...COMMANDS.map((c) => [c])].map((a) => run([...a, "--help"], env)));
  COMMANDS.forEach((command, i) => {
    const r = helps[i];
    assert.equal(r.status, 0, `${command} --help: ${r.stderr}`);
    assert.match(r.stdout, /\nExamples?:\n {2}superweight /, `${command} --help has no examples`);
    assert.ok(r.stdout.includes(`superweight ${command}`), `${command}'s examples run ${command}`);
  });
  assert.equal(top.status, 0);
  for (const command of COMMANDS) assert.match(top.stdout, new RegExp(`\\n {2}${command}\\b`), command);
  assert.match(top.stdout, /Exit status: 0 done, 1 an unexpected failure .*\n2 a usage error or bad input/);
  assert.match(top.stdout, /SUPERWEIGHT_PROGRESS=0/);
});

test(
  "progress goes to stderr only on a terminal, or with SUPERWEIGHT_PROGRESS=1",
  { skip: skipWithoutFixtures },
  async () => {
    // stderr is a pipe here: without SUPERWEIGHT_PROGRESS nothing may appear on it.
    const pipe = userEnv(join(scratch, "home"));
    delete pipe.SUPERWEIGHT_PROGRESS;
    const forced = { ...pipe, SUPERWEIGHT_PROGRESS: "1" };
    const cases: [string[], NodeJS.ProcessEnv][] = [
      [["scan", model, "--ids", ids()], pipe],
      [["eval", model, "--ids", ids(), "--zero-super"], pipe],
      [["report", model, "--ids", ids(), "--json"], pipe],
      [["scan", model, "--ids", ids()], forced],
      [["report", model, "--ids", ids(), "--out", join(scratch, "p.html")], forced],
    ];
    const runs = await Promise.all(cases.map(([args, env]) => run(args, env)));
    runs.forEach((r, i) => assert.equal(r.status, 0, `${cases[i][0].join(" ")}: ${r.stderr}`));
    for (const r of runs.slice(0, 3)) assert.equal(r.stderr, "");
    assert.match(runs[3].stderr, /^scan: prompt 1\/1\n/);
    assert.match(runs[4].stderr, /^scan: prompt 1\/1\n/m);
    assert.match(runs[4].stderr, /^layers 0-3: 1\/4 layer 0\n/m);
    assert.match(runs[4].stderr, /^eval: prompts\n/m);
  },
);

test(
  "every command's --json prints one JSON object on stdout and nothing on stderr; --version the package's",
  { skip: skipWithoutFixtures },
  async () => {
    const env = userEnv(join(scratch, "home"));
    const gguf = join(scratch, "json.gguf");
    const cases: string[][] = [
      ["run", model, "--ids", ids()],
      ["scan", model, "--ids", ids()],
      ["eval", model, "--ids", ids(), "--zero-super"],
      ["report", model, "--ids", ids()],
      [
        "quantize",
        fixturePath("planted-llama-256"),
        "--format",
        "gguf",
        "--type",
        "Q4_0",
        "--stand-in-vocab",
        "-o",
        gguf,
      ],
      ["audit", fixturePath("gguf", "planted-llama-256.Q4_0.gguf")],
      ["directory"],
      ["doctor"],
    ];
    assert.deepEqual(cases.map((c) => c[0]).sort(), [...COMMANDS].sort(), "every command");
    const runs = await Promise.all(cases.map((args) => run([...args, "--json"], env)));
    runs.forEach((r, i) => {
      const what = `superweight ${cases[i].join(" ")} --json`;
      assert.equal(r.status, 0, `${what}: ${r.stderr}`);
      assert.equal(r.stderr, "", what);
      const value = JSON.parse(r.stdout);
      assert.ok(value !== null && typeof value === "object" && !Array.isArray(value), what);
    });
    assert.ok(existsSync(gguf));
    const version = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version;
    for (const flag of ["--version", "-V"]) {
      const r = await run([flag], env);
      assert.equal(r.status, 0);
      assert.equal(r.stdout, `${version}\n`);
    }
  },
);
