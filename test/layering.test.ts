// The layering rules of .dependency-cruiser.cjs hold for src/, and they are live: a tree that breaks each
// rule on purpose is caught.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cruise, type ICruiseResult, type IConfiguration } from "dependency-cruiser";
import { repoRoot } from "./fixtures.js";

const config: IConfiguration = createRequire(import.meta.url)(join(repoRoot, ".dependency-cruiser.cjs"));
const scratch = mkdtempSync(join(tmpdir(), "sw-layering-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

async function violations(cwd: string): Promise<string[]> {
  const previous = process.cwd();
  process.chdir(cwd);
  try {
    const { tsConfig: _tsConfig, ...options } = config.options ?? {};
    const result = await cruise(["src"], { ...options, ruleSet: { forbidden: config.forbidden }, validate: true });
    const output = result.output as ICruiseResult;
    return output.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
  } finally {
    process.chdir(previous);
  }
}

test("src/ keeps its layering: no cycle, models below the engine, checkpoint below both, formats below the engine, analyses below cli and report", async () => {
  assert.deepEqual(await violations(repoRoot), []);
});

test("each rule catches a tree that breaks it", async () => {
  const files: Record<string, string> = {
    "src/models/arch.ts": `import { run } from "../engine/run.js";\nexport const arch = run;\n`,
    "src/engine/run.ts": `export const run = 1;\n`,
    "src/checkpoint/reader.ts": `import { arch } from "../models/arch.js";\nexport const r = arch;\n`,
    "src/eval/score.ts": `import { show } from "../report/show.js";\nexport const s = show;\n`,
    "src/report/show.ts": `export const show = 2;\n`,
    "src/gguf/read.ts": `import { run } from "../engine/run.js";\nexport const g = run;\n`,
    "src/cli/a.ts": `import { b } from "./b.js";\nexport const a = b;\n`,
    "src/cli/b.ts": `import { a } from "./a.js";\nexport const b = a;\n`,
  };
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(scratch, path, ".."), { recursive: true });
    writeFileSync(join(scratch, path), text);
  }
  const found = await violations(scratch);
  for (const rule of [
    "no-circular",
    "models-describe",
    "checkpoint-below-models-and-engine",
    "formats-below-engine",
    "analyses-below-cli-and-report",
  ])
    assert.ok(
      found.some((v) => v.startsWith(`${rule}:`)),
      `${rule} not reported; got ${JSON.stringify(found)}`,
    );
});
