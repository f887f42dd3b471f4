// A CLI command run inside the test's own process, with --json, its result captured and parsed: the same code
// path as `superweight <command> ... --json`, but visible to coverage (and so to mutation testing), and without a
// process start per call. Refusals and exit codes are tested through the real CLI (cli-child.ts).
import type { Command } from "commander";
import { output } from "../src/cli/common.js";

export async function commandJson<T = any>(command: () => Command, ...args: string[]): Promise<T> {
  const chunks: string[] = [];
  const write = output.write;
  const saved = process.env.SUPERWEIGHT_PROGRESS;
  process.env.SUPERWEIGHT_PROGRESS = "0";
  output.write = (text) => void chunks.push(text);
  try {
    await command()
      .exitOverride()
      .parseAsync([...args, "--json"], { from: "user" });
  } finally {
    output.write = write;
    if (saved === undefined) delete process.env.SUPERWEIGHT_PROGRESS;
    else process.env.SUPERWEIGHT_PROGRESS = saved;
  }
  return JSON.parse(chunks.join("")) as T;
}
