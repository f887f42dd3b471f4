// A CLI command run inside the test's own process, with --json, its result captured and parsed: the same code
// path as `superweight <command> ... --json`, but visible to coverage (and so to mutation testing), and without a
// process start per call. Refusals and exit codes are tested through the real CLI (cli-child.ts).
import type { Command } from "commander";
import { output } from "../src/cli/common.js";

export async function commandJson<T = any>(command: () => Command, ...args: string[]): Promise<T> {
  return commandJsonIn({}, command, ...args);
}

/** The same with these environment variables set for the call (HF_HOME, HF_HUB_OFFLINE, …), then restored. */
export async function commandJsonIn<T = any>(
  env: NodeJS.ProcessEnv,
  command: () => Command,
  ...args: string[]
): Promise<T> {
  const chunks: string[] = [];
  const write = output.write;
  const vars: NodeJS.ProcessEnv = { ...env, SUPERWEIGHT_PROGRESS: "0" };
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  output.write = (text) => void chunks.push(text);
  try {
    await command()
      .exitOverride()
      .parseAsync([...args, "--json"], { from: "user" });
  } finally {
    output.write = write;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  return JSON.parse(chunks.join("")) as T;
}
